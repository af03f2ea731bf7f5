//! Targets for the loopback load benchmark (`scripts/bench-server.sh`, see `BENCHMARKS.md`).
//!
//! Starts, each on its own ephemeral port of 127.0.0.1, in one process and one tokio runtime
//! (the default multi-threaded one, as `rebuff serve` uses):
//!
//! 1. `hello`: a bare axum `Router` with `GET /hello`, no layers: the baseline.
//! 2. `api`: the real reference API ([`rebuff_server::app`]) over a fresh SQLite file, with a
//!    rate limit so high it never triggers, and an admin key.
//! 3. `limited`: a second reference API whose rate limit is 1 request an hour, already
//!    exhausted before the URLs are printed, for the 429 route.
//! 4. `layers`: the same rebuff-axum layer stack as the reference API (request id, tracing
//!    span, ProblemLayer, catch-panic, timeouts, body limit; then a GuardLayer per route
//!    method: AuthLayer over a `MemoryAuthStore`, RateLimitLayer over a `MemoryStore` keyed by
//!    organisation, IdempotencyLayer, an inner ProblemLayer and the scope) around trivial
//!    handlers and no database, to separate the layers' cost from SQLite's.
//! 5. `layers_limited`: the stack of 4 with a 1-an-hour limit, already exhausted.
//! 6. `floor`: a bare axum router whose `GET /v1/projects` does the reference API's one
//!    SQLite read on that route (the page of projects; keys are cached) on the `api` store,
//!    and nothing else: what any axum server reading its database per request can reach here.
//!    `floor_headers`: the same, and on its answer the headers the contract puts on every
//!    response (`X-Request-Id`, the five rate-limit fields, `X-Content-Type-Options`), written
//!    as a careful axum handler would: what the api's headers cost, shown beside it.
//! 7. `handmade`: what an axum user assembles by hand instead of rebuff (tower-http request
//!    id, trace, catch-panic and timeout, `tower_governor` per bearer token with headers, a
//!    `from_fn` key lookup in a `HashMap`, `serde_json::json!` problem bodies), same routes and
//!    trivial handlers as `layers`: the baseline the layers must beat (see `support/handmade.rs`).
//! 8. `handmade_limited`: the stack of 7 with a 1-an-hour limit, already exhausted.
//!
//! Before printing anything it sends every benchmarked request once and checks the status
//! (200, 401, 404, 422, 429), so a benchmark never measures the wrong answer. Then it prints
//! the URLs and keys as shell `export` lines on standard output, ending with
//! `export BENCH_READY=1`, and serves until SIGINT or SIGTERM, after which it removes its
//! SQLite files.
//!
//! `BENCH_IN_PROCESS=STACK[:ROUTE]` instead calls one route of one router in-process, without a socket,
//! and prints the time per request (see [`in_process`]).
//!
//! Like `rebuff serve`, it logs through a `tracing-subscriber` with the filter
//! `info,tower_http=warn` (or `RUST_LOG`), so the per-request span is really recorded;
//! `REBUFF_BENCH_TRACING=off` runs without a subscriber.
//!
//! ```sh
//! CARGO_TARGET_DIR=/root/.cache/rebuff-target cargo build --release -p rebuff-server --example bench_target
//! ```

#![allow(missing_docs)]

#[path = "support/handmade.rs"]
mod handmade;

use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use rebuff::{Catalog, FieldError};
use rebuff_axum::auth::{AuthLayer, MemoryAuthStore, Principal, RequireScopeLayer, Subject, key};
use rebuff_axum::extract::{Json, Path};
use rebuff_axum::idempotency::IdempotencyLayer;
use rebuff_axum::ratelimit::RateLimitLayer;
use rebuff_axum::store::KeyRecord;
use rebuff_axum::store::memory::MemoryStore;
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code, GuardLayer, ProblemLayer, RequestIdLayer};
use rebuff_server::config::Quota;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
use serde::Deserialize;
use tower::ServiceBuilder;

type BoxError = Box<dyn Error + Send + Sync>;

/// A limit that never triggers during a benchmark.
const UNLIMITED: Quota = Quota { limit: 1_000_000_000, period: Duration::from_secs(1) };
/// A limit exhausted by the first request.
const ONE_AN_HOUR: Quota = Quota { limit: 1, period: Duration::from_secs(3600) };
/// Projects the success route lists.
const PROJECTS: usize = 3;
/// The id of a project that does not exist.
const MISSING: &str = "prj_000000000000";

