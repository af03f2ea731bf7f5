//! `rebuff serve` as a new user runs it: a fresh database prints its admin key once, the API
//! answers with it, and a second start on the same file prints no key.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rebuff serve` on an ephemeral port; returns the process, its printed lines up to the
/// "listening" line, and the address.
fn serve(db: &std::path::Path, extra: &[&str]) -> (Running, Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebuff"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rebuff serve");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("utf-8 line");
        let done = line.contains(" on http://");
        lines.push(line);
        if done {
            break;
        }
    }
    let last = lines.last().cloned().unwrap_or_default();
    let addr = last
        .split("on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("address")
        .to_owned();
    (running, lines, addr)
}

fn get(addr: &str, path: &str, key: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

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
