//! `GuardLayer` answers exactly as the layers it folds together: the same requests, good and
//! bad, sent in the same order through a guarded router and through the nested layers
//! (`AuthLayer`, `RateLimitLayer`, `IdempotencyLayer`, inner `ProblemLayer`,
//! `RequireScopeLayer`), each over stores of its own, get the same status, headers and body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use rebuff::Catalog;
use rebuff_axum::auth::key;
use rebuff_axum::extract::Json;
use rebuff_axum::guard::GuardLayer;
use rebuff_axum::idempotency::IdempotencyLayer;
use rebuff_axum::ratelimit::RateLimitLayer;
use rebuff_axum::store::memory::MemoryStore;
use rebuff_axum::store::{
    BoxFuture, Decision, KeyRecord, KeyStore, MemoryAuthStore, Quota, RateLimitStore, SessionRecord,
    StoreError,
};
use rebuff_axum::{AuthLayer, Principal, ProblemLayer, RequestIdLayer, RequireScopeLayer};
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};

const ALLOWED: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)), 4000);
const ELSEWHERE: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9)), 4000);
const SESSION_TOKEN: &str = "session-token-1";
const CSRF_TOKEN: &str = "csrf-token-1";

/// The keys both stacks know, as their texts.
struct Keys {
    admin: String,
    reader: String,
    revoked: String,
    pinned: String,
    /// Of another organisation: limited apart.
    other: String,
}

/// One key record per key, the same for both stacks' stores.
fn records() -> (Keys, Vec<KeyRecord>) {
    let mut records = Vec::new();
    let mut make = |org: &str, scopes: &[&str], revoked: bool, pinned: bool| {
        let generated = key::generate(false);
        records.push(KeyRecord {
            id: generated.id.into(),
            org_id: org.into(),
            secret_hash: generated.secret_hash,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at: None,
            revoked_at: revoked.then_some(1),
            allowed_ips: if pinned { vec!["10.0.0.0/8".parse().expect("a network")] } else { Vec::new() },
            live: false,
        });
        generated.text
    };
    let keys = Keys {
        admin: make("org_a", &["admin"], false, false),
        reader: make("org_a", &["read"], false, false),
        revoked: make("org_a", &["admin"], true, false),
        pinned: make("org_a", &["read"], false, true),
        other: make("org_b", &["read", "write"], false, false),
    };
    (keys, records)
}

fn auth_store(records: &[KeyRecord]) -> Arc<MemoryAuthStore> {
    let store = Arc::new(MemoryAuthStore::new());
    for record in records {
        store.insert_key(record.clone());
    }
    store.insert_session(SessionRecord {
        token_hash: key::hash_secret(SESSION_TOKEN),
        user_id: "usr_1".into(),
        org_id: "org_a".into(),
        csrf_hash: key::hash_secret(CSRF_TOKEN),
        expires_at: i64::MAX,
        user_disabled: false,
    });
    store
}

/// How the step layers are configured, for both stacks alike.
#[derive(Clone, Copy)]
struct Setup {
    /// `RateLimitLayer::idempotency`: the limit and the key's lookup in one store operation.
    combined: bool,
    /// The limit's store is down.
    down: Option<bool>,
    /// Keyed with `per_organisation` rather than a `key_fn`.
    per_organisation: bool,
    /// `AuthLayer::throttle_failures`, 2 failures a minute per address.
    throttle: bool,
    /// The key store answers at once (`KeyStore::find_key_now`, as the memory store and the
    /// key cache do), or only through a future (as a database does).
    keys_at_hand: bool,
}

/// A key store that answers only through `find_key`: authentication waits for it.
struct WaitingKeys(Arc<MemoryAuthStore>);

impl KeyStore for WaitingKeys {
    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
        self.0.find_key(id)
    }
}

/// A rate-limit store that is down.
struct DownStore;

impl RateLimitStore for DownStore {
    fn check<'a>(&'a self, _: &'a str, _: Quota, _: u128) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(async { Err(StoreError::unavailable("injected: connection refused")) })
    }
}