/// The allocator `rebuff serve` uses, so the benchmark measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    if std::env::var("REBUFF_BENCH_TRACING").as_deref() != Ok("off") {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn")),
            )
            .init();
    }
    let catalog = Arc::new(Catalog::builtin("rebuff").ok_or("no built-in rebuff profile")?.clone());

    let hello = listen(Router::new().route("/hello", get(|| async { "Hello, World!" })), false).await?;
    let (api, api_key, api_db, api_store) = reference_api(&catalog, UNLIMITED, "api").await?;
    let floor = listen(floor_app(api_store.clone(), &api_key, false)?, false).await?;
    let floor_headers = listen(floor_app(api_store, &api_key, true)?, false).await?;
    let (limited, limited_key, limited_db, _) = reference_api(&catalog, ONE_AN_HOUR, "limited").await?;
    let (layers_app, layers_key) = layer_stack(&catalog, UNLIMITED);
    let layers = listen(layers_app, true).await?;
    let (layers_limited_app, layers_limited_key) = layer_stack(&catalog, ONE_AN_HOUR);
    let layers_limited = listen(layers_limited_app, true).await?;
    let (handmade_app, handmade_key) = handmade::stack(UNLIMITED.limit, UNLIMITED.period);
    let handmade = listen(handmade_app, false).await?;
    let (handmade_limited_app, handmade_limited_key) = handmade::stack(ONE_AN_HOUR.limit, ONE_AN_HOUR.period);
    let handmade_limited = listen(handmade_limited_app, false).await?;

    if let Ok(which) = std::env::var("BENCH_IN_PROCESS") {
        return in_process(&catalog, &which).await;
    }
    let http = reqwest::Client::new();
    for i in 0..PROJECTS {
        let res = http
            .post(format!("{api}/v1/projects"))
            .bearer_auth(&api_key)
            .json(&serde_json::json!({ "name": format!("bench-{i}") }))
            .send()
            .await?;
        expect(res, 201, "seeding a project").await?;
    }
    for (base, key) in [(&api, &api_key), (&layers, &layers_key), (&handmade, &handmade_key)] {
        check(&http, base, key).await?;
    }
    for base in [&floor, &floor_headers] {
        let projects = format!("{base}/v1/projects");
        expect(http.get(&projects).bearer_auth(&api_key).send().await?, 200, "floor GET /v1/projects")
            .await?;
        expect(http.get(&projects).send().await?, 401, "floor GET /v1/projects without a key").await?;
    }
    for (base, key) in [
        (&limited, &limited_key),
        (&layers_limited, &layers_limited_key),
        (&handmade_limited, &handmade_limited_key),
    ] {
        // The first request takes the hour's only slot; every later one is refused.
        let projects = format!("{base}/v1/projects");
        expect(http.get(&projects).bearer_auth(key).send().await?, 200, "first limited request").await?;
        expect(http.get(&projects).bearer_auth(key).send().await?, 429, "over the limit").await?;
    }

    let mut out = std::io::stdout().lock();
    for (name, value) in [
        ("BENCH_HELLO_URL", &hello),
        ("BENCH_API_URL", &api),
        ("BENCH_FLOOR_URL", &floor),
        ("BENCH_FLOOR_HEADERS_URL", &floor_headers),
        ("BENCH_API_KEY", &api_key),
        ("BENCH_LIMITED_URL", &limited),
        ("BENCH_LIMITED_KEY", &limited_key),
        ("BENCH_LAYERS_URL", &layers),
        ("BENCH_LAYERS_KEY", &layers_key),
        ("BENCH_LAYERS_LIMITED_URL", &layers_limited),
        ("BENCH_LAYERS_LIMITED_KEY", &layers_limited_key),
        ("BENCH_HANDMADE_URL", &handmade),
        ("BENCH_HANDMADE_KEY", &handmade_key),
        ("BENCH_HANDMADE_LIMITED_URL", &handmade_limited),
        ("BENCH_HANDMADE_LIMITED_KEY", &handmade_limited_key),
        ("BENCH_MISSING_ID", &MISSING.to_owned()),
    ] {
        writeln!(out, "export {name}='{value}'")?;
    }
    writeln!(out, "export BENCH_READY=1")?;
    out.flush()?;
    drop(out);

    rebuff_server::shutdown_signal().await;
    for db in [api_db, limited_db] {
        for ext in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(db.with_extension(ext));
        }
    }
    Ok(())
}

