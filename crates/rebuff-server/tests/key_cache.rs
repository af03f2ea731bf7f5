//! Two instances on one SQLite file: each keeps verified keys in memory, and a key revoked
//! through one is refused by the other within the cache's bound (1 s by default).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rebuff_server::{AppState, Config};
use rebuff_sqlite::SqliteStore;
use reqwest::StatusCode;

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

    // Probes B until it refuses the key. B serves a cached key only while its last reading of
    // the key generation started less than the bound ago, and that reading (for the first
    // request) started before the revocation. So every probe B accepts was sent less than the
    // bound after the revocation, however loaded the machine: what is asserted is the bound,
    // exactly, and not a speed. Once probes are sent later than that, B must refuse.
    let mut last_accepted = None;
    let refused = loop {
        let sent = revoked.elapsed();
        let status = get_on_b().await.expect("request").status();
        if status == StatusCode::UNAUTHORIZED {
            break sent;
        }
        assert_eq!(status, StatusCode::OK, "before the revocation is seen the key works");
        assert!(sent < bound, "accepted a request sent {sent:?} after its revocation (bound {bound:?})");
        last_accepted = Some(sent);
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let last_accepted = last_accepted.map_or_else(|| "none".to_owned(), |sent| format!("{sent:?}"));
    eprintln!(
        "after the revocation, the other instance accepted the key last in a request sent at \
         {last_accepted} and first refused it in one sent at {refused:?} (bound {bound:?})"
    );
    let _ = stop.send(());
}
