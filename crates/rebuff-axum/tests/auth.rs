//! Authentication, scopes, IP allow-lists, sessions with CSRF and webhook signatures, over real
//! HTTP on loopback: what a client sees for every code these layers raise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use rebuff::Catalog;
use rebuff_axum::auth::webhook::{SIGNATURE_HEADER, sign};
use rebuff_axum::auth::{
    AuthLayer, MemoryAuthStore, Principal, RequireScopeLayer, Subject, WebhookSignatureLayer, key,
};
use rebuff_axum::store::{BoxFuture, KeyRecord, KeyStore, SessionRecord, SessionStore, StoreError};
use rebuff_axum::{ProblemLayer, RequestIdLayer};
use serde_json::{Value, json};

const WEBHOOK_SECRET: &[u8] = b"whsec_test_0123456789";
const REALM: &str = "Bearer realm=\"api\"";
const INVALID_TOKEN: &str = "Bearer realm=\"api\", error=\"invalid_token\"";

fn now() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs();
    i64::try_from(secs).expect("seconds fit in i64")
}

async fn me(principal: Principal) -> axum::Json<Value> {
    let subject = match principal.subject {
        Subject::Key { id, live } => json!({"key": id, "live": live}),
        Subject::Session { user_id } => json!({"user": user_id}),
    };
    axum::Json(json!({"org": principal.org_id, "subject": subject, "scopes": principal.scopes}))
}

async fn ok() -> &'static str {
    "ok"
}

/// The application under test: every layer, each on the routes it guards.
fn app(catalog: &'static Catalog, keys: Arc<dyn KeyStore>, sessions: Arc<dyn SessionStore>) -> Router {
    let reads = Router::new().route("/v1/me", get(me).post(me).delete(me));
    let writes = Router::new().route("/v1/things", post(ok)).route_layer(RequireScopeLayer::new("write"));
    let admin = Router::new().route("/v1/admin", get(ok)).route_layer(RequireScopeLayer::new("admin"));
    let api = reads.merge(writes).merge(admin).layer(AuthLayer::new(keys.clone()).sessions(sessions));
    // Keys only: no session store.
    let keys_only = Router::new().route("/keys/me", get(me)).layer(AuthLayer::new(keys));
    // Wiring mistakes: no AuthLayer in front.
    let unguarded = Router::new().route("/unguarded/me", get(me)).merge(
        Router::new().route("/unguarded/things", post(ok)).route_layer(RequireScopeLayer::new("write")),
    );
    let hooks = Router::new()
        .route("/v1/webhooks/incoming", post(|body: String| async move { body }))
        .route_layer(WebhookSignatureLayer::new(WEBHOOK_SECRET, Duration::from_secs(300)));
    api.merge(keys_only)
        .merge(unguarded)
        .merge(hooks)
        .layer(ProblemLayer::new(Arc::new(catalog.clone())))
        .layer(RequestIdLayer::new())
}

async fn spawn(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
    });
    format!("http://{addr}")
}

/// A running server over one memory store.
struct Server {
    base: String,
    store: Arc<MemoryAuthStore>,
    http: reqwest::Client,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(Catalog::standard()).await
    }

    async fn start_with(catalog: &'static Catalog) -> Self {
        let store = Arc::new(MemoryAuthStore::new());
        let base = spawn(app(catalog, store.clone(), store.clone())).await;
        Server { base, store, http: reqwest::Client::new() }
    }

    /// Stores a test key of `org_1` with `scopes`, changed by `edit`; returns the key text.
    fn key(&self, scopes: &[&str], edit: impl FnOnce(&mut KeyRecord)) -> String {
        let generated = key::generate(false);
        let mut record = KeyRecord {
            id: generated.id.as_str().into(),
            org_id: "org_1".into(),
            secret_hash: generated.secret_hash,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at: None,
            revoked_at: None,
            allowed_ips: Vec::new(),
            live: false,
        };
        edit(&mut record);
        self.store.insert_key(record);
        generated.text
    }

    /// Stores a session of `usr_1`, changed by `edit`; returns (cookie token, CSRF token).
    fn session(&self, edit: impl FnOnce(&mut SessionRecord)) -> (String, String) {
        let (token, csrf) = (key::token(), key::token());
        let mut record = SessionRecord {
            token_hash: key::hash_secret(&token),
            user_id: "usr_1".into(),
            org_id: "org_1".into(),
            csrf_hash: key::hash_secret(&csrf),
            expires_at: now() + 3600,
            user_disabled: false,
        };
        edit(&mut record);
        self.store.insert_session(record);
        (token, csrf)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }
}

