//! What the command-line tests share: running `rebuff` with input, and `rebuff serve` on an
//! ephemeral port.

#![allow(dead_code, unreachable_pub)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// Runs `rebuff` with `stdin` as its standard input, outside any server's environment
/// (`REBUFF_DB`, `REBUFF_POSTGRES_URL` and `REBUFF_REDIS_URL` unset).
pub fn rebuff_stdin<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebuff"))
        .args(args)
        .env_remove("REBUFF_DB")
        .env_remove("REBUFF_POSTGRES_URL")
        .env_remove("REBUFF_REDIS_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rebuff");
    // A command that refuses its arguments exits before it reads its input; the pipe it
    // closed is not a failure of the test.
    if let Err(e) = child.stdin.take().expect("stdin").write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait for rebuff")
}

/// A running `rebuff serve`, killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rebuff serve` on an ephemeral port over `db`; returns the process, its printed lines
/// up to the "listening" line, and the address.
pub fn serve(db: &Path, extra: &[&str]) -> (Running, Vec<String>, String) {
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
        .expect("rebuff serve printed its address")
        .to_owned();
    (running, lines, addr)
}

/// `GET path` over a fresh connection, with `key` as bearer token; the whole response.
pub fn get(addr: &str, path: &str, key: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}
