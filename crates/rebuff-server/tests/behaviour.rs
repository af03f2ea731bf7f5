//! Behaviours over real HTTP: tenancy masking, request ids, exact rate limits, failures.

mod support;

use std::io::{Read, Write};

use serde_json::{Value, json};
use support::{Opts, answer, start};

fn without_request_id(body: &[u8], id: &str) -> Vec<u8> {
    String::from_utf8_lossy(body).replace(id, "<id>").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_resource_is_answered_exactly_like_a_missing_one() {
    for profile in rebuff::Catalog::PROFILES {
        let s = start(profile, Opts { users: false, ..Opts::default() }).await;
        let theirs = s.create_as(&s.other_org_admin, "/v1/projects", json!({"name": "secret-plans"})).await;
        let model = s
            .create_as(
                &s.other_org_admin,
                "/v1/models",
                json!({"name": "m", "model_type": "tvae", "config": {"batch_size": 1}}),
            )
            .await;
        for (foreign, missing) in [
            (format!("/v1/projects/{theirs}"), "/v1/projects/prj_000000000000".to_owned()),
            (format!("/v1/models/{model}"), "/v1/models/mdl_000000000000".to_owned()),
        ] {
            let a = answer(s.get(&foreign, &s.admin)).await;
            let b = answer(s.get(&missing, &s.admin)).await;
            assert_eq!((a.status, b.status), (404, 404), "{profile}");
            let id = |x: &support::Answer| x.headers["x-request-id"].to_str().expect("ascii").to_owned();
            // Same bytes once the id in the path and the request id are set aside.
            let a_body = String::from_utf8_lossy(&without_request_id(&a.body, &id(&a)))
                .replace(foreign.rsplit('/').next().unwrap_or_default(), "<rid>");
            let b_body = String::from_utf8_lossy(&without_request_id(&b.body, &id(&b)))
                .replace(missing.rsplit('/').next().unwrap_or_default(), "<rid>");
            assert_eq!(a_body, b_body, "{profile}: {foreign}");
            let mut ha: Vec<_> =
                a.headers.iter().filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date")).collect();
            let mut hb: Vec<_> =
                b.headers.iter().filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date")).collect();
            ha.sort_by_key(|(k, _)| k.as_str());
            hb.sort_by_key(|(k, _)| k.as_str());
            let names = |h: &[(&http::HeaderName, &http::HeaderValue)]| {
                h.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>()
            };
            assert_eq!(names(&ha), names(&hb), "{profile}: same headers");
        }
    }
}

/// Sends raw bytes, since HTTP clients refuse to send a CR/LF in a header value.
fn raw_request(base: &str, request: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
    stream.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_incoming_request_id_is_never_reflected() {
    let s = start("rebuff", Opts { users: false, ..Opts::default() }).await;
    let good = answer(s.http.get(s.url("/v1/nothing")).header("x-request-id", "trace-42.abc:1")).await;
    assert_eq!(good.headers["x-request-id"], "trace-42.abc:1");
    assert!(String::from_utf8_lossy(&good.body).contains("\"request_id\":\"trace-42.abc:1\""));
    let long = "a".repeat(129);
    let cases: Vec<Vec<u8>> = vec![
        format!("GET /v1/nothing HTTP/1.1\r\nHost: x\r\nX-Request-Id: {long}\r\nConnection: close\r\n\r\n").into_bytes(),
        b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\nX-Request-Id: evil\x01id\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\nX-Request-Id: a b<script>\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\nX-Request-Id: two\r\nConnection: close\r\n\r\n".to_vec(),
    ];
    for req in cases {
        let res = tokio::task::spawn_blocking({
            let base = s.base.clone();
            move || raw_request(&base, &req)
        })
        .await
        .expect("join");
        // The fresh id is random alphanumerics, which may spell `one` or `two` by chance:
        // look for the incoming values in the rest of the response.
        let fresh = res.lines().find_map(|l| {
            l.to_ascii_lowercase().starts_with("x-request-id: req_").then(|| l[14..].trim().to_owned())
        });
        let lower = fresh.map_or(res.clone(), |id| res.replace(&id, "req_<fresh>")).to_ascii_lowercase();
        for bad in [long.as_str(), "evil", "<script>", "one", "two"] {
            assert!(!lower.contains(bad), "reflected {bad}: {res}");
        }
        if res.starts_with("HTTP/1.1 404") {
            assert!(lower.contains("x-request-id: req_"), "a fresh id replaces it: {res}");
        }
    }
    // A CR/LF cannot even reach the server as one header: the request is refused or split.
    let res = raw_request(&s.base, b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\rSet-Cookie: x=1\r\nConnection: close\r\n\r\n");
    assert!(!res.to_ascii_lowercase().contains("set-cookie: x=1"), "{res}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_admits_exactly_the_limit_under_concurrent_load() {
    let s = start("dataxid", Opts { rate: 25, users: false, ..Opts::default() }).await;
    let mut tasks = Vec::new();
    for _ in 0..120 {
        let req = s.get("/v1/projects", &s.admin);
        tasks.push(tokio::spawn(answer(req)));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        let a = t.await.expect("join");
        for h in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "ratelimit",
            "ratelimit-policy",
        ] {
            assert!(a.headers.contains_key(h), "{h} on every response");
        }
        assert_eq!(a.headers["x-ratelimit-limit"], "25");
        match a.status {
            200 => ok += 1,
            429 => {
                limited += 1;
                let secs: u64 = a.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
                assert!(secs >= 1);
                assert_eq!(a.headers["x-ratelimit-remaining"], "0");
                let v: Value = serde_json::from_slice(&a.body).expect("json");
                assert_eq!(v["error"]["code"], "rate_limit_exceeded");
                assert_eq!(v["error"]["type"], "rate_limit_error");
                assert_eq!(
                    v["error"]["message"],
                    format!("Rate limit exceeded. Retry after {secs} seconds.")
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    // The window is a minute and the test takes well under 2.4 s, the time to earn one more.
    assert_eq!((ok, limited), (25, 95));
    // The limit is per organisation: another organisation is not affected.
    assert_eq!(answer(s.get("/v1/projects", &s.other_org_admin)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_database_gives_a_masked_error_and_the_server_keeps_serving() {
    let s = start("rebuff", Opts { users: false, ..Opts::default() }).await;
    let project = s.create("/v1/projects", json!({"name": "before"})).await;
    // Overwrite the file's header, and the write-ahead log and its index so that SQLite reads
    // the file again: every later query fails with "file is not a database".
    let mut shm = s.db.clone().into_os_string();
    shm.push("-shm");
    let mut wal = s.db.clone().into_os_string();
    wal.push("-wal");
    for (path, bytes) in [(s.db.clone().into_os_string(), 4096), (wal, 0), (shm, 32 * 1024)] {
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else { continue };
        f.set_len(bytes as u64).expect("resize");
        f.write_all(&vec![0xAB; bytes]).expect("corrupt");
        f.sync_all().expect("sync");
    }
    let a = answer(s.get(&format!("/v1/projects/{project}"), &s.admin)).await;
    assert!(a.status >= 500, "status {}", a.status);
    let body = String::from_utf8_lossy(&a.body);
    for leak in ["not a database", "SQLITE", "rusqlite", ".db", "file"] {
        assert!(!body.contains(leak), "leaks {leak}: {body}");
    }
    let v: Value = serde_json::from_slice(&a.body).expect("json");
    assert!(v["request_id"].as_str().is_some_and(|id| id.starts_with("req_")));
    // Routes that need no database still answer.
    assert_eq!(answer(s.http.get(s.url("/healthz"))).await.status, 200);
    assert_eq!(answer(s.http.get(s.url("/errors.json"))).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_openapi_and_every_type_uri_resolve_on_the_served_reference() {
    for profile in rebuff::Catalog::PROFILES {
        let s = start(profile, Opts { users: false, ..Opts::default() }).await;
        let page = answer(s.http.get(s.url("/errors"))).await;
        let html = String::from_utf8_lossy(&page.body).into_owned();
        // The page's inline style and filter script are allowed by hash, and nothing else.
        let csp =
            page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert_eq!(csp, rebuff::docs::html_content_security_policy(), "{profile}");
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-") && csp.contains("script-src 'sha256-")
        );
        assert!(html.contains("<script>") && html.contains("<style>"), "{profile}");
        for e in s.catalog.entries() {
            let anchor = e.type_uri.rsplit_once('#').map(|(_, a)| a).expect("fragment");
            assert!(html.contains(&format!("id=\"{anchor}\"")), "{profile}: #{anchor} missing on /errors");
        }
        let json: Value =
            serde_json::from_slice(&answer(s.http.get(s.url("/errors.json"))).await.body).expect("json");
        assert_eq!(json["errors"].as_array().map(Vec::len), Some(s.catalog.entries().len()));
        let api: Value =
            serde_json::from_slice(&answer(s.http.get(s.url("/openapi.json"))).await.body).expect("json");
        assert_eq!(api["openapi"], "3.1.0");
        let refs = api.to_string();
        for r in refs.split("\"$ref\":\"#/").skip(1) {
            let path = r.split('"').next().unwrap_or_default();
            assert!(api.pointer(&format!("/{path}")).is_some(), "{profile}: dangling $ref {path}");
        }
        let create = &api["paths"]["/v1/projects"]["post"]["responses"];
        for status in ["401", "409", "415", "422", "429"] {
            assert!(create.get(status).is_some(), "{profile}: createProject lists {status}");
        }
    }
}
