//! Accounts over real HTTP: login limits, sessions, API keys, webhooks, debug output, and a
//! graceful shutdown that keeps every committed write.

mod support;

use serde_json::{Value, json};
use support::{ACTIVE_EMAIL, Opts, answer, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_limited_per_email_and_per_address() {
    let s = start("mlops", Opts::default()).await;
    let attempt = |email: &str| {
        s.http.post(s.url("/v1/auth/login")).json(&json!({"email": email, "password": "not the password"}))
    };
    // Five attempts a minute per email and per address (the defaults).
    for _ in 0..5 {
        assert_eq!(answer(attempt(ACTIVE_EMAIL)).await.status, 401);
    }
    let limited = answer(attempt(ACTIVE_EMAIL)).await;
    assert_eq!(limited.status, 429);
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    let v: Value = serde_json::from_slice(&limited.body).expect("json");
    assert_eq!(v["detail"], "Too many login attempts. Try again later.");
    // The address is spent too: another email from it is refused as well.
    assert_eq!(answer(attempt("someone@demo.test")).await.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_log_out_and_keys_are_created_listed_and_revoked_over_the_api() {
    let s = start("rebuff", Opts::default()).await;
    let (cookie, csrf) = s.login(ACTIVE_EMAIL).await;
    let me = s.http.get(s.url("/v1/projects")).header("cookie", &cookie);
    assert_eq!(answer(me).await.status, 200);
    let out = s.http.post(s.url("/v1/auth/logout")).header("cookie", &cookie).header("x-csrf-token", &csrf);
    assert_eq!(answer(out).await.status, 204);
    let after = answer(s.http.get(s.url("/v1/projects")).header("cookie", &cookie)).await;
    assert_eq!(after.status, 401, "the session is gone");

    // Sessions never get the admin scope.
    let (cookie, csrf) = s.login(ACTIVE_EMAIL).await;
    let keys = s.http.get(s.url("/v1/api-keys")).header("cookie", &cookie).header("x-csrf-token", &csrf);
    assert_eq!(answer(keys).await.status, 403);

    let created = s
        .post_json(
            "/v1/api-keys",
            &s.admin,
            json!({"name": "ci", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00Z", "allowed_ips": ["127.0.0.1"]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let key = created["key"].as_str().expect("key text once").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(answer(s.get("/v1/projects", &key)).await.status, 200);
    let listed = answer(s.get("/v1/api-keys", &s.admin)).await;
    let listed = String::from_utf8_lossy(&listed.body).into_owned();
    assert!(listed.contains(&id) && !listed.contains(&key), "listed without the secret");
    assert_eq!(
        answer(s.http.delete(s.url(&format!("/v1/api-keys/{id}"))).bearer_auth(&s.admin)).await.status,
        204
    );
    let revoked = answer(s.get("/v1/projects", &key)).await;
    assert_eq!(revoked.status, 401);
    assert!(String::from_utf8_lossy(&revoked.body).contains("api_key_revoked"));
    // A bad scope and a past expiry are refused together, with both fields named.
    let bad = answer(s.post_json(
        "/v1/api-keys",
        &s.admin,
        json!({"scopes": ["root"], "expires_at": "2001-01-01T00:00:00Z"}),
    ))
    .await;
    assert_eq!(bad.status, 422);
    let v: Value = serde_json::from_slice(&bad.body).expect("json");
    let pointers: Vec<&str> =
        v["errors"].as_array().expect("errors").iter().filter_map(|e| e["pointer"].as_str()).collect();
    assert_eq!(pointers, ["/scopes/0", "/expires_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_accepted_and_a_tampered_or_stale_one_is_not() {
    let s = start("incidents", Opts { users: false, ..Opts::default() }).await;
    let body = br#"{"type":"incident.created"}"#;
    let now = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs(),
    )
    .expect("fits");
    let secret = support::WEBHOOK_SECRET;
    let send = |sig: String, body: &'static [u8]| {
        s.http
            .post(s.url("/v1/webhooks/incoming"))
            .header("content-type", "application/json")
            .header("rebuff-signature", sig)
            .body(body)
    };
    let ok = answer(send(rebuff_axum::auth::webhook::sign(secret, now, body), body)).await;
    assert_eq!(ok.status, 202, "{}", String::from_utf8_lossy(&ok.body));
    let tampered =
        answer(send(rebuff_axum::auth::webhook::sign(secret, now, body), br#"{"type":"x"}"#)).await;
    let stale = answer(send(rebuff_axum::auth::webhook::sign(secret, now - 3600, body), body)).await;
    for a in [tampered, stale] {
        assert_eq!(a.status, 401);
        let v: Value = serde_json::from_slice(&a.body).expect("json");
        assert_eq!(v["code"], "INVALID_SIGNATURE");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_mode_shows_the_cause_and_the_default_never_does() {
    for debug in [false, true] {
        let s = start("rebuff", Opts { users: false, debug, ..Opts::default() }).await;
        let a = answer(s.http.get(s.url("/v1/_fault/database"))).await;
        assert_eq!(a.status, 500);
        assert_eq!(String::from_utf8_lossy(&a.body).contains("no_such_table"), debug);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_keeps_every_committed_write() {
    let s = start("rebuff", Opts { users: false, ..Opts::default() }).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(s.create("/v1/projects", json!({"name": format!("p{i}")})).await);
    }
    let admin = s.admin.clone();
    let db = s.stop().await;
    let store = rebuff_sqlite::SqliteStore::open(&db).expect("reopen");
    let count: i64 = store
        .with_conn(|c| c.query_row("SELECT COUNT(*) FROM projects", [], |r| r.get(0)))
        .await
        .expect("count");
    assert_eq!(count, 20);
    let key = rebuff_axum::auth::key::parse(&admin).expect("key");
    assert!(rebuff_axum::store::KeyStore::find_key(&store, &key.id).await.expect("find").is_some());
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}