async fn create(principal: Principal, Json(body): Json<Value>) -> impl IntoResponse {
    (StatusCode::CREATED, axum::Json(json!({ "org": principal.org_id, "name": body["name"] })))
}

async fn list(principal: Principal) -> axum::Json<Value> {
    axum::Json(json!({ "org": principal.org_id, "data": [] }))
}

async fn missing() -> Result<(), rebuff_axum::ApiError> {
    Err(rebuff_axum::ApiError::new(rebuff_axum::Code::ResourceNotFound).detail("No such thing."))
}

/// The router, guarded by one `GuardLayer` or by the nested layers.
fn app(guarded: bool, setup: Setup, records: &[KeyRecord]) -> Router {
    let catalog = Arc::new(Catalog::standard().clone());
    let auth = auth_store(records);
    let store = Arc::new(MemoryStore::new());
    let idempotency = IdempotencyLayer::new(store.clone()).scope_fn(|parts| {
        parts.extensions.get::<Principal>().map(|p| format!("{}:{:?}", p.org_id, p.subject))
    });
    let quota = Quota { limit: 15, period: Duration::from_secs(60) };
    let limits: Arc<dyn RateLimitStore> = match setup.down {
        Some(_) => Arc::new(DownStore),
        None => store,
    };
    let mut limit = RateLimitLayer::new(limits, quota).fail_open(setup.down == Some(true));
    limit = if setup.per_organisation {
        limit.per_organisation()
    } else {
        limit.key_fn(|parts| parts.extensions.get::<Principal>().map(|p| format!("org:{}", p.org_id)))
    };
    if setup.combined {
        limit = limit.idempotency(&idempotency);
    }
    let keys: Arc<dyn KeyStore> =
        if setup.keys_at_hand { auth.clone() } else { Arc::new(WaitingKeys(auth.clone())) };
    let mut authenticate = AuthLayer::new(keys).sessions(auth);
    if setup.throttle {
        let quota = Quota { limit: 2, period: Duration::from_secs(60) };
        authenticate = authenticate.throttle_failures(Arc::new(MemoryStore::new()), quota);
    }
    let inner = ProblemLayer::new(catalog.clone());
    let (read, write) = (RequireScopeLayer::new("read"), RequireScopeLayer::new("write"));
    let router = if guarded {
        let guard = GuardLayer::new(authenticate).rate_limit(limit).idempotency(idempotency).problems(inner);
        Router::new()
            .route(
                "/v1/things",
                get(list)
                    .route_layer(guard.scope(read.clone()))
                    .merge(post(create).route_layer(guard.scope(write))),
            )
            .route("/v1/things/{id}", get(missing).route_layer(guard.scope(read)))
    } else {
        let stack = ServiceBuilder::new().layer(authenticate).layer(limit).layer(idempotency).layer(inner);
        Router::new()
            .route(
                "/v1/things",
                get(list)
                    .route_layer(read.clone())
                    .route_layer(stack.clone())
                    .merge(post(create).route_layer(write).route_layer(stack.clone())),
            )
            .route("/v1/things/{id}", get(missing).route_layer(read).route_layer(stack))
    };
    router
        .fallback(rebuff_axum::extract::fallback)
        .layer(ServiceBuilder::new().layer(RequestIdLayer::new()).layer(ProblemLayer::new(catalog)))
}

/// What a response says, without what differs between any two exchanges (request ids, and
/// the second at which the limit is whole again, which depends on when the first request came).
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Value,
}

async fn send(app: &Router, req: Request<Body>) -> Seen {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let mut headers: Vec<(String, String)> = res
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "x-ratelimit-reset"))
        .map(|(name, value)| {
            let value = if name == "original-request" { "<id>" } else { value.to_str().expect("ASCII") };
            (name.as_str().to_owned(), value.to_owned())
        })
        .collect();
    headers.sort();
    let bytes = res.into_body().collect().await.expect("a body").to_bytes();
    let mut body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    if let Some(id) = body.get_mut("request_id") {
        *id = Value::String("<id>".into());
    }
    Seen { status, headers, body }
}

