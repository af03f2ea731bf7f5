//! `rebuff probe` as a user runs it: against the reference API, a broken API and nothing at
//! all, with its exit statuses 0, 1 and 2 and its three formats.

mod support_tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use rebuff_core::Catalog;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};

/// Runs the binary off the async runtime, which keeps serving meanwhile.
async fn rebuff(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rebuff")).args(&args).output().expect("run rebuff")
    })
    .await
    .expect("join")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

fn temp_path(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "rebuff-cli-probe-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The reference API in `profile` on 127.0.0.1:0; returns its base URL and an admin key.
/// It serves until the test's runtime ends.
async fn reference(profile: &str) -> (String, String, PathBuf) {
    let (state, key, db) = reference_state(profile).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(rebuff_server::serve(listener, state, std::future::pending()));
    (format!("http://{addr}"), key, db)
}

/// The reference API's state over a fresh SQLite file, with an admin key.
async fn reference_state(profile: &str) -> (AppState, String, PathBuf) {
    let db = temp_path(&format!("{profile}.db"));
    let store = SqliteStore::open(&db).expect("open");
    let org = store.get_or_create_org("acme").await.expect("org").id;
    let (_, key) = store
        .create_key(NewKey {
            org_id: org,
            name: "probe".into(),
            scopes: vec!["read".into(), "write".into(), "admin".into()],
            expires_at: None,
            allowed_ips: Vec::new(),
            live: false,
        })
        .await
        .expect("key");
    let catalog = Catalog::builtin(profile).expect("profile").clone();
    let mut config = Config::new(Arc::new(catalog));
    config.rate_limit.limit = 10_000;
    let state = AppState::new(config, store).await.expect("state");
    (state, key, db)
}

fn remove_db(db: &Path) {
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
}

/// An API that crashes on everything: a plain-text 500 with a Python traceback.
async fn broken() -> String {
    let app = axum::Router::new().fallback(|| async {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "Traceback (most recent call last):\n  File \"/srv/app/api.py\", line 12, in create\n",
        )
            .into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_api_conforms_exit_0() {
    let (base, key, db) = reference("arize").await;
    let out = temp_path("report.xml");
    let o = rebuff(args(&[
        "probe",
        &base,
        "--key",
        &key,
        "--openapi",
        &format!("{base}/openapi.json"),
        "--profile",
        "arize",
        "--format",
        "junit",
        "--out",
        out.to_str().expect("utf-8"),
    ]))
    .await;
    assert_exit(&o, 0);
    let xml = std::fs::read_to_string(&out).expect("report written");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).contains("conforms; report in"), "{}", stderr(&o));

    // Text: progress on standard error, the table and the verdict on standard output.
    let o = rebuff(args(&["probe", &base, "--key", &key])).await;
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(err.contains("routes (openapi: /openapi.json (found at the root))"), "{err}");
    assert!(err.contains("no-credentials         GET /v1/projects -> 401 ok"), "{err}");
    assert!(err.contains("[  1/"), "progress counts provocations from 1: {err}");
    let text = stdout(&o);
    assert!(text.contains("0 findings: conforms"), "{text}");
    assert!(text.contains("rate-limit"), "{text}");

    // Markdown for a pull request, with the features required.
    let o = rebuff(args(&[
        "probe",
        &base,
        "--key",
        &key,
        "--format",
        "md",
        "--expect",
        "idempotency",
        "--expect",
        "rate-limit",
    ]))
    .await;
    assert_exit(&o, 0);
    let md = stdout(&o);
    assert!(md.starts_with("### ✅ rebuff probe `http://127.0.0.1:"), "{md}");
    assert!(md.contains("- idempotency keys: offered (the document declares Idempotency-Key)"), "{md}");
    assert!(md.contains("<details><summary>"), "{md}");
    let _ = std::fs::remove_file(&out);
    remove_db(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_api_exit_1() {
    let base = broken().await;
    let o = rebuff(args(&["probe", &format!("{base}/v1/things"), "--key", "k", "--format", "json"])).await;
    assert_exit(&o, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON report");
    assert_eq!(report["conforms"], false);
    assert_eq!(report["routes"]["source"], "guessed");
    let leaks = report["exchanges"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["checks"].as_array().into_iter().flatten())
        .filter(|c| c["check"] == "no-leak" && c["outcome"] == "fail")
        .count();
    assert!(leaks >= 10, "{report:#}");
    // JSON mode prints no progress.
    assert!(!stderr(&o).contains("no-credentials"), "{}", stderr(&o));
    // Markdown: one finding per check and cause, with its count.
    let o = rebuff(args(&["probe", &format!("{base}/v1/things"), "--key", "k", "--format", "md"])).await;
    assert_exit(&o, 1);
    let md = stdout(&o);
    assert!(md.starts_with("### ❌ rebuff probe"), "{md}");
    assert!(md.contains("| `no-leak` | the body shows a stack trace | "), "{md}");
    assert_eq!(md.matches("| `no-leak` |").count(), 1, "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_usage_problems_exit_2() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        format!("http://{addr}")
    };
    let o = rebuff(args(&["probe", &closed])).await;
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("cannot reach"), "{}", stderr(&o));

    let base = broken().await;
    for (list, expect) in [
        (vec!["probe", &base, "--format", "xml"], "invalid value"),
        (vec!["probe", &base, "--max-requests", "0"], "invalid value"),
        (vec!["probe", &base, "--profile", "nope"], "invalid value"),
        (vec!["probe", "not a url"], "is not a URL"),
        (vec!["probe", &base, "--openapi", "http://192.0.2.1/openapi.json"], "refusing to fetch"),
        (vec!["probe", &base, "--openapi", "/nonexistent/openapi.json"], "cannot read"),
    ] {
        let o = rebuff(args(&list)).await;
        assert_exit(&o, 2);
        assert!(stderr(&o).contains(expect), "{list:?}: {}", stderr(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_cacert() {
    let (state, key, db) = reference_state("rebuff").await;
    // The TLS server takes a Router: the whole application as its one fallback service.
    let server =
        support_tls::serve_https(axum::Router::new().fallback_service(rebuff_server::app(state))).await;
    let ca = temp_path("ca.pem");
    std::fs::write(&ca, &server.ca_pem).expect("write the CA");

    // Without --cacert the test's CA is unknown: the target cannot be reached (exit 2).
    let o = rebuff(args(&["probe", &server.base, "--key", &key])).await;
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("cannot reach https://127.0.0.1:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));

    // With it, the reference API conforms over TLS; the progress counts provocations from 1.
    let o =
        rebuff(args(&["probe", &server.base, "--key", &key, "--cacert", ca.to_str().expect("utf-8")])).await;
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(err.contains("[  1/"), "{err}");
    assert!(err.contains("no-credentials         GET /v1/projects -> 401 ok"), "{err}");
    println!("$ rebuff probe {} --key $KEY --cacert ca.pem\n{}{}", server.base, err, stdout(&o));
    assert!(stdout(&o).contains("findings: conforms"), "{}", stdout(&o));

    // A --cacert that cannot be read, or holds no certificate, is a usage error.
    let o = rebuff(args(&["probe", &server.base, "--cacert", "/nonexistent/ca.pem"])).await;
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("cannot read --cacert"), "{}", stderr(&o));
    std::fs::write(&ca, "not a certificate").expect("write");
    let o = rebuff(args(&["probe", &server.base, "--cacert", ca.to_str().expect("utf-8")])).await;
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--cacert"), "{}", stderr(&o));
    let _ = std::fs::remove_file(&ca);
    remove_db(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_it_cannot_wait_out_stops_it_exit_2() {
    // Everything is 429 for ten minutes: longer than --max-wait allows.
    let app = axum::Router::new().fallback(|| async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "600"), (header::CONTENT_TYPE, "application/problem+json")],
            r#"{"type":"about:blank","title":"Too Many Requests","status":429}"#,
        )
            .into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let o =
        rebuff(args(&["probe", &format!("http://{addr}/v1/things"), "--key", "k", "--max-wait", "5"])).await;
    assert_exit(&o, 2);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        err.contains("the probe did not finish: rate-limited: 429 to GET /v1/things asking for 600 s"),
        "{err}"
    );
    assert!(out.contains("0 findings: incomplete (rate-limited)"), "{out}");
    assert!(!out.contains("expected 401"), "{out}");
}