/// What the client sees.
struct Seen {
    status: u16,
    www_authenticate: Option<String>,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Seen {
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let www_authenticate =
        res.headers().get("www-authenticate").map(|v| v.to_str().expect("ASCII challenge").to_owned());
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Seen { status, www_authenticate, body }
}

/// Asserts an error response of the default profile.
fn assert_error(seen: &Seen, status: u16, code: &str, challenge: Option<&str>) {
    assert_eq!(seen.status, status, "status of {}", seen.body);
    assert_eq!(seen.body["code"], code, "code of {}", seen.body);
    assert_eq!(seen.body["status"], status, "status member of {}", seen.body);
    let request_id = seen.body["request_id"].as_str().expect("request id in the body");
    assert!(request_id.starts_with("req_"), "{request_id}");
    assert_eq!(seen.www_authenticate.as_deref(), challenge, "WWW-Authenticate of {code}");
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

// ---- API keys ---------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_key_authenticates_as_its_organisation() {
    let s = Server::start().await;
    let key = s.key(&["read"], |_| {});
    let id = key::parse(&key).expect("generated keys parse").id;
    let seen = send(s.get("/v1/me").header("authorization", bearer(&key))).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body, json!({"org": "org_1", "subject": {"key": id, "live": false}, "scopes": ["read"]}));
    // The scheme is case-insensitive.
    let seen = send(s.get("/v1/me").header("authorization", format!("bEARER {key}"))).await;
    assert_eq!(seen.status, 200);
}

#[tokio::test]
async fn no_credential_is_api_key_missing_without_sessions() {
    let s = Server::start().await;
    let seen = send(s.get("/keys/me")).await;
    assert_error(&seen, 401, "api_key_missing", Some(REALM));
    // A session cookie means nothing where sessions are not configured.
    let (token, _) = s.session(|_| {});
    let seen = send(s.get("/keys/me").header("cookie", format!("rebuff_session={token}"))).await;
    assert_error(&seen, 401, "api_key_missing", Some(REALM));
}

#[tokio::test]
async fn no_credential_is_authentication_required_with_sessions() {
    let s = Server::start().await;
    let seen = send(s.get("/v1/me")).await;
    assert_error(&seen, 401, "authentication_required", Some(REALM));
    let seen = send(s.get("/v1/me").header("cookie", "theme=dark; other=1")).await;
    assert_error(&seen, 401, "authentication_required", Some(REALM));
}