/// A request: method, path, headers, body, client address.
struct Call {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: &'static str,
    from: SocketAddr,
}

impl Call {
    fn new(method: &'static str, path: &'static str) -> Self {
        Call { method, path, headers: Vec::new(), body: "", from: ALLOWED }
    }

    fn key(self, key: &str) -> Self {
        self.header("authorization", format!("Bearer {key}"))
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn json(mut self, body: &'static str) -> Self {
        self.body = body;
        self.header("content-type", "application/json")
    }

    fn from(mut self, addr: SocketAddr) -> Self {
        self.from = addr;
        self
    }

    fn request(&self) -> Request<Body> {
        let mut req = Request::builder().method(self.method).uri(self.path);
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        let mut req = req.body(Body::from(self.body)).expect("a request");
        req.extensions_mut().insert(ConnectInfo(self.from));
        req
    }
}

/// Every kind of request the guard sees, good and bad, in an order that also runs into the
/// limit of `org_a` (15 a minute) at the end.
fn script(keys: &Keys) -> Vec<Call> {
    vec![
        // 405 before credentials.
        Call::new("DELETE", "/v1/things"),
        Call::new("GET", "/v1/nowhere"),
        // 401s, without a limit charged.
        Call::new("GET", "/v1/things"),
        Call::new("GET", "/v1/things").header("authorization", "Bearer nonsense"),
        Call::new("GET", "/v1/things").header("authorization", "Basic dXNlcjpwYXNz"),
        Call::new("GET", "/v1/things").key(&keys.admin).key(&keys.reader),
        Call::new("GET", "/v1/things").key(&format!("{}x", keys.admin)),
        Call::new("GET", "/v1/things").key(&keys.revoked),
        Call::new("GET", "/v1/things").header("cookie", "rebuff_session=unknown"),
        // 403 for the address, then for the scope (after the limit: charged).
        Call::new("GET", "/v1/things").key(&keys.pinned).from(ELSEWHERE),
        Call::new("GET", "/v1/things").key(&keys.pinned),
        Call::new("POST", "/v1/things").key(&keys.reader).json(r#"{"name": "a"}"#),
        // Successes, a session with and without its CSRF token.
        Call::new("GET", "/v1/things").key(&keys.admin),
        Call::new("GET", "/v1/things").header("cookie", format!("rebuff_session={SESSION_TOKEN}")),
        Call::new("POST", "/v1/things")
            .header("cookie", format!("rebuff_session={SESSION_TOKEN}"))
            .json("{}"),
        Call::new("POST", "/v1/things")
            .header("cookie", format!("rebuff_session={SESSION_TOKEN}"))
            .header("x-csrf-token", CSRF_TOKEN)
            .json(r#"{"name": "s"}"#),
        Call::new("GET", "/v1/things/thing_1").key(&keys.admin),
        // The handler's own refusals, rendered inside.
        Call::new("POST", "/v1/things").key(&keys.admin).json(r#"{"name": "#),
        Call::new("POST", "/v1/things").key(&keys.admin).header("content-type", "text/plain"),
        // Idempotency: run, replayed, reused with another payload, malformed keys.
        Call::new("POST", "/v1/things")
            .key(&keys.admin)
            .header("idempotency-key", "k-1")
            .json(r#"{"name": "x"}"#),
        Call::new("POST", "/v1/things")
            .key(&keys.admin)
            .header("idempotency-key", "k-1")
            .json(r#"{"name": "x"}"#),
        Call::new("POST", "/v1/things")
            .key(&keys.admin)
            .header("idempotency-key", "k-1")
            .json(r#"{"name": "y"}"#),
        Call::new("POST", "/v1/things").key(&keys.admin).header("idempotency-key", "has space").json("{}"),
        Call::new("POST", "/v1/things")
            .key(&keys.admin)
            .header("idempotency-key", "k-2")
            .header("idempotency-key", "k-3")
            .json("{}"),
        // A stored client error is replayed as it was rendered.
        Call::new("POST", "/v1/things").key(&keys.admin).header("idempotency-key", "k-4").json(r#"{"#),
        Call::new("POST", "/v1/things").key(&keys.admin).header("idempotency-key", "k-4").json(r#"{"#),
        // Another organisation has a limit of its own.
        Call::new("GET", "/v1/things").key(&keys.other),
        // Over the limit of org_a.
        Call::new("GET", "/v1/things").key(&keys.admin),
        Call::new("GET", "/v1/things").key(&keys.admin),
        Call::new("POST", "/v1/things").key(&keys.admin).header("idempotency-key", "k-5").json("{}"),
        Call::new("GET", "/v1/things").key(&keys.admin),
    ]
}

/// Sends the script through both stacks, request by request, and compares the answers.
async fn same_answers(setup: Setup) -> Vec<Seen> {
    let (keys, records) = records();
    let (nested, guarded) = (app(false, setup, &records), app(true, setup, &records));
    let mut seen = Vec::new();
    for (i, call) in script(&keys).iter().enumerate() {
        let expected = send(&nested, call.request()).await;
        let got = send(&guarded, call.request()).await;
        assert_eq!(got, expected, "request {i}: {} {}", call.method, call.path);
        seen.push(got);
    }
    seen
}

fn statuses(seen: &[Seen]) -> Vec<u16> {
    seen.iter().map(|s| s.status.as_u16()).collect()
}

#[tokio::test]
async fn the_guard_answers_as_the_nested_layers() {
    for (per_organisation, keys_at_hand) in [(false, true), (true, true), (true, false)] {
        let seen = same_answers(Setup {
            combined: false,
            down: None,
            per_organisation,
            throttle: false,
            keys_at_hand,
        })
        .await;
        // The script does go through every branch.
        assert_eq!(
            statuses(&seen),
            [
                405, 404, 401, 401, 401, 401, 401, 401, 401, 403, 200, 403, 200, 200, 403, 201, 404, 400,
                415, 201, 201, 422, 400, 400, 400, 400, 200, 429, 429, 429, 429
            ],
            "{seen:#?}"
        );
        assert!(seen[12].headers.iter().any(|(n, v)| n == "ratelimit" && v.starts_with("\"default\";r=")));
        assert!(seen[20].headers.iter().any(|(n, v)| n == "idempotent-replayed" && v == "true"));
        assert!(seen[27].headers.iter().any(|(n, _)| n == "retry-after"));
    }
}

#[tokio::test]
async fn the_guard_answers_as_the_nested_layers_with_one_store_operation() {
    let seen = same_answers(Setup {
        combined: true,
        down: None,
        per_organisation: true,
        throttle: false,
        keys_at_hand: true,
    })
    .await;
    assert_eq!(seen[20].status, 201);
    assert!(seen[20].headers.iter().any(|(n, v)| n == "idempotent-replayed" && v == "true"));
}

#[tokio::test]
async fn the_guard_fails_as_the_nested_layers_when_the_limits_are_down() {
    let closed = same_answers(Setup {
        combined: false,
        down: Some(false),
        per_organisation: true,
        throttle: false,
        keys_at_hand: true,
    })
    .await;
    assert_eq!(closed[12].status, 503);
    let open = same_answers(Setup {
        combined: false,
        down: Some(true),
        per_organisation: true,
        throttle: false,
        keys_at_hand: true,
    })
    .await;
    assert_eq!(open[12].status, 200);
    assert!(!open[12].headers.iter().any(|(n, _)| n.contains("ratelimit")));
}

#[tokio::test]
async fn the_guard_throttles_failed_credentials_as_the_nested_layers() {
    for keys_at_hand in [true, false] {
        let seen = same_answers(Setup {
            combined: false,
            down: None,
            per_organisation: true,
            throttle: true,
            keys_at_hand,
        })
        .await;
        // Missing credentials are no guess; past two wrong ones the address is refused.
        assert_eq!(statuses(&seen[2..7]), [401, 401, 401, 429, 429], "{seen:#?}");
        assert!(seen[5].headers.iter().any(|(n, _)| n == "retry-after"));
    }
}
