//! The probe against apps written with other frameworks, their defaults left as they are: a
//! FastAPI app and an Express app (`tests/apps/`), installed by `scripts/probe-apps.sh` into
//! the target directory and started on loopback. Each app's verdict is checked in beside it
//! (`expected.txt`); a test fails when the probe's verdict drifts from it.
//!
//! `REBUFF_BLESS=1` writes the verdicts instead, to review in the diff. Without python3, node
//! or npm the tests say they skip, unless `CI` is set: then they fail.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rebuff_probe::{Config, Report};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn apps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// The target directory: the test binary lives in `<target>/debug/deps`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    exe.ancestors().nth(3).map_or_else(std::env::temp_dir, Path::to_path_buf)
}

/// The installed environments, or `None` (said on standard error) when the tools are missing
/// outside CI.
fn install() -> Option<PathBuf> {
    let missing: Vec<&str> = ["python3", "node", "npm"]
        .into_iter()
        .filter(|t| !Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success()))
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} missing: the FastAPI and Express apps cannot be probed (install python3 with venv, \
             node and npm)",
            missing.join(", ")
        );
        // Straight to standard error: libtest hides what `eprintln!` prints in a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {} not installed; the framework apps were not probed",
            missing.join(", ")
        );
        return None;
    }
    let dir = target_dir().join("probe-apps");
    let out = Command::new("bash")
        .arg(repo().join("scripts/probe-apps.sh"))
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/probe-apps.sh");
    assert!(out.status.success(), "scripts/probe-apps.sh failed");
    Some(dir)
}

/// A child process killed when the test ends, however it ends.
struct App {
    child: Child,
    log: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Starts `cmd` and waits until `port` accepts connections.
fn start(mut cmd: Command, port: u16, name: &str) -> App {
    let log = std::env::temp_dir().join(format!("rebuff-probe-app-{name}-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("log file");
    let child = cmd
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {name} app: {e}"));
    let mut app = App { child, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = app.child.try_wait() {
            panic!(
                "the {name} app exited ({status}):\n{}",
                std::fs::read_to_string(&app.log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the {name} app did not listen within a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
    app
}

/// The verdict as a table that changes only when the verdict does: the routes, the
/// features, the coverage, one line per provocation, the grouped findings.
fn verdicts(title: &str, report: &Report) -> String {
    let mut out = format!(
        "# rebuff probe verdicts: {title}\n# Written by REBUFF_BLESS=1 cargo test -p rebuff-probe --test apps\n\n"
    );
    out.push_str(&format!("credentials: {}\n", report.routes.credentials));
    out.push_str(&format!(
        "coverage: {} of {} operations\n",
        report.coverage.reached, report.coverage.declared
    ));
    for u in &report.coverage.unreached {
        out.push_str(&format!("  not reached: {u}\n"));
    }
    for f in &report.features {
        let state = if f.offered { "offered" } else { "not offered" };
        out.push_str(&format!("feature {}: {state}\n", f.feature));
    }
    out.push_str(&format!(
        "verdict: {}\n\n",
        if report.conforms() { "conforms" } else { "does not conform" }
    ));
    out.push_str("| provocation | request | status | result |\n|---|---|---|---|\n");
    for e in &report.exchanges {
        let status = e.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        out.push_str(&format!(
            "| {} | {} {} | {status} | {} |\n",
            e.provocation,
            e.method,
            e.path,
            e.verdict()
        ));
    }
    out.push_str("\n| check | finding | answers |\n|---|---|---|\n");
    for g in &report.findings {
        out.push_str(&format!("| {} | {} | {} |\n", g.check, g.cause.replace('|', "\\|"), g.count));
    }
    out
}

async fn check(app: &str, title: &str, base: &str, key: &str) {
    let mut c = Config::new(base);
    c.key = Some(key.to_owned());
    c.timeout = Duration::from_secs(20);
    let report = rebuff_probe::run(&c).await.unwrap_or_else(|e| panic!("{app}: the probe did not run: {e}"));
    let got = verdicts(title, &report);
    let path = apps().join(app).join("expected.txt");
    if std::env::var_os("REBUFF_BLESS").is_some() {
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(got.as_bytes()))
            .expect("write expected.txt");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "{app}: the probe's verdict drifted from {}:\n--- expected\n{want}\n--- got\n{got}\n--- report\n{}",
        path.display(),
        report.to_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_defaults() {
    let Some(env) = install() else { return };
    let port = free_port();
    let mut cmd = Command::new(env.join("venv/bin/python"));
    cmd.args(["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", &port.to_string(), "--app-dir"])
        .arg(apps().join("fastapi"));
    let _app = start(cmd, port, "fastapi");
    check(
        "fastapi",
        "FastAPI widgets (tests/apps/fastapi)",
        &format!("http://127.0.0.1:{port}"),
        "fk_test_5d1c9e7a2b4f",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_defaults() {
    let Some(env) = install() else { return };
    let port = free_port();
    let mut cmd = Command::new("node");
    cmd.arg(apps().join("express/app.js"))
        .arg(port.to_string())
        .env("NODE_PATH", env.join("express/node_modules"));
    let _app = start(cmd, port, "express");
    check(
        "express",
        "Express widgets (tests/apps/express)",
        &format!("http://127.0.0.1:{port}"),
        "ek_test_3b8e1f0a6c2d",
    )
    .await;
}
