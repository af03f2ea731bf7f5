//! The generated Python and TypeScript error modules: the ones checked into `sdk/` are what
//! `rebuff docs --format python|typescript` writes today, and an API's `/errors.json` gives
//! the same module as its catalog. (The modules' own tests, which run them against
//! `rebuff serve`, are in `sdk/` and run by `scripts/sdk-test.sh`.)

use std::path::Path;
use std::process::Command;

const PROFILES: [&str; 6] = ["rebuff", "arize", "dataxid", "mlops", "incidents", "apikeys"];

fn generate(catalog: &str, format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rebuff"))
        .args(["docs", catalog, "--format", format])
        .output()
        .expect("run rebuff");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_checked_in_modules_are_what_the_generator_writes() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    let mut stale = Vec::new();
    for profile in PROFILES {
        for (format, path) in [
            ("python", sdk.join(format!("python/{profile}.py"))),
            ("typescript", sdk.join(format!("typescript/src/{profile}.ts"))),
        ] {
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            if checked_in != generate(profile, format) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated modules differ from the generator's output; run `bash scripts/sdk-generate.sh`: {stale:?}"
    );
}

#[test]
fn a_published_errors_json_gives_the_same_modules() {
    let dir = std::env::temp_dir().join(format!("rebuff-sdk-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for profile in PROFILES {
        let export = dir.join(format!("{profile}.json"));
        std::fs::write(&export, generate(profile, "json")).expect("write export");
        let export = export.to_str().expect("utf-8 path");
        for format in ["python", "typescript"] {
            assert!(generate(export, format) == generate(profile, format), "{profile} {format}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_export_is_refused_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("rebuff-sdk-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("errors.json");
    std::fs::write(&bad, r#"{"name": "x", "dialect": "rebuff", "errors": [{"code": "a", "status": 400, "retry": "never", "sdk_class": "not a class"}]}"#)
        .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_rebuff"))
        .args(["docs", bad.to_str().expect("utf-8"), "--format", "python"])
        .output()
        .expect("run rebuff");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a class name"));
    let _ = std::fs::remove_dir_all(&dir);
}
