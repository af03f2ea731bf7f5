//! Tracing: each attempt is a span with its number, the status and the request id the
//! server returned, inside one span for the request.
//!
//! Alone in its test binary: a subscriber set with `set_default` on one test thread races with
//! other threads for tracing's per-callsite interest cache, so spans could go unseen.

mod script;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebuff_client::{Client, Jitter, RetryBudget, RetryPolicy};
use script::{Act, Server};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// Each span's name and fields, in creation order.
type Recorded = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

#[derive(Default, Clone)]
struct Spans(Recorded, Arc<Mutex<HashMap<u64, usize>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().expect("lock");
        self.1.lock().expect("lock").insert(id.into_u64(), spans.len());
        spans.push((attrs.metadata().name().to_owned(), fields));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let Some(&i) = self.1.lock().expect("lock").get(&id.into_u64()) else { return };
        values.record(&mut Fields(&mut self.0.lock().expect("lock")[i].1));
    }
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_a_span_with_the_request_id_the_server_returned() {
    let spans = Spans::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let server = Server::start([
        Act::status(503).header("x-request-id", "req_first"),
        Act::Reset,
        Act::ok().header("x-request-id", "req_third"),
    ])
    .await;
    let policy = RetryPolicy::builder()
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::None)
        .budget(RetryBudget::unlimited())
        .build();
    let client = Client::builder().retry(policy).build();
    client.send(client.get(server.url("/v1/things"))).await.expect("third attempt succeeds");
    let spans = spans.0.lock().expect("lock").clone();
    let attempts: Vec<_> =
        spans.iter().filter(|(n, _)| n == "rebuff_client.attempt").map(|(_, f)| f).collect();
    assert_eq!(attempts.len(), 3);
    let field = |i: usize, name: &str| attempts[i].get(name).cloned();
    assert_eq!(
        (0..3).map(|i| field(i, "attempt")).collect::<Vec<_>>(),
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );
    assert_eq!(field(0, "request_id").as_deref(), Some("req_first"));
    assert_eq!(field(0, "http.response.status_code").as_deref(), Some("503"));
    assert_eq!(field(1, "request_id"), None);
    assert_eq!(field(1, "error.kind").as_deref(), Some("reset"));
    assert_eq!(field(2, "request_id").as_deref(), Some("req_third"));
    let request = spans.iter().find(|(n, _)| n == "rebuff_client.request").expect("request span");
    assert_eq!(request.1.get("attempts").map(String::as_str), Some("3"));
    assert_eq!(request.1.get("url.path").map(String::as_str), Some("/v1/things"));
}