#[tokio::test]
async fn a_malformed_authorization_is_api_key_malformed() {
    let s = Server::start().await;
    let key = s.key(&["read"], |_| {});
    for value in [
        format!("Basic {key}"),
        key.clone(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer not-a-key".to_owned(),
        format!("Bearer {key}x"),
        format!("Bearer \"{key}\""),
        format!("Bearer {}", key.replace("rb_test_", "sk_test_")),
    ] {
        let seen = send(s.get("/v1/me").header("authorization", &value)).await;
        assert_error(&seen, 401, "api_key_malformed", Some(REALM));
    }
}

#[tokio::test]
async fn an_unknown_or_wrong_key_is_api_key_invalid() {
    let s = Server::start().await;
    let key = s.key(&["read"], |_| {});
    let unknown = key::generate(false).text;
    let (prefix_and_id, _) = key.rsplit_once('_').expect("key has a secret");
    let wrong_secret = format!("{prefix_and_id}_{}", "A".repeat(key::SECRET_LEN));
    let wrong_mode = key.replace("rb_test_", "rb_live_");
    for key in [unknown, wrong_secret, wrong_mode] {
        let seen = send(s.get("/v1/me").header("authorization", bearer(&key))).await;
        assert_error(&seen, 401, "api_key_invalid", Some(INVALID_TOKEN));
    }
}

#[tokio::test]
async fn a_revoked_key_is_api_key_revoked() {
    let s = Server::start().await;
    let key = s.key(&["read"], |r| r.revoked_at = Some(now() - 10));
    let seen = send(s.get("/v1/me").header("authorization", bearer(&key))).await;
    assert_error(&seen, 401, "api_key_revoked", Some(INVALID_TOKEN));

    let key = s.key(&["read"], |_| {});
    assert_eq!(send(s.get("/v1/me").header("authorization", bearer(&key))).await.status, 200);
    let id = key::parse(&key).expect("parses").id;
    assert!(s.store.revoke_key_at(&id, now()));
    let seen = send(s.get("/v1/me").header("authorization", bearer(&key))).await;
    assert_error(&seen, 401, "api_key_revoked", Some(INVALID_TOKEN));
}

#[tokio::test]
async fn an_expired_key_is_api_key_expired() {
    let s = Server::start().await;
    let key = s.key(&["read"], |r| r.expires_at = Some(now() - 1));
    let seen = send(s.get("/v1/me").header("authorization", bearer(&key))).await;
    assert_error(&seen, 401, "api_key_expired", Some(INVALID_TOKEN));
    let key = s.key(&["read"], |r| r.expires_at = Some(now() + 3600));
    assert_eq!(send(s.get("/v1/me").header("authorization", bearer(&key))).await.status, 200);
}

#[tokio::test]
async fn a_revoked_key_with_a_wrong_secret_is_only_invalid() {
    let s = Server::start().await;
    let key = s.key(&["read"], |r| r.revoked_at = Some(now()));
    let (prefix_and_id, _) = key.rsplit_once('_').expect("key has a secret");
    let guessed = format!("{prefix_and_id}_{}", "B".repeat(key::SECRET_LEN));
    let seen = send(s.get("/v1/me").header("authorization", bearer(&guessed))).await;
    assert_error(&seen, 401, "api_key_invalid", Some(INVALID_TOKEN));
}

#[tokio::test]
async fn a_key_used_outside_its_allow_list_is_ip_not_allowed() {
    let s = Server::start().await;
    let key = s.key(&["read"], |r| r.allowed_ips = vec!["10.0.0.0/8".parse().expect("CIDR")]);
    let seen = send(s.get("/v1/me").header("authorization", bearer(&key))).await;
    assert_error(&seen, 403, "ip_not_allowed", None);
    assert_eq!(seen.body["detail"], "Requests from 127.0.0.1 are not allowed for this API key.");

    let key = s.key(&["read"], |r| {
        r.allowed_ips = vec!["10.0.0.0/8".parse().expect("CIDR"), "127.0.0.0/8".parse().expect("CIDR")];
    });
    assert_eq!(send(s.get("/v1/me").header("authorization", bearer(&key))).await.status, 200);
}

#[tokio::test]
async fn without_connect_info_a_key_with_an_allow_list_is_refused() {
    use tower::ServiceExt;

    let store = Arc::new(MemoryAuthStore::new());
    let app = app(Catalog::standard(), store.clone(), store.clone());
    let generated = key::generate(false);
    store.insert_key(KeyRecord {
        id: generated.id.as_str().into(),
        org_id: "org_1".into(),
        secret_hash: generated.secret_hash,
        scopes: vec!["read".into()].into(),
        expires_at: None,
        revoked_at: None,
        allowed_ips: vec!["127.0.0.0/8".parse().expect("CIDR")],
        live: false,
    });
    let req = http::Request::get("/v1/me")
        .header("authorization", bearer(&generated.text))
        .body(axum::body::Body::empty())
        .expect("request");
    let res = app.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), 403);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.expect("body");
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["code"], "ip_not_allowed");
}

// ---- store failures ---------------------------------------------------------------------

struct Down;

impl KeyStore for Down {
    fn find_key<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
        Box::pin(async { Err(StoreError::unavailable("connection refused to 10.1.2.3:5432")) })
    }
}

impl SessionStore for Down {
    fn find_session<'a>(
        &'a self,
        _: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async { Err(StoreError::backend("SELECT * FROM sessions: disk I/O error")) })
    }
}

#[tokio::test]
async fn a_failing_store_is_masked() {
    let down = Arc::new(Down);
    let base = spawn(app(Catalog::standard(), down.clone(), down)).await;
    let http = reqwest::Client::new();
    let key = key::generate(false).text;
    let seen = send(http.get(format!("{base}/v1/me")).header("authorization", bearer(&key))).await;
    assert_eq!(seen.status, 503);
    assert_eq!(seen.body["code"], "service_unavailable");
    assert!(!seen.body.to_string().contains("10.1.2.3"), "{}", seen.body);

    let seen = send(http.get(format!("{base}/v1/me")).header("cookie", "rebuff_session=abc")).await;
    assert_eq!(seen.status, 500);
    assert_eq!(seen.body["code"], "database_error");
    assert!(!seen.body.to_string().contains("SELECT"), "{}", seen.body);
}

