//! The storage conformance suite of rebuff-store, against SQLite on disk: one store, and two
//! stores (two connections, as two processes would have) on one file.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rebuff_sqlite::SqliteStore;
use rebuff_store::{
    Begin, BoxFuture, Decision, IdempotencyStore, Quota, QuotaStore, RateLimitStore, StoreError,
    StoredResponse, Usage, conformance,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_database_passes_the_conformance_suite() {
    let (_dir, store) = support::fresh("conformance");
    let store = Arc::new(store);
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_database_passes_the_account_conformance_suite() {
    let (_dir, store) = support::fresh("conformance-accounts");
    conformance::accounts(Arc::new(store)).await;
}

/// Two connections to one file, used in turn: what two server processes sharing the file
/// would do. Exactness then rests on SQLite's locking, not on this process's mutex.
#[derive(Debug)]
struct TwoConnections {
    stores: [SqliteStore; 2],
    next: AtomicUsize,
}

impl TwoConnections {
    fn pick(&self) -> &SqliteStore {
        &self.stores[self.next.fetch_add(1, Ordering::Relaxed) % 2]
    }
}

impl RateLimitStore for TwoConnections {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        self.pick().check(key, quota, now)
    }
}

impl QuotaStore for TwoConnections {
    fn consume<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        self.pick().consume(org, period, amount, limit)
    }

    fn consume_once<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
        charge: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        self.pick().consume_once(org, period, amount, limit, charge, ttl)
    }
}

impl IdempotencyStore for TwoConnections {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        lock_ttl: Duration,
    ) -> BoxFuture<'a, Result<Begin, StoreError>> {
        self.pick().begin(key, fingerprint, lock_ttl)
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        response: StoredResponse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.pick().complete(key, fingerprint, response, ttl)
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.pick().release(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_on_one_file_pass_the_conformance_suite() {
    let (dir, first) = support::fresh("conformance-two");
    let second = SqliteStore::open(dir.db()).expect("second connection");
    assert!(!second.was_created());
    let store = Arc::new(TwoConnections { stores: [first, second], next: AtomicUsize::new(0) });
    conformance::run_all(store).await;
}