/// `BENCH_IN_PROCESS=STACK[:ROUTE]` (stack `hello`, `layers`, `handmade`, `api`, `floor` or
/// `floor_headers`; route `200` (the default), `404` or `422`; `hello` and the floors have only
/// `200`): calls that route of that stack in this task, without a socket, `BENCH_REQUESTS`
/// times (200,000), and prints the time per request. With no network, kernel or second thread
/// in the way, it shows the stack's own cost more steadily than the loopback runs.
async fn in_process(catalog: &Arc<Catalog>, which: &str) -> Result<(), BoxError> {
    use tower::ServiceExt;

    let (stack, route) = which.split_once(':').unwrap_or((which, "200"));
    let request = match (stack, route) {
        ("hello", "200") => ("GET", "/hello".to_owned(), "", StatusCode::OK),
        ("floor" | "floor_headers" | "hello", other) if other != "200" => {
            return Err(format!("BENCH_IN_PROCESS: {stack} has only the route 200").into());
        }
        (_, "200") => ("GET", "/v1/projects".to_owned(), "", StatusCode::OK),
        (_, "404") => ("GET", format!("/v1/projects/{MISSING}"), "", StatusCode::NOT_FOUND),
        (_, "422") => {
            ("POST", "/v1/projects".to_owned(), r#"{"name": ""}"#, StatusCode::UNPROCESSABLE_ENTITY)
        }
        _ => return Err(format!("BENCH_IN_PROCESS: no route {route:?} for {stack} (200, 404, 422)").into()),
    };
    match stack {
        "hello" => {
            drive(which, Router::new().route("/hello", get(|| async { "Hello, World!" })), "", request).await
        }
        "layers" => {
            let (app, key) = layer_stack(catalog, UNLIMITED);
            drive(which, app, &key, request).await
        }
        "handmade" => {
            let (app, key) = handmade::stack(UNLIMITED.limit, UNLIMITED.period);
            drive(which, app, &key, request).await
        }
        "api" | "floor" | "floor_headers" => {
            let path = std::env::temp_dir().join(format!("rebuff-bench-inproc-{}.db", std::process::id()));
            let store = SqliteStore::open(&path)?;
            let key = seeded_admin_key(&store).await?;
            let mut config = Config::new(catalog.clone());
            config.rate_limit = UNLIMITED;
            let app = rebuff_server::app(AppState::new(config, store.clone()).await?);
            for i in 0..PROJECTS {
                let req = http::Request::post("/v1/projects")
                    .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from(format!("{{\"name\": \"bench-{i}\"}}")))?;
                app.clone().oneshot(req).await?;
            }
            // The floor reads the projects the reference API made.
            let driven = if stack != "api" {
                drive(which, floor_app(store, &key, stack == "floor_headers")?, &key, request).await
            } else {
                drive(which, app, &key, request).await
            };
            for ext in ["db", "db-wal", "db-shm"] {
                let _ = std::fs::remove_file(path.with_extension(ext));
            }
            driven
        }
        other => Err(format!(
            "BENCH_IN_PROCESS: no stack {other:?} (hello, layers, handmade, api, floor, floor_headers)"
        )
        .into()),
    }
}

/// Sends `request` (method, path, body, expected status) through `app` `BENCH_REQUESTS` times
/// with `key`, as a connection would (the service cloned per request, the peer's address in
/// the extensions), and prints the time per request.
async fn drive<S>(
    which: &str,
    app: S,
    key: &str,
    (method, uri, body, status): (&str, String, &'static str, StatusCode),
) -> Result<(), BoxError>
where
    S: tower::Service<http::Request<axum::body::Body>, Response = axum::response::Response> + Clone,
    S::Error: Into<BoxError>,
{
    use tower::ServiceExt;

    let n: u32 = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let peer: SocketAddr = "127.0.0.1:40000".parse()?;
    let bearer = format!("Bearer {key}");
    let start = std::time::Instant::now();
    for _ in 0..n {
        let mut req = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::AUTHORIZATION, &bearer)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))?;
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let res = app.clone().oneshot(req).await.map_err(Into::into)?;
        if res.status() != status {
            return Err(format!("{which}: expected {status}, got {}", res.status()).into());
        }
        axum::body::to_bytes(res.into_body(), usize::MAX).await?;
    }
    println!(
        "{which}: {:.2} us per request ({n} requests)",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
    Ok(())
}

