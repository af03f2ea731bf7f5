//! A widgets service whose errors come from its own catalog (`widgets.toml`: the standard
//! codes plus `widget_not_found`). `cargo run -p rebuff-axum --example quickstart -- 127.0.0.1:3000`
use std::sync::Arc;

use axum::{Router, routing::get};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, ProblemLayer, RequestIdLayer, extract::Json, extract::Path, extract::fallback};

rebuff::catalog!(Code = "examples/widgets.toml"); // a code that is not in the file does not compile

#[derive(serde::Deserialize, serde::Serialize)]
struct Widget {
    name: String,
}

impl Validate for Widget {
    fn validate(&self, v: &mut Violations) {
        v.ensure(!self.name.trim().is_empty(), "/name", "must not be blank");
    }
}

async fn get_widget(Path(id): Path<String>) -> Result<Json<Widget>, ApiError> {
    Err(ApiError::new(Code::WidgetNotFound).detail(format!("Widget '{id}' was not found.")))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalog = rebuff::Catalog::from_toml_str("widgets.toml", include_str!("widgets.toml"))?;
    let app = Router::new()
        .route("/widgets", axum::routing::post(|Valid(w): Valid<Widget>| async move { Json(w) }))
        .route("/widgets/{id}", get(get_widget))
        .fallback(fallback)
        .layer(ProblemLayer::try_new(Arc::new(catalog))?) // fails if the catalog lacks a layer's code
        .layer(RequestIdLayer::new());
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    Ok(axum::serve(listener, app).await?)
}
