//! `rebuff serve` as a new user runs it: a fresh database prints its admin key once, the API
//! answers with it, and a second start on the same file prints no key.

mod support;

use std::io::{Read, Write};
use std::process::Command;

use support::{get, serve};

/// A service's catalog: the standard codes and its own.
const WIDGETS: &str = "[catalog]\nname = \"widgets\"\ndialect = \"rebuff\"\n\
    type_uri = \"https://widgets.example/errors#{anchor}\"\nextends = \"standard\"\n\n\
    [[error]]\ncode = \"widget_not_found\"\nstatus = 404\ncategory = \"invalid_request_error\"\n\
    title = \"Widget not found\"\nwhen = \"No widget has the id.\"\nfix = \"Check the id.\"\nretry = \"never\"\n";

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
fn a_catalog_that_adds_codes_to_standard_serves() {
    let dir = std::env::temp_dir().join(format!("rebuff-cli-serve-widgets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let catalog = dir.join("widgets.toml");
    std::fs::write(&catalog, WIDGETS).expect("write");
    let (_server, lines, addr) = serve(&dir.join("w.db"), &["--catalog", catalog.to_str().expect("utf-8")]);
    assert!(lines.iter().any(|l| l.contains("widgets profile")), "{lines:?}");
    let refused = get(&addr, "/v1/projects", None);
    // An inherited code, with the service's type URI.
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("https://widgets.example/errors#authentication_required"), "{refused}");
    let errors = get(&addr, "/errors.json", None);
    assert!(errors.contains("widget_not_found"), "the error reference lists the service's code");
    drop(_server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression: a base catalog without the layers' codes used to start and then answer a
/// request without a key with 500 and an empty body.
#[test]
fn a_catalog_without_the_layer_codes_does_not_start() {
    let dir = std::env::temp_dir().join(format!("rebuff-cli-serve-alone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let catalog = dir.join("widgets.toml");
    std::fs::write(&catalog, WIDGETS.replace("extends = \"standard\"\n", "")).expect("write");
    let db = dir.join("never.db");
    let out = Command::new(env!("CARGO_BIN_EXE_rebuff"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--catalog")
        .arg(&catalog)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot serve: catalog `widgets` lacks 44 codes that the reference API can raise: "),
        "{err}"
    );
    for code in ["api_key_missing", "internal_error", "rate_limit_exceeded"] {
        assert!(err.contains(code), "{code} in: {err}");
    }
    assert!(!db.exists(), "refused before opening the database");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_serve_arguments_exit_2() {
    for args in [&["serve", "--rate-limit", "fast"][..], &["serve", "--profile", "nope"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_rebuff")).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// `POST /v1/webhooks/incoming` signed with `secret` now; the whole response.
fn post_webhook(addr: &str, secret: &[u8]) -> String {
    let body = br#"{"type":"ping"}"#;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let sig = rebuff_axum::auth::webhook::sign(secret, i64::try_from(now).expect("fits"), body);
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST /v1/webhooks/incoming HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Rebuff-Signature: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("write");
    s.write_all(body).expect("write body");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// Issue 14, finding 1: every deployment accepted webhooks signed with the built-in
/// `whsec_rebuff_demo`. Now a fresh database gets its own secret, printed once, or the one
/// given with `--webhook-secret`.
#[test]
fn the_webhook_secret_is_generated_once_or_given_and_never_the_old_default() {
    let db = std::env::temp_dir().join(format!("rebuff-cli-whsec-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let (first, lines, addr) = serve(&db, &[]);
    let secret = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("whsec_"))
        .map(|k| format!("whsec_{k}"))
        .expect("secret printed");
    assert!(post_webhook(&addr, secret.as_bytes()).starts_with("HTTP/1.1 202"), "the printed secret signs");
    let old = post_webhook(&addr, b"whsec_rebuff_demo");
    assert!(old.starts_with("HTTP/1.1 401") && old.contains("invalid_signature"), "{old}");
    drop(first);
    let (second, lines, addr) = serve(&db, &[]);
    assert!(!lines.iter().any(|l| l.contains("whsec_")), "printed once: {lines:?}");
    assert!(post_webhook(&addr, secret.as_bytes()).starts_with("HTTP/1.1 202"), "kept in the database");
    drop(second);
    let (_third, _, addr) = serve(&db, &["--webhook-secret", "whsec_given"]);
    assert!(post_webhook(&addr, b"whsec_given").starts_with("HTTP/1.1 202"), "the flag wins");
    assert!(post_webhook(&addr, secret.as_bytes()).starts_with("HTTP/1.1 401"));
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Issue 14, finding 14: the server created the database and printed the admin key before it
/// found the port taken.
#[test]
fn a_taken_port_fails_before_anything_is_created_or_printed() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let db = std::env::temp_dir().join(format!("rebuff-cli-taken-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let out = Command::new(env!("CARGO_BIN_EXE_rebuff"))
        .args(["serve", "--addr", &addr, "--db"])
        .arg(&db)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on"), "{out:?}");
    assert!(out.stdout.is_empty(), "nothing printed: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!db.exists(), "no database created");
}

/// Issue 14, finding 14: the admin key shared standard output with the log, so a log
/// collector kept it. The log now goes to standard error.
#[test]
fn the_log_goes_to_standard_error_and_the_key_to_standard_output() {
    use std::io::BufRead;
    let db = std::env::temp_dir().join(format!("rebuff-cli-stderr-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebuff"))
        .args(["serve", "--addr", "127.0.0.1:0", "--webhook-secret", "whsec_log_test", "--db"])
        .arg(&db)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        let done = line.contains(" on http://");
        lines.push(std::mem::take(&mut line));
        if done {
            break;
        }
    }
    let addr =
        lines.last().and_then(|l| l.split("on http://").nth(1)).and_then(|r| r.split_whitespace().next());
    let addr = addr.expect("address printed").to_owned();
    assert!(post_webhook(&addr, b"whsec_log_test").starts_with("HTTP/1.1 202"));
    let _ = child.kill();
    let _ = child.wait();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr);
    let stdout = format!("{}{rest}", lines.concat());
    assert!(stdout.contains("rb_test_"), "the key on standard output: {stdout}");
    assert!(stderr.contains("webhook received"), "the log on standard error: {stderr}");
    assert!(
        !stdout.contains("webhook received") && !stdout.contains(" INFO "),
        "no log on standard output: {stdout}"
    );
    assert!(!stderr.contains("rb_test_"), "no key in the log");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}