/// Serves `app` on 127.0.0.1:0 in the background; returns its base URL.
async fn listen<S>(app: S, connect_info: bool) -> Result<String, BoxError>
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    use axum::ServiceExt as _;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    if connect_info {
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
        });
    } else {
        tokio::spawn(async move { axum::serve(listener, app.into_make_service()).await });
    }
    Ok(format!("http://{addr}"))
}

/// The reference API over a fresh SQLite file, as `tests/support` starts it; returns its base
/// URL, an admin key, the database path and the store.
async fn reference_api(
    catalog: &Arc<Catalog>,
    rate: Quota,
    tag: &str,
) -> Result<(String, String, PathBuf, SqliteStore), BoxError> {
    let db = std::env::temp_dir().join(format!("rebuff-bench-{tag}-{}.db", std::process::id()));
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
    let store = SqliteStore::open(&db)?;
    let admin = seeded_admin_key(&store).await?;
    let mut config = Config::new(catalog.clone());
    config.rate_limit = rate;
    let state = AppState::new(config, store.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(rebuff_server::serve(listener, state, std::future::pending()));
    Ok((format!("http://{addr}"), admin, db, store))
}

/// Creates the organisation `acme` and an admin key for it; returns the key.
async fn seeded_admin_key(store: &SqliteStore) -> Result<String, BoxError> {
    let org = store.get_or_create_org("acme").await?.id;
    let (_, admin) = store
        .create_key(NewKey {
            org_id: org,
            name: "bench admin".into(),
            scopes: vec!["read".into(), "write".into(), "admin".into()],
            expires_at: None,
            allowed_ips: Vec::new(),
            live: false,
        })
        .await?;
    Ok(admin)
}

// ---- the floor: bare axum and the page's SQLite read, no rebuff layer -------------------

/// A bare axum router whose `GET /v1/projects` does what the reference API's database work
/// is on that route now that verified keys are cached, and nothing else: it checks the bearer
/// key against a `HashMap` of keys read once at start (hash compared in constant time), and
/// lists the organisation's projects with the same statement, on the same read connections.
/// No request id, span, rate limit, timeouts or catalog errors (a bad key is a bare 401).
/// What the full stack reaches relative to this is the cost of rebuff's layers; what this
/// reaches relative to hello is the cost of the read.
///
/// With `headers`, the page's answer also carries the fields the contract puts on every
/// response, with the api's values: a fresh `X-Request-Id`, `X-RateLimit-Limit/Remaining/Reset`,
/// `RateLimit`, `RateLimit-Policy` and `X-Content-Type-Options`. They are written as a careful
/// axum handler would (names made once, integers through `HeaderValue::from`, the structured
/// field through `format!`, the policy made once), and no limit is decided: the remaining
/// count only goes down. It prices the headers, not the work behind them.
fn floor_app(store: SqliteStore, admin: &str, headers: bool) -> Result<Router, BoxError> {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use http::HeaderValue;
    use rebuff_axum::store::KeyStore;

    type Keys = Arc<HashMap<String, KeyRecord>>;
    #[derive(Clone)]
    struct Floor {
        store: SqliteStore,
        keys: Keys,
        /// With `headers`: what the contract's headers need.
        contract: Option<Arc<Contract>>,
    }
    struct Contract {
        /// Requests answered, for `X-RateLimit-Remaining`.
        used: AtomicU64,
        /// `RateLimit-Policy`, the same on every answer: made once.
        policy: HeaderValue,
    }

    fn contract_headers(res: &mut axum::response::Response, contract: &Contract) {
        // The names as constants (`h.insert("x-ratelimit-limit", ..)` would parse the text
        // on every call): the ones rebuff exports.
        use rebuff::dialect::X_REQUEST_ID;
        use rebuff_axum::ratelimit::{
            RATELIMIT, RATELIMIT_POLICY, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET,
        };
        let (limit, window) = (u64::from(UNLIMITED.limit), UNLIMITED.period.as_secs());
        let remaining = limit.saturating_sub(contract.used.fetch_add(1, Ordering::Relaxed) + 1);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let h = res.headers_mut();
        h.insert(X_RATELIMIT_LIMIT, HeaderValue::from(limit));
        h.insert(X_RATELIMIT_REMAINING, HeaderValue::from(remaining));
        h.insert(X_RATELIMIT_RESET, HeaderValue::from(now.as_secs() + window));
        if let Ok(v) = HeaderValue::try_from(format!("\"default\";r={remaining};t={window}")) {
            h.insert(RATELIMIT, v);
        }
        h.insert(RATELIMIT_POLICY, contract.policy.clone());
        h.insert(X_REQUEST_ID, rebuff_axum::request_id::generate());
        h.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }

    async fn list(
        axum::extract::State(floor): axum::extract::State<Floor>,
        headers: http::HeaderMap,
    ) -> axum::response::Response {
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(key::parse);
        let Some(parsed) = bearer else { return StatusCode::UNAUTHORIZED.into_response() };
        let record = match floor.keys.get(&parsed.id) {
            Some(r) if key::hashes_match(&parsed.secret_hash, &r.secret_hash) && r.revoked_at.is_none() => r,
            _ => return StatusCode::UNAUTHORIZED.into_response(),
        };
        let items = floor.store.read_conn(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, name, created_at FROM projects WHERE org_id = ?1 ORDER BY created_at, id",
            )?;
            st.query_map([&record.org_id], |r| {
                Ok(Project { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? })
            })?
            .take(20)
            .collect::<Result<Vec<_>, _>>()
        });
        let mut res = match items {
            Ok(data) => axum::Json(Page { data }).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        if let Some(contract) = &floor.contract {
            contract_headers(&mut res, contract);
        }
        res
    }
    let id = key::parse(admin).ok_or("the admin key does not parse")?.id;
    let record = now_or_never(store.find_key(&id))?.ok_or("the admin key is not stored")?;
    let keys: Keys = Arc::new(HashMap::from([(id, record)]));
    let contract = if headers {
        let policy = format!("\"default\";q={};w={}", UNLIMITED.limit, UNLIMITED.period.as_secs());
        Some(Arc::new(Contract { used: AtomicU64::new(0), policy: HeaderValue::try_from(policy)? }))
    } else {
        None
    };
    let floor = Floor { store, keys, contract };
    Ok(Router::new().route("/v1/projects", get(list)).with_state(floor))
}

