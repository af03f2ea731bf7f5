//! The `reqwest-middleware` adapter: the same retries, and the middleware convention for what
//! it returns.

mod script;

use std::time::Duration;

use rebuff_client::{ApiError, Contract, Jitter, Kind, RetryBudget, RetryMiddleware, RetryPolicy};
use reqwest_middleware::ClientWithMiddleware;
use script::{Act, Server};
use tokio::time::Instant;

fn client() -> ClientWithMiddleware {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::None)
        .budget(RetryBudget::unlimited())
        .build();
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy).contract(Contract::builtin("rebuff").expect("built in")))
        .build()
}

#[tokio::test(start_paused = true)]
async fn retries_then_returns_the_success() {
    let server = Server::start([
        Act::status(503),
        Act::problem(429, "rate_limit_exceeded").header("retry-after", "2"),
    ])
    .await;
    let started = Instant::now();
    let res = client().get(server.url("/v1/things")).send().await.expect("third attempt");
    assert_eq!(res.status(), 200);
    assert_eq!(server.gaps_ms(), [100, 2_000]);
    assert_eq!(started.elapsed(), Duration::from_millis(2_100));
    assert!(res.extensions().get::<ApiError>().is_none());
}

#[tokio::test(start_paused = true)]
async fn the_last_error_answer_is_a_response_with_its_decoded_error() {
    let server =
        Server::start([Act::problem(404, "resource_not_found").header("x-request-id", "req_404")]).await;
    let res = client().get(server.url("/v1/things/1")).send().await.expect("a response");
    assert_eq!(res.status(), 404);
    assert_eq!(res.url().as_str(), server.url("/v1/things/1"));
    assert_eq!(res.headers()["x-request-id"], "req_404");
    let e = res.extensions().get::<ApiError>().cloned().expect("decoded");
    assert_eq!((e.stable_code(), e.attempts()), (Some("resource_not_found"), 1));
    let body = res.text().await.expect("body intact");
    assert!(body.contains(r#""code":"resource_not_found""#), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_post_gets_one_key_and_transport_failures_come_back_as_they_are() {
    let server = Server::start([Act::Reset, Act::Reset, Act::Reset]).await;
    let err =
        client().post(server.url("/v1/projects")).body("{}").send().await.expect_err("reset three times");
    assert!(matches!(err, reqwest_middleware::Error::Reqwest(_)), "{err:?}");
    let keys: Vec<_> = server.seen().iter().map(|s| s.header("idempotency-key").map(str::to_owned)).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys[0].is_some() && keys.iter().all(|k| *k == keys[0]), "{keys:?}");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_a_middleware_error() {
    let server = Server::start([Act::ok().after(Duration::from_secs(120))]).await;
    let err = client().get(server.url("/slow")).send().await.expect_err("deadline");
    let reqwest_middleware::Error::Middleware(e) = err else { panic!("{err:?}") };
    assert_eq!(e.downcast_ref::<ApiError>().map(ApiError::kind), Some(Kind::Deadline));
}
