//! The retry policy against a fault-injecting server: 503 bursts, 429 with `Retry-After` in
//! seconds and as a date, the `RateLimit` field, resets, closes and slow answers.
//!
//! Every test runs under a paused tokio clock: the waits are virtual, so a 7-second
//! `Retry-After` takes no real time, and the gaps between the requests the server saw are
//! exactly the delays the policy chose. The delays are also checked as `on_retry` reported
//! them.

mod script;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use rebuff_client::{ApiError, Client, Contract, Jitter, Kind, RetryBudget, RetryPolicy};
use script::{Act, Server};
use tokio::time::Instant;

/// A policy with exact delays: 100 ms, 200 ms, 400 ms... capped at 1 s.
fn exact() -> rebuff_client::RetryPolicyBuilder {
    RetryPolicy::builder()
        .max_attempts(5)
        .base_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(1))
        .jitter(Jitter::None)
        .budget(RetryBudget::unlimited())
}

/// A client that records the delays it chose.
fn client(policy: RetryPolicy) -> (Client, Arc<Mutex<Vec<Duration>>>) {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let d = delays.clone();
    let client = Client::builder()
        .contract(Contract::builtin("rebuff").expect("built in"))
        .retry(policy)
        .on_retry(move |e| d.lock().expect("lock").push(e.delay))
        .build();
    (client, delays)
}

fn ms(delays: &Mutex<Vec<Duration>>) -> Vec<u128> {
    delays.lock().expect("lock").iter().map(Duration::as_millis).collect()
}

