//! A service's own catalog: it extends the standard one with its codes, serves them and the
//! layers' codes over real HTTP; a catalog without the layers' codes is refused when the
//! rendering layer is built, naming every missing code.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use rebuff::Catalog;
use rebuff_axum::auth::MemoryAuthStore;
use rebuff_axum::{ApiError, AuthLayer, ProblemLayer, RequestIdLayer};
use serde_json::Value;
use tokio::net::TcpListener;

mod widgets {
    rebuff::catalog!(pub Code = "tests/widgets.toml");
}

use widgets::Code;

const WIDGETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/widgets.toml");

async fn get_widget(Path(id): Path<String>) -> Result<&'static str, ApiError> {
    Err(ApiError::new(Code::WidgetNotFound).detail(format!("Widget '{id}' was not found.")))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn get_json(url: String) -> (u16, Value) {
    let res = reqwest::get(url).await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn a_service_catalog_renders_its_own_and_the_inherited_codes() {
    let catalog = Arc::new(Catalog::from_path(WIDGETS).expect("the widgets catalog loads"));
    let problems = ProblemLayer::builder(catalog)
        .raises(AuthLayer::CODES)
        .raises(rebuff_axum::extract::CODES)
        .raises(Code::ALL)
        .build()
        .expect("a catalog that extends standard has every layer code");
    let app = Router::new()
        .route("/widgets/{id}", get(get_widget))
        .route(
            "/private",
            get(|| async { "secret" }).route_layer(AuthLayer::new(Arc::new(MemoryAuthStore::new()))),
        )
        .fallback(rebuff_axum::extract::fallback)
        .layer(problems)
        .layer(RequestIdLayer::new());
    let addr = serve(app).await;

    let (status, body) = get_json(format!("http://{addr}/widgets/w_42")).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "widget_not_found");
    assert_eq!(body["title"], "Widget not found");
    assert_eq!(body["detail"], "Widget 'w_42' was not found.");
    assert_eq!(body["type"], "https://widgets.example/errors#widget_not_found");
    assert!(body["request_id"].as_str().is_some_and(|id| id.starts_with("req_")), "{body}");

    let (status, body) = get_json(format!("http://{addr}/private")).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "api_key_missing");
    assert_eq!(body["type"], "https://widgets.example/errors#api_key_missing");

    let (status, body) = get_json(format!("http://{addr}/nowhere")).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "resource_not_found");
}

/// The catalog a user writes first: only the service's own code, no `extends`.
fn alone() -> Arc<Catalog> {
    let text = std::fs::read_to_string(WIDGETS).expect("read").replace("extends = \"standard\"\n", "");
    Arc::new(Catalog::from_toml_str("widgets.toml", &text).expect("a valid base catalog"))
}

#[test]
fn a_catalog_without_the_layer_codes_is_refused_naming_them() {
    let err = ProblemLayer::builder(alone()).raises(AuthLayer::CODES).build().expect_err("lacks codes");
    // The rendering layer's own codes first, then the authentication layer's, each once.
    let expected = [
        "bad_request",
        "resource_not_found",
        "method_not_allowed",
        "payload_too_large",
        "internal_error",
        "authentication_required",
        "api_key_missing",
        "api_key_malformed",
        "api_key_invalid",
        "api_key_revoked",
        "api_key_expired",
        "session_expired",
        "csrf_failed",
        "ip_not_allowed",
        "account_disabled",
        "rate_limit_exceeded",
        "service_unavailable",
        "database_error",
    ];
    assert_eq!(err.codes(), expected);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "catalog `widgets` lacks 18 codes that the layers in use can raise: {}; extend `standard`",
            expected.join(", ")
        )),
        "{message}"
    );

    // Without a builder, every code of this crate's layers is required.
    let err = ProblemLayer::try_new(alone()).expect_err("lacks codes");
    assert_eq!(err.codes().len(), rebuff_axum::codes().len());
    assert!(err.codes().iter().any(|c| c == "rate_limit_exceeded"), "{err}");

    // `new` panics with the same message.
    let panic = std::panic::catch_unwind(|| ProblemLayer::new(alone())).expect_err("panics");
    let shown = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(shown, err.to_string());
}

#[test]
fn the_standard_catalog_and_its_profiles_have_every_layer_code() {
    for name in Catalog::PROFILES {
        let catalog = Catalog::builtin(name).expect("built in");
        assert!(ProblemLayer::try_new(Arc::new(catalog.clone())).is_ok(), "{name}");
    }
}
