//! `rebuff serve` as a new user runs it: a fresh database prints its admin key once, the API
//! answers with it, and a second start on the same file prints no key.

mod support;

use std::process::Command;

use support::{get, serve};

#[test]
fn a_fresh_database_prints_its_admin_key_once() {
    let db = std::env::temp_dir().join(format!("rebuff-cli-serve-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let (first, lines, addr) = serve(&db, &["--profile", "dataxid"]);
    let key = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("rb_test_"))
        .map(|k| format!("rb_test_{k}"))
        .expect("key printed");
    assert!(lines.iter().any(|l| l.contains("dataxid profile")), "{lines:?}");
    let ok = get(&addr, "/v1/projects", Some(&key));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let refused = get(&addr, "/v1/projects", None);
    assert!(refused.starts_with("HTTP/1.1 401") && refused.contains("\"api_key_missing\""), "{refused}");
    drop(first);
    let (_second, lines, addr) = serve(&db, &[]);
    assert!(!lines.iter().any(|l| l.contains("rb_test_")), "no key on a second start: {lines:?}");
    assert!(get(&addr, "/v1/projects", Some(&key)).starts_with("HTTP/1.1 200"), "the key still works");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn bad_serve_arguments_exit_2() {
    for args in [&["serve", "--rate-limit", "fast"][..], &["serve", "--profile", "nope"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_rebuff")).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}