// ---- scopes -----------------------------------------------------------------------------

#[tokio::test]
async fn a_key_without_the_scope_is_insufficient_scope() {
    let s = Server::start().await;
    let read = s.key(&["read"], |_| {});
    let seen = send(s.post("/v1/things").header("authorization", bearer(&read))).await;
    assert_error(
        &seen,
        403,
        "insufficient_scope",
        Some("Bearer error=\"insufficient_scope\", scope=\"write\""),
    );
    assert_eq!(seen.body["detail"], "This API key lacks the `write` scope.");

    let write = s.key(&["read", "write"], |_| {});
    assert_eq!(send(s.post("/v1/things").header("authorization", bearer(&write))).await.status, 200);
    let seen = send(s.get("/v1/admin").header("authorization", bearer(&write))).await;
    assert_error(
        &seen,
        403,
        "insufficient_scope",
        Some("Bearer error=\"insufficient_scope\", scope=\"admin\""),
    );
    assert_eq!(seen.body["detail"], "This API key lacks the `admin` scope.");
}

#[tokio::test]
async fn admin_implies_every_scope() {
    let s = Server::start().await;
    let admin = s.key(&["admin"], |_| {});
    assert_eq!(send(s.post("/v1/things").header("authorization", bearer(&admin))).await.status, 200);
    assert_eq!(send(s.get("/v1/admin").header("authorization", bearer(&admin))).await.status, 200);
}

#[tokio::test]
async fn authentication_comes_before_scopes() {
    let s = Server::start().await;
    let seen = send(s.post("/v1/things")).await;
    assert_error(&seen, 401, "authentication_required", Some(REALM));
}

#[tokio::test]
async fn routes_without_the_auth_layer_refuse_rather_than_let_through() {
    let s = Server::start().await;
    let seen = send(s.get("/unguarded/me")).await;
    assert_error(&seen, 401, "authentication_required", Some(REALM));
    let seen = send(s.post("/unguarded/things")).await;
    assert_error(&seen, 401, "authentication_required", Some(REALM));
}

// ---- sessions ---------------------------------------------------------------------------

fn cookie(token: &str) -> String {
    format!("theme=dark; rebuff_session={token}; other=1")
}

#[tokio::test]
async fn a_session_reads_without_csrf_and_writes_with_it() {
    let s = Server::start().await;
    let (token, csrf) = s.session(|_| {});
    let seen = send(s.get("/v1/me").header("cookie", cookie(&token))).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body, json!({"org": "org_1", "subject": {"user": "usr_1"}, "scopes": ["read", "write"]}));

    let seen =
        send(s.post("/v1/things").header("cookie", cookie(&token)).header("x-csrf-token", &csrf)).await;
    assert_eq!(seen.status, 200);

    let seen = send(s.post("/v1/things").header("cookie", cookie(&token))).await;
    assert_error(&seen, 403, "csrf_failed", None);
    let seen =
        send(s.post("/v1/things").header("cookie", cookie(&token)).header("x-csrf-token", &token)).await;
    assert_error(&seen, 403, "csrf_failed", None);
    let seen = send(s.http.delete(format!("{}/v1/me", s.base)).header("cookie", cookie(&token))).await;
    assert_eq!(seen.status, 403, "DELETE needs the token too: {}", seen.body);
}

#[tokio::test]
async fn a_session_is_not_admin() {
    let s = Server::start().await;
    let (token, _) = s.session(|_| {});
    let seen = send(s.get("/v1/admin").header("cookie", cookie(&token))).await;
    assert_error(
        &seen,
        403,
        "insufficient_scope",
        Some("Bearer error=\"insufficient_scope\", scope=\"admin\""),
    );
    assert_eq!(seen.body["detail"], "This session lacks the `admin` scope.");
}

