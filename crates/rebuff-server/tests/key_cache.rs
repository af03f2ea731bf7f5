//! Two instances on one SQLite file: each keeps verified keys in memory, and a key revoked
//! through one is refused by the other within the cache's bound (1 s by default).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rebuff_server::{AppState, Config};
use rebuff_sqlite::SqliteStore;
use reqwest::StatusCode;

/// Slack over the bound for a loaded machine: the test asserts the bound is kept, not a speed.
const SLACK: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_is_refused_by_the_other_within_the_bound() {
    let a = support::start("rebuff", support::Opts::default()).await;
    let mut config = Config::new(Arc::new(a.catalog.clone()));
    config.rate_limit.limit = 1_000_000;
    let bound = config.key_cache.expect("keys are cached by default");
    let state = AppState::new(config, SqliteStore::open(&a.db).expect("second handle")).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let b = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rebuff_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let get_on_b = || a.http.get(format!("{b}/v1/projects")).bearer_auth(&a.reader).send();

    // B verifies the key, and keeps it.
    assert_eq!(get_on_b().await.expect("request").status(), StatusCode::OK);
    let id = rebuff_axum::auth::key::parse(&a.reader).expect("well-formed").id;
    let res = a
        .http
        .delete(a.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(&a.admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    // The revoking instance refuses it at once.
    let res = a.get("/v1/projects", &a.reader).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let refused_after = loop {
        let status = get_on_b().await.expect("request").status();
        let elapsed = revoked.elapsed();
        if status == StatusCode::UNAUTHORIZED {
            break elapsed;
        }
        assert_eq!(status, StatusCode::OK, "before the revocation is seen the key works");
        assert!(
            elapsed <= bound + SLACK,
            "still accepted {elapsed:?} after its revocation (bound {bound:?})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!("revocation seen by the other instance after {refused_after:?} (bound {bound:?})");
    let _ = stop.send(());
}