async fn get(client: &Client, server: &Server) -> Result<reqwest::Response, ApiError> {
    client.send(client.get(server.url("/v1/things"))).await
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_503_is_retried_with_exponential_backoff() {
    let server = Server::start([Act::status(503), Act::status(503), Act::status(503), Act::ok()]).await;
    let (client, delays) = client(exact().build());
    let started = Instant::now();
    let res = get(&client, &server).await.expect("succeeds on the fourth attempt");
    assert_eq!(res.status(), 200);
    assert_eq!(server.seen().len(), 4);
    assert_eq!(server.gaps_ms(), [100, 200, 400]);
    assert_eq!(ms(&delays), [100, 200, 400]);
    assert_eq!(started.elapsed(), Duration::from_millis(700));
}

#[tokio::test(start_paused = true)]
async fn full_jitter_waits_at_most_the_ceiling() {
    let server = Server::start(std::iter::repeat_n(Act::status(503), 5)).await;
    let policy = exact().jitter(Jitter::Full).build();
    let (client, delays) = client(policy.clone());
    let e = get(&client, &server).await.expect_err("503 five times");
    assert_eq!((e.status().map(|s| s.as_u16()), e.attempts()), (Some(503), 5));
    let gaps = server.gaps_ms();
    // Tokio's timers tick in whole milliseconds, rounding a wait up.
    let chosen: Vec<u128> =
        delays.lock().expect("lock").iter().map(|d| d.as_nanos().div_ceil(1_000_000)).collect();
    assert_eq!(gaps, chosen, "the waits are the delays the policy chose");
    for (i, gap) in gaps.iter().enumerate() {
        let ceiling = policy.backoff_ceiling(u32::try_from(i).expect("small") + 1).as_millis();
        assert!(*gap <= ceiling, "retry {}: waited {gap} ms, ceiling {ceiling} ms", i + 1);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_and_as_a_date_is_honoured() {
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let server = Server::start([
        Act::problem(429, "rate_limit_exceeded").header("retry-after", "7"),
        Act::problem(503, "service_unavailable")
            .header("date", httpdate::fmt_http_date(date))
            .header("retry-after", httpdate::fmt_http_date(date + Duration::from_secs(3))),
        Act::ok(),
    ])
    .await;
    let (client, delays) = client(exact().build());
    get(&client, &server).await.expect("third attempt succeeds");
    assert_eq!(server.gaps_ms(), [7_000, 3_000]);
    assert_eq!(ms(&delays), [7_000, 3_000]);
}

#[tokio::test(start_paused = true)]
async fn the_ratelimit_field_is_honoured() {
    let server = Server::start([
        Act::status(429).header("ratelimit", r#""default";r=0;t=4"#),
        Act::status(429).header("ratelimit-policy", r#""default";q=60;w=60"#),
    ])
    .await;
    let (client, _) = client(exact().build());
    get(&client, &server).await.expect("third attempt succeeds");
    // The second 429 has no hint: backoff (second retry, 200 ms).
    assert_eq!(server.gaps_ms(), [4_000, 200]);
}

#[tokio::test(start_paused = true)]
async fn a_hint_longer_than_the_cap_is_not_waited_for() {
    let server = Server::start([Act::problem(429, "rate_limit_exceeded").header("retry-after", "120")]).await;
    let (client, _) = client(exact().max_retry_after(Duration::from_secs(60)).build());
    let started = Instant::now();
    let e = get(&client, &server).await.expect_err("not retried");
    assert_eq!(e.attempts(), 1);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(e.stable_code(), Some("rate_limit_exceeded"));
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn resets_and_closed_connections_are_retried() {
    let server = Server::start([Act::Reset, Act::Close, Act::ok()]).await;
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let k = kinds.clone();
    let client = Client::builder()
        .retry(exact().build())
        .on_retry(move |e| k.lock().expect("lock").push(e.error.kind()))
        .build();
    let res = get(&client, &server).await.expect("third attempt succeeds");
    assert_eq!(res.status(), 200);
    assert_eq!(server.seen().len(), 3);
    assert_eq!(*kinds.lock().expect("lock"), [Kind::Reset, Kind::Reset]);
    assert_eq!(server.gaps_ms(), [100, 200]);
}

#[tokio::test(start_paused = true)]
async fn a_post_keeps_one_idempotency_key_across_its_attempts() {
    let server = Server::start([Act::status(503), Act::Reset, Act::status(502), Act::ok()]).await;
    let (client, _) = client(exact().build());
    let create = client.post(server.url("/v1/projects")).json(&serde_json::json!({"name": "alpha"}));
    client.send(create).await.expect("fourth attempt succeeds");
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    let keys: Vec<Option<&str>> = seen.iter().map(|s| s.header("idempotency-key")).collect();
    let first = keys[0].expect("a generated key");
    assert!(first.starts_with("rbk_") && first.len() == 36, "{first}");
    assert!(keys.iter().all(|k| *k == Some(first)), "{keys:?}");

    // Another POST gets another key; a key the caller set is kept.
    server.then([Act::status(503)]);
    let again = client.post(server.url("/v1/projects")).header("idempotency-key", "mine-1").body("{}");
    client.send(again).await.expect("retried");
    let seen = server.seen();
    assert_eq!(seen[4].header("idempotency-key"), Some("mine-1"));
    assert_eq!(seen[5].header("idempotency-key"), Some("mine-1"));
}

#[tokio::test(start_paused = true)]
async fn a_post_or_patch_without_a_key_is_never_retried() {
    let server = Server::start([Act::status(503), Act::Reset, Act::status(503)]).await;
    let (client, _) = client(exact().idempotency_keys(false).build());
    let post = client.post(server.url("/v1/projects")).body("{}");
    let e = client.send(post).await.expect_err("not retried");
    assert_eq!((e.status().map(|s| s.as_u16()), e.attempts()), (Some(503), 1));
    let post = client.post(server.url("/v1/projects")).body("{}");
    let e = client.send(post).await.expect_err("not retried");
    assert_eq!((e.kind(), e.attempts()), (Kind::Reset, 1));
    let patch = client.patch(server.url("/v1/projects/1")).body("{}");
    let e = client.send(patch).await.expect_err("not retried");
    assert_eq!((e.status().map(|s| s.as_u16()), e.attempts()), (Some(503), 1));
    assert_eq!(server.seen().len(), 3);
    assert!(server.seen().iter().all(|s| s.header("idempotency-key").is_none()));
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_even_for_a_post_without_a_key() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let (client, delays) = client(exact().max_attempts(3).idempotency_keys(false).build());
    let post = client.post(format!("http://{addr}/v1/projects")).body("{}");
    let e = client.send(post).await.expect_err("nothing listens");
    assert_eq!((e.kind(), e.attempts()), (Kind::Connect, 3));
    assert_eq!(ms(&delays), [100, 200]);
}

#[tokio::test(start_paused = true)]
async fn requests_that_need_fixing_are_not_retried() {
    let server = Server::start([
        Act::problem(400, "invalid_json"),
        Act::problem(422, "validation_failed"),
        Act::problem(409, "resource_already_exists"),
        Act::problem(401, "api_key_expired"),
        Act::status(400),
        Act::status(422),
        Act::status(501),
    ])
    .await;
    let (client, delays) = client(exact().build());
    for expected in [Some("invalid_json"), Some("validation_failed"), Some("resource_already_exists")] {
        let e = get(&client, &server).await.expect_err("an error");
        assert_eq!((e.stable_code(), e.attempts()), (expected, 1));
    }
    let e = get(&client, &server).await.expect_err("no re-authentication hook");
    assert_eq!((e.stable_code(), e.attempts(), e.needs_reauth()), (Some("api_key_expired"), 1, true));
    // Without a code, by status alone.
    let bare = Client::builder().retry(exact().build()).build();
    for status in [400, 422, 501] {
        let e = get(&bare, &server).await.expect_err("an error");
        assert_eq!((e.status().map(|s| s.as_u16()), e.attempts()), (Some(status), 1));
    }
    assert_eq!(server.seen().len(), 7);
    assert!(ms(&delays).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_retries_once_spent_and_successes_refill_it() {
    let budget = RetryBudget::with_costs(12, 5, 10);
    let policy = exact().max_attempts(10).budget(budget.clone()).build();
    let server = Server::start(std::iter::repeat_n(Act::status(503), 4)).await;
    let (client, _) = client(policy);
    // Two retries fit in 12 tokens; the third does not.
    let e = get(&client, &server).await.expect_err("budget spent");
    assert_eq!(e.attempts(), 3);
    assert_eq!(budget.available(), 2);
    // The budget is the client's, not the request's: the next failure is not retried at all.
    let e = client.clone().send(client.get(server.url("/"))).await.expect_err("no tokens");
    assert_eq!(e.attempts(), 1);
    assert_eq!(server.seen().len(), 4);
    // A success at once puts back one token.
    get(&client, &server).await.expect("200");
    assert_eq!(budget.available(), 3);
}

#[tokio::test(start_paused = true)]
async fn one_deadline_across_attempts() {
    // 503s that each ask for 4 s: attempts at 0, 4 and 8 s; the next wait would end past 10 s.
    let server = Server::start(std::iter::repeat_n(
        Act::problem(503, "service_unavailable").header("retry-after", "4"),
        5,
    ))
    .await;
    let (client, _) = client(exact().deadline(Some(Duration::from_secs(10))).build());
    let started = Instant::now();
    let e = get(&client, &server).await.expect_err("deadline");
    assert_eq!((e.kind(), e.attempts()), (Kind::Status, 3));
    assert_eq!(server.gaps_ms(), [4_000, 4_000]);
    assert_eq!(started.elapsed(), Duration::from_secs(8), "no wait that cannot end in time");
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_past_the_deadline_ends_the_request_at_the_deadline() {
    let server = Server::start([Act::status(503), Act::ok().after(Duration::from_secs(30))]).await;
    let (client, _) = client(exact().deadline(Some(Duration::from_secs(10))).build());
    let started = Instant::now();
    let e = get(&client, &server).await.expect_err("deadline");
    assert_eq!((e.kind(), e.attempts()), (Kind::Deadline, 2));
    assert!(e.is_timeout() && e.is_deadline());
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_times_out_and_is_retried() {
    let server = Server::start([Act::ok().after(Duration::from_secs(5)), Act::ok()]).await;
    let policy = exact().attempt_timeout(Some(Duration::from_secs(2))).build();
    let (client, delays) = client(policy);
    let started = Instant::now();
    get(&client, &server).await.expect("second attempt succeeds");
    assert_eq!(ms(&delays), [100]);
    assert_eq!(started.elapsed(), Duration::from_millis(2_100));
}

#[tokio::test(start_paused = true)]
async fn an_expired_credential_is_renewed_once_then_retried() {
    let server = Server::start([Act::problem(401, "session_expired"), Act::ok()]).await;
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let client = Client::builder()
        .contract(Contract::builtin("rebuff").expect("built in"))
        .retry(exact().build())
        .reauthenticate(move |e| {
            assert!(e.needs_reauth(), "{e}");
            *c.lock().expect("lock") += 1;
            async {
                let mut h = HeaderMap::new();
                h.insert("authorization", HeaderValue::from_static("Bearer fresh"));
                Ok(h)
            }
        })
        .build();
    let req = client.get(server.url("/v1/things")).bearer_auth("stale");
    client.send(req).await.expect("renewed, then succeeds");
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization"), Some("Bearer stale"));
    assert_eq!(seen[1].header("authorization"), Some("Bearer fresh"));
    assert_eq!(server.gaps_ms(), [0], "no backoff before the renewed attempt");
    assert_eq!(*calls.lock().expect("lock"), 1);

    // Still refused after renewing: the hook does not run twice.
    server.then([Act::problem(401, "api_key_expired"), Act::problem(401, "api_key_expired")]);
    let e = client.send(client.get(server.url("/v1/things"))).await.expect_err("401 twice");
    assert_eq!((e.stable_code(), e.attempts()), (Some("api_key_expired"), 2));
    assert_eq!(*calls.lock().expect("lock"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_reauthentication_hook_ends_the_request() {
    let server = Server::start([Act::problem(401, "session_expired")]).await;
    let client = Client::builder()
        .contract(Contract::builtin("rebuff").expect("built in"))
        .reauthenticate(|_| async { Err("identity provider down".into()) })
        .build();
    let e = get(&client, &server).await.expect_err("hook failed");
    assert_eq!(e.kind(), Kind::Reauth);
    assert_eq!(
        std::error::Error::source(&e).map(ToString::to_string).as_deref(),
        Some("identity provider down")
    );
}