#[tokio::test]
async fn an_expired_or_unknown_session_is_session_expired() {
    let s = Server::start().await;
    let (token, _) = s.session(|r| r.expires_at = now() - 1);
    let seen = send(s.get("/v1/me").header("cookie", cookie(&token))).await;
    assert_error(&seen, 401, "session_expired", Some(REALM));
    assert_eq!(seen.body["detail"], "Your session has expired. Please sign in again.");

    let seen = send(s.get("/v1/me").header("cookie", cookie(&key::token()))).await;
    assert_error(&seen, 401, "session_expired", Some(REALM));
    assert_eq!(seen.body["detail"], "The session is not valid or has expired");

    let (token, _) = s.session(|_| {});
    assert!(s.store.remove_session(&key::hash_secret(&token)));
    let seen = send(s.get("/v1/me").header("cookie", cookie(&token))).await;
    assert_error(&seen, 401, "session_expired", Some(REALM));
}

#[tokio::test]
async fn a_disabled_account_is_account_disabled() {
    let s = Server::start().await;
    let (token, csrf) = s.session(|r| r.user_disabled = true);
    let seen = send(s.get("/v1/me").header("cookie", cookie(&token))).await;
    assert_error(&seen, 403, "account_disabled", None);
    let seen = send(s.post("/v1/things").header("cookie", cookie(&token)).header("x-csrf-token", csrf)).await;
    assert_error(&seen, 403, "account_disabled", None);
}

#[tokio::test]
async fn an_api_key_wins_over_a_session_cookie() {
    let s = Server::start().await;
    let (token, _) = s.session(|_| {});
    let seen =
        send(s.post("/v1/things").header("cookie", cookie(&token)).header("authorization", "Bearer nope"))
            .await;
    assert_error(&seen, 401, "api_key_malformed", Some(REALM));
    // A key needs no CSRF token: it is not sent by the browser on its own.
    let write = s.key(&["write"], |_| {});
    let seen =
        send(s.post("/v1/things").header("cookie", cookie(&token)).header("authorization", bearer(&write)))
            .await;
    assert_eq!(seen.status, 200);
}

// ---- webhooks ---------------------------------------------------------------------------

const EVENT: &str = r#"{"event":"model.ready","id":"mdl_123"}"#;

#[tokio::test]
async fn a_signed_webhook_passes_with_its_body_unchanged() {
    let s = Server::start().await;
    let seen = send(
        s.post("/v1/webhooks/incoming")
            .header(SIGNATURE_HEADER, sign(WEBHOOK_SECRET, now(), EVENT.as_bytes()))
            .body(EVENT),
    )
    .await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body, serde_json::from_str::<Value>(EVENT).expect("JSON"));

    // During a secret rotation the sender signs twice; one match is enough.
    let t = now();
    let old = sign(b"whsec_old", t, EVENT.as_bytes());
    let new = sign(WEBHOOK_SECRET, t, EVENT.as_bytes());
    let new_v1 = new.split_once(",v1=").expect("v1").1;
    let header = format!("{old},v1={new_v1}");
    let seen = send(s.post("/v1/webhooks/incoming").header(SIGNATURE_HEADER, header).body(EVENT)).await;
    assert_eq!(seen.status, 200);
}

#[tokio::test]
async fn a_tampered_webhook_is_invalid_signature() {
    let s = Server::start().await;
    let header = sign(WEBHOOK_SECRET, now(), EVENT.as_bytes());
    let tampered = EVENT.replace("mdl_123", "mdl_999");
    let seen = send(s.post("/v1/webhooks/incoming").header(SIGNATURE_HEADER, &header).body(tampered)).await;
    assert_error(&seen, 401, "invalid_signature", Some(REALM));
    assert_eq!(seen.body["detail"], "No signature in the Rebuff-Signature header matches the request body.");

    let wrong_secret = sign(b"whsec_other", now(), EVENT.as_bytes());
    let seen = send(s.post("/v1/webhooks/incoming").header(SIGNATURE_HEADER, wrong_secret).body(EVENT)).await;
    assert_error(&seen, 401, "invalid_signature", Some(REALM));
}

#[tokio::test]
async fn a_stale_webhook_is_invalid_signature() {
    let s = Server::start().await;
    for (t, detail) in [
        (now() - 301, "The signature timestamp is more than 300 seconds old."),
        // Ahead of the clock, the default tolerance is narrower (30 s).
        (now() + 31, "The signature timestamp is more than 30 seconds ahead of the server's clock."),
    ] {
        let header = sign(WEBHOOK_SECRET, t, EVENT.as_bytes());
        let seen = send(s.post("/v1/webhooks/incoming").header(SIGNATURE_HEADER, header).body(EVENT)).await;
        assert_error(&seen, 401, "invalid_signature", Some(REALM));
        assert_eq!(seen.body["detail"], detail);
    }
}

