//! Calls rebuff-axum's `guarded` example and acts on each error by its typed code.
//!
//! ```text
//! cargo run -p rebuff-axum --example guarded -- 127.0.0.1:3000 guarded.db   # prints a key
//! cargo run -p rebuff-client --example call_guarded -- http://127.0.0.1:3000 rb_test_...
//! ```

use rebuff::Catalog;
use rebuff_client::{ApiError, Client, Contract, RetryPolicy};
use serde_json::{Value, json};

// The service's codes, inherited standard ones included: matching on a code the service's
// catalog does not have does not compile.
rebuff::catalog!(Code = "examples/widgets.toml");

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "http://127.0.0.1:3000".to_owned());
    let key = args.next().ok_or("usage: call_guarded BASE_URL API_KEY")?;
    for line in call(&base, &key).await? {
        println!("{line}");
    }
    Ok(())
}

/// Creates a widget, reads a missing one, and tries without a key; one line per outcome.
///
/// # Errors
/// Anything this caller has no answer for: a transport failure, or an error it does not
/// expect.
pub(crate) async fn call(base: &str, key: &str) -> Result<Vec<String>, BoxError> {
    let catalog = Catalog::from_toml_str("widgets.toml", include_str!("widgets.toml"))?;
    let client = Client::builder()
        .contract(Contract::catalog(catalog))
        // Retries only what may be retried; a POST keeps one Idempotency-Key for all its
        // attempts, so a retry after a lost answer cannot create a second widget.
        .retry(RetryPolicy::builder().max_attempts(3).build())
        .build();
    let mut out = Vec::new();

    let create = client.post(format!("{base}/widgets")).bearer_auth(key).json(&json!({"name": "sprocket"}));
    let created: Value = client.send(create).await?.json().await?;
    out.push(format!("created {}", created["id"].as_str().unwrap_or("?")));

    for (what, request) in [
        ("a missing widget", client.get(format!("{base}/widgets/w_missing")).bearer_auth(key)),
        ("no key", client.get(format!("{base}/widgets/w_1"))),
        ("a blank name", client.post(format!("{base}/widgets")).bearer_auth(key).json(&json!({"name": ""}))),
    ] {
        match client.send(request).await {
            Ok(res) => out.push(format!("{what}: {}", res.status())),
            Err(e) => out.push(format!("{what}: {}", advice(&e)?)),
        }
    }
    Ok(out)
}

/// What to do about an error, decided by its stable code.
fn advice(e: &ApiError) -> Result<String, BoxError> {
    let request_id = e.request_id().unwrap_or("-");
    Ok(match e.code_as::<Code>() {
        Some(Code::WidgetNotFound) => format!("widget_not_found, list the widgets ({request_id})"),
        Some(Code::ApiKeyMissing | Code::ApiKeyInvalid | Code::ApiKeyRevoked | Code::ApiKeyExpired) => {
            "api key rejected, check the key".to_owned()
        }
        Some(Code::RateLimitExceeded) => format!("rate limited, retry in {:?}", e.retry_after()),
        Some(code @ (Code::InvalidFieldValue | Code::ValidationFailed)) => {
            let fields: Vec<String> =
                e.fields().iter().map(|f| format!("{} {}", f.pointer, f.message)).collect();
            format!("{code}: {}", fields.join("; "))
        }
        _ => return Err(e.clone().into()),
    })
}
