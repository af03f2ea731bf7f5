//! [`MemoryStore`]: rate limits, quotas and idempotency records in this process's memory.
//!
//! Exact for one instance; state is lost on restart and not shared between instances (use a
//! shared backend for that). Expired entries are dropped when they are next looked at, and in
//! a sweep every few thousand operations so that keys never seen again do not accumulate.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ratelimit::{gcra, now_nanos};
use crate::{
    Admission, Begin, BeginRequest, BoxFuture, Decision, IdempotencyStore, Quota, QuotaStore, RateLimitStore,
    StoreError, StoredResponse, Usage,
};

/// Operations between two sweeps of expired entries.
const SWEEP_EVERY: u32 = 4096;

/// In-memory [`RateLimitStore`], [`QuotaStore`] and [`IdempotencyStore`].
///
/// ```
/// use std::sync::Arc;
/// use rebuff_store::{IdempotencyStore, MemoryStore, RateLimitStore};
///
/// let store = Arc::new(MemoryStore::new());
/// let limits: Arc<dyn RateLimitStore> = store.clone();
/// let idempotency: Arc<dyn IdempotencyStore> = store;
/// # let _ = (limits, idempotency);
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Key -> theoretical arrival time (ns since the Unix epoch).
    tats: HashMap<String, u128>,
    /// (organisation, period) -> usage.
    usage: HashMap<(String, String), u64>,
    /// Scoped idempotency key -> record.
    idempotency: HashMap<String, Record>,
    /// (organisation, charge id) -> until when a granted charge is remembered.
    charges: HashMap<(String, String), Instant>,
    ops: u32,
}

#[derive(Debug)]
struct Record {
    fingerprint: [u8; 32],
    state: RecordState,
    expires: Instant,
}

#[derive(Debug)]
enum RecordState {
    Locked,
    Done(StoredResponse),
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written entry (every update is a
        // single map operation), so a poisoned lock is still consistent.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.ops = state.ops.wrapping_add(1);
        if state.ops.is_multiple_of(SWEEP_EVERY) {
            state.sweep();
        }
        state
    }
}

impl State {
    fn sweep(&mut self) {
        let now = Instant::now();
        self.idempotency.retain(|_, r| r.expires > now);
        self.charges.retain(|_, until| *until > now);
        let now_nanos = now_nanos();
        self.tats.retain(|_, tat| *tat > now_nanos);
    }

    fn consume(&mut self, org: &str, period: &str, amount: u64, limit: u64) -> Usage {
        let used = self.usage.entry((org.to_owned(), period.to_owned())).or_insert(0);
        match used.checked_add(amount) {
            Some(after) if after <= limit => {
                *used = after;
                Usage { granted: true, used: after, limit }
            }
            _ => Usage { granted: false, used: *used, limit },
        }
    }

    fn check(&mut self, key: &str, quota: Quota, now_nanos: u128) -> Decision {
        // A key seen before (nearly every request) is hashed and looked up once; a new one
        // once more, to insert it with an owned copy of the key.
        if let Some(stored) = self.tats.get_mut(key) {
            let (tat, decision) = gcra(Some(*stored), now_nanos, quota);
            if let Some(tat) = tat {
                *stored = tat;
            }
            return decision;
        }
        let (tat, decision) = gcra(None, now_nanos, quota);
        if let Some(tat) = tat {
            self.tats.insert(key.to_owned(), tat);
        }
        decision
    }

    fn begin(&mut self, key: &str, fingerprint: &[u8; 32], lock_ttl: Duration) -> Begin {
        let now = Instant::now();
        if let Some(record) = self.idempotency.get(key)
            && record.expires > now
        {
            return if record.fingerprint != *fingerprint {
                Begin::Mismatch
            } else {
                match &record.state {
                    RecordState::Locked => Begin::InFlight,
                    RecordState::Done(res) => Begin::Completed(res.clone()),
                }
            };
        }
        let record =
            Record { fingerprint: *fingerprint, state: RecordState::Locked, expires: now + lock_ttl };
        self.idempotency.insert(key.to_owned(), record);
        Begin::Started
    }
}

impl RateLimitStore for MemoryStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(async move { Ok(self.lock().check(key, quota, now_nanos)) })
    }

    fn check_now(&self, key: &str, quota: Quota, now_nanos: u128) -> Option<Result<Decision, StoreError>> {
        Some(Ok(self.lock().check(key, quota, now_nanos)))
    }

    fn check_and_begin<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
        begin: BeginRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<Admission, StoreError>>> {
        Some(Box::pin(async move {
            let mut state = self.lock();
            let decision = state.check(key, quota, now_nanos);
            let begin = decision.allowed.then(|| state.begin(begin.key, begin.fingerprint, begin.lock_ttl));
            Ok(Admission { decision, begin })
        }))
    }
}

impl QuotaStore for MemoryStore {
    fn consume<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        Box::pin(async move { Ok(self.lock().consume(org, period, amount, limit)) })
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
        Box::pin(async move {
            let mut state = self.lock();
            let now = Instant::now();
            let id = (org.to_owned(), charge.to_owned());
            if state.charges.get(&id).is_some_and(|until| *until > now) {
                let used = state.usage.get(&(org.to_owned(), period.to_owned())).copied().unwrap_or(0);
                return Ok(Usage { granted: true, used, limit });
            }
            let usage = state.consume(org, period, amount, limit);
            if usage.granted {
                state.charges.insert(id, now + ttl);
            }
            Ok(usage)
        })
    }
}

impl IdempotencyStore for MemoryStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        lock_ttl: Duration,
    ) -> BoxFuture<'a, Result<Begin, StoreError>> {
        Box::pin(async move { Ok(self.lock().begin(key, fingerprint, lock_ttl)) })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        response: StoredResponse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let record = Record {
                fingerprint: *fingerprint,
                state: RecordState::Done(response),
                expires: Instant::now() + ttl,
            };
            self.lock().idempotency.insert(key.to_owned(), record);
            Ok(())
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut state = self.lock();
            if let Some(Record { state: RecordState::Locked, .. }) = state.idempotency.get(key) {
                state.idempotency.remove(key);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn passes_the_conformance_suite() {
        let store = Arc::new(MemoryStore::new());
        crate::conformance::run_all(store).await;
    }

    #[tokio::test]
    async fn release_keeps_a_completed_record() {
        let store = MemoryStore::new();
        let fp = [1; 32];
        let res = StoredResponse { status: 201, headers: Vec::new(), body: "ok".into() };
        assert_eq!(store.begin("k", &fp, Duration::from_secs(60)).await, Ok(Begin::Started));
        store.complete("k", &fp, res.clone(), Duration::from_secs(60)).await.ok();
        store.release("k").await.ok();
        assert_eq!(store.begin("k", &fp, Duration::from_secs(60)).await, Ok(Begin::Completed(res)));
    }
}