#[tokio::test]
async fn a_missing_or_malformed_signature_is_invalid_signature() {
    let s = Server::start().await;
    let seen = send(s.post("/v1/webhooks/incoming").body(EVENT)).await;
    assert_error(&seen, 401, "invalid_signature", Some(REALM));
    assert_eq!(seen.body["detail"], "The Rebuff-Signature header is missing.");

    for header in ["v1=abc", "t=now,v1=00", "sha256=deadbeef"] {
        let seen = send(s.post("/v1/webhooks/incoming").header(SIGNATURE_HEADER, header).body(EVENT)).await;
        assert_error(&seen, 401, "invalid_signature", Some(REALM));
        assert_eq!(
            seen.body["detail"],
            "The Rebuff-Signature header is malformed: expected `t=<unix seconds>,v1=<hex HMAC-SHA256>`."
        );
    }
}

#[tokio::test]
async fn an_oversized_webhook_is_payload_too_large() {
    let s = Server::start().await;
    let body = vec![b'a'; 1024 * 1024 + 1];
    let header = sign(WEBHOOK_SECRET, now(), &body);
    let seen =
        send(s.post("/v1/webhooks/incoming").header(SIGNATURE_HEADER, header).body(body.clone())).await;
    assert_error(&seen, 413, "payload_too_large", None);

    // Without a Content-Length the limit holds while reading.
    use tower::ServiceExt;
    let store = Arc::new(MemoryAuthStore::new());
    let app = app(Catalog::standard(), store.clone(), store);
    let req = http::Request::post("/v1/webhooks/incoming")
        .header(SIGNATURE_HEADER, sign(WEBHOOK_SECRET, now(), &body))
        .body(axum::body::Body::from(body))
        .expect("request");
    assert!(req.headers().get("content-length").is_none());
    let res = app.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), 413);
}

// ---- another profile --------------------------------------------------------------------

#[tokio::test]
async fn the_incidents_profile_speaks_its_own_codes() {
    let catalog = Catalog::builtin("incidents").expect("the incidents profile is built in");
    let s = Server::start_with(catalog).await;

    let unknown = key::generate(false).text;
    let seen = send(s.get("/v1/me").header("authorization", bearer(&unknown))).await;
    assert_eq!(seen.status, 401);
    assert_eq!(seen.body["code"], "UNAUTHORIZED");
    assert_eq!(seen.body["message"], "Unauthorized: Invalid API key");
    assert_eq!(seen.www_authenticate.as_deref(), Some(INVALID_TOKEN));
    assert!(seen.body["request_id"].as_str().is_some_and(|id| id.starts_with("req_")));

    let seen = send(s.get("/v1/me")).await;
    assert_eq!((seen.status, &seen.body["code"]), (401, &json!("UNAUTHORIZED")));

    let read = s.key(&["read"], |_| {});
    let seen = send(s.post("/v1/things").header("authorization", bearer(&read))).await;
    assert_eq!(seen.status, 403);
    assert_eq!(seen.body["code"], "FORBIDDEN");

    let fenced = s.key(&["read"], |r| r.allowed_ips = vec!["10.0.0.0/8".parse().expect("CIDR")]);
    let seen = send(s.get("/v1/me").header("authorization", bearer(&fenced))).await;
    assert_eq!(seen.status, 403);
    assert_eq!(seen.body["code"], "FORBIDDEN");

    let (token, _) = s.session(|r| r.expires_at = now() - 1);
    let seen = send(s.get("/v1/me").header("cookie", cookie(&token))).await;
    assert_eq!((seen.status, &seen.body["code"]), (401, &json!("SESSION_EXPIRED")));

    let (token, _) = s.session(|_| {});
    let seen = send(s.post("/v1/things").header("cookie", cookie(&token))).await;
    assert_eq!((seen.status, &seen.body["code"]), (403, &json!("CSRF_VALIDATION_FAILED")));

    let (token, _) = s.session(|r| r.user_disabled = true);
    let seen = send(s.get("/v1/me").header("cookie", cookie(&token))).await;
    assert_eq!((seen.status, &seen.body["code"]), (403, &json!("ACCOUNT_DISABLED")));

    let seen = send(s.post("/v1/webhooks/incoming").body(EVENT)).await;
    assert_eq!((seen.status, &seen.body["code"]), (401, &json!("INVALID_SIGNATURE")));
}