/// `SqliteStore::find_key` answers on the calling thread: its future is ready at once.
fn now_or_never<T>(future: rebuff_axum::store::BoxFuture<'_, T>) -> T {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = future;
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Sends each benchmarked request once and checks its status.
async fn check(http: &reqwest::Client, base: &str, key: &str) -> Result<(), BoxError> {
    let projects = format!("{base}/v1/projects");
    expect(http.get(&projects).bearer_auth(key).send().await?, 200, "GET /v1/projects").await?;
    expect(http.get(&projects).send().await?, 401, "GET /v1/projects without a key").await?;
    let missing = format!("{base}/v1/projects/{MISSING}");
    expect(http.get(&missing).bearer_auth(key).send().await?, 404, "GET a missing project").await?;
    let empty = http.post(&projects).bearer_auth(key).json(&serde_json::json!({ "name": "" }));
    expect(empty.send().await?, 422, "POST an empty name").await
}

async fn expect(res: reqwest::Response, status: u16, what: &str) -> Result<(), BoxError> {
    let got = res.status().as_u16();
    if got != status {
        let body = res.text().await.unwrap_or_default();
        return Err(format!("{what}: expected {status}, got {got}: {body}").into());
    }
    Ok(())
}

// ---- the layer stack of the reference API, without SQLite ---------------------------------

#[derive(Debug, Deserialize)]
struct NewProject {
    name: String,
}

impl Validate for NewProject {
    fn validate(&self, v: &mut Violations) {
        v.ensure(!self.name.trim().is_empty(), "/name", "Project name must not be empty");
        v.ensure(self.name.chars().count() <= 100, "/name", "Project name must be at most 100 characters");
    }
}

#[derive(serde::Serialize)]
struct Project {
    id: String,
    name: String,
    created_at: i64,
}

#[derive(serde::Serialize)]
struct Page {
    data: Vec<Project>,
}

/// What `GET /v1/projects` answers on the seeded reference API, from memory.
async fn list(_: Principal) -> impl IntoResponse {
    let data = (0..PROJECTS)
        .map(|i| Project {
            id: format!("prj_{i:012x}"),
            name: format!("bench-{i}"),
            created_at: 1_735_689_600,
        })
        .collect();
    Json(Page { data })
}

async fn create(_: Principal, Valid(body): Valid<NewProject>) -> impl IntoResponse {
    (StatusCode::CREATED, Json(serde_json::json!({ "id": "prj_000000000001", "name": body.name })))
}

/// The reference API's id check and not-found answer, without the query.
async fn get_one(_: Principal, Path(raw): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let hex = raw
        .strip_prefix("prj_")
        .filter(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if hex.is_none() {
        let mut err = ApiError::new(Code::InvalidId)
            .detail("Not a valid project ID: expected `prj_` followed by 12 lowercase hex digits.");
        let p = err.problem_mut();
        p.param = Some("id".to_owned());
        p.fields.push(FieldError::new(rebuff::Location::Path, "/id", "format", "not a project ID"));
        return Err(err);
    }
    Err(ApiError::new(Code::ResourceNotFound).detail(format!("Project with ID '{raw}' was not found.")))
}

/// The layers of [`rebuff_server::app`], in the same order, over in-memory stores and the
/// handlers above; returns the service and an admin key.
fn layer_stack(
    catalog: &Arc<Catalog>,
    rate: Quota,
) -> (
    impl tower::Service<
        http::Request<axum::body::Body>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static,
    String,
) {
    let cfg = Config::new(catalog.clone());
    let auth = Arc::new(MemoryAuthStore::new());
    let generated = key::generate(false);
    auth.insert_key(KeyRecord {
        id: generated.id.as_str().into(),
        org_id: "org_bench".into(),
        secret_hash: generated.secret_hash,
        scopes: vec!["read".into(), "write".into(), "admin".into()].into(),
        expires_at: None,
        revoked_at: None,
        allowed_ips: Vec::new(),
        live: false,
    });
    let store = Arc::new(MemoryStore::new());
    let guard = GuardLayer::new(AuthLayer::new(auth.clone()).sessions(auth))
        .rate_limit(RateLimitLayer::new(store.clone(), rate).per_organisation())
        .idempotency(
            IdempotencyLayer::new(store)
                .max_body(cfg.body_limit)
                .scope_fn(|parts| parts.extensions.get::<Principal>().map(caller_scope)),
        )
        .problems(ProblemLayer::new(catalog.clone()).debug(cfg.debug));
    let (read, write) =
        (guard.scope(RequireScopeLayer::new("read")), guard.scope(RequireScopeLayer::new("write")));
    let authed = Router::new()
        .route("/v1/projects", get(list.layer(read.clone())).merge(axum::routing::post(create.layer(write))))
        .route("/v1/projects/{id}", get(get_one.layer(read)));
    // Around the router, as `rebuff_server::app` puts them.
    let router = Router::new().merge(authed).fallback(rebuff_axum::extract::fallback);
    let app = ServiceBuilder::new()
        .layer(RequestIdLayer::new())
        .layer(rebuff_axum::trace::RequestSpanLayer::new())
        .layer(ProblemLayer::new(catalog.clone()).debug(cfg.debug))
        .layer(rebuff_axum::panic::catch_panic())
        .layer(rebuff_axum::panic::body_timeout(cfg.body_timeout))
        .layer(rebuff_axum::panic::timeout(cfg.request_timeout))
        .layer(DefaultBodyLimit::max(cfg.body_limit))
        .service(router);
    (app, generated.text)
}

fn caller_scope(p: &Principal) -> String {
    match &p.subject {
        Subject::Key { id, .. } => format!("{}:key:{id}", p.org_id),
        Subject::Session { user_id } => format!("{}:user:{user_id}", p.org_id),
        #[allow(unreachable_patterns)]
        _ => format!("{}:other", p.org_id),
    }
}
