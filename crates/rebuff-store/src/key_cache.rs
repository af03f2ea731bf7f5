//! A verified-key cache: [`CachedKeyStore`] keeps the keys it has read, so that a request
//! does not read the database for its key, and forgets them when any key changes, so that a
//! revocation on one instance takes effect on every other within a bound
//! ([`CachedKeyStore::max_staleness`], 1 s by default).
//!
//! How an instance learns that keys changed is the backend's [`KeyChanges`]: a number that
//! changes whenever a stored key is changed or removed (a counter bumped by a trigger). The
//! cache reads it lazily, at most once per `max_staleness` and only when a request needs a
//! key, so an idle instance does nothing and a busy one does one cheap read a second. Where
//! changes can be pushed (PostgreSQL's `LISTEN/NOTIFY`, or announcements over Redis pub/sub
//! for keys in SQLite), a listener calls [`KeyCacheHandle::invalidate`] as they arrive, on top
//! of the polling, which keeps the bound when the push channel is down.
//!
//! Why the bound holds: an entry is served only while the last reading of the counter
//! *started* less than `max_staleness` ago. A revocation committed at time `r` is visible to
//! any reading that starts after `r`, and that reading empties the cache; so from
//! `r + max_staleness` on, no request is served from an entry read before the revocation.
//! An entry read from the database while the counter was being read again is only kept if
//! the counter did not change in between (entries carry the generation they were read
//! under).
//!
//! Unknown key ids are not cached: they cost the database a read as before, and cannot fill
//! the memory of an instance. The cache holds at most [`CachedKeyStore::capacity`] keys and
//! starts over when full.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::{BoxFuture, KeyRecord, KeyStore, StoreError};

/// The default bound on how long a revoked key may still be accepted by an instance that
/// cached it.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(1);

/// The default number of keys an instance caches.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Tells a [`CachedKeyStore`] that keys changed.
pub trait KeyChanges: Send + Sync + 'static {
    /// A value that changes whenever a stored key is changed or removed (not when one is
    /// created, nor when its last use is recorded).
    fn key_generation(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// A [`KeyStore`] that caches the keys of another; see the [module documentation](self).
pub struct CachedKeyStore {
    inner: Arc<dyn KeyStore>,
    changes: Arc<dyn KeyChanges>,
    state: Arc<Mutex<State>>,
    max_staleness: Duration,
    capacity: usize,
}

struct State {
    // Every request looks a key id up here; foldhash hashes it in a fraction of SipHash's
    // time. Its per-map random seed is enough: only keys the backend holds are inserted, so
    // a caller cannot fill the map with colliding ids.
    keys: HashMap<Arc<str>, KeyRecord, foldhash::fast::RandomState>,
    /// The backend's generation at the last reading; `None` before the first.
    generation: Option<u64>,
    /// When the last reading of the generation started.
    checked: Option<Instant>,
    /// Bumped whenever the cache is emptied: an entry read under an older epoch is dropped.
    epoch: u64,
}

impl State {
    fn clear(&mut self) {
        self.keys.clear();
        self.epoch = self.epoch.wrapping_add(1);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is consistent between statements; a panic elsewhere does not spoil it.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for CachedKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedKeyStore")
            .field("max_staleness", &self.max_staleness)
            .field("capacity", &self.capacity)
            .field("cached", &lock(&self.state).keys.len())
            .finish_non_exhaustive()
    }
}

/// Empties a [`CachedKeyStore`] from elsewhere (a listener of pushed changes). Cheap to clone.
#[derive(Clone)]
pub struct KeyCacheHandle {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for KeyCacheHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCacheHandle").finish_non_exhaustive()
    }
}

impl KeyCacheHandle {
    /// Forgets every cached key: the next request for each reads the backend.
    pub fn invalidate(&self) {
        lock(&self.state).clear();
    }

    /// Whether the cache and every other handle to it are gone, so that a listener holding
    /// this handle can stop.
    pub fn is_orphaned(&self) -> bool {
        Arc::strong_count(&self.state) == 1
    }
}

impl CachedKeyStore {
    /// Caches the keys of `inner`, forgetting them when `changes` reports a change.
    pub fn new(inner: Arc<dyn KeyStore>, changes: Arc<dyn KeyChanges>) -> Self {
        CachedKeyStore {
            inner,
            changes,
            state: Arc::new(Mutex::new(State {
                keys: HashMap::default(),
                generation: None,
                checked: None,
                epoch: 0,
            })),
            max_staleness: DEFAULT_MAX_STALENESS,
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// The longest a change of a key (a revocation) may go unseen ([`DEFAULT_MAX_STALENESS`]).
    /// Zero reads the backend's generation on every lookup.
    #[must_use]
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// How many keys are kept at most ([`DEFAULT_CAPACITY`]); zero caches nothing.
    #[must_use]
    pub fn capacity(mut self, keys: usize) -> Self {
        self.capacity = keys;
        self
    }

    /// A handle that empties this cache, for a listener of pushed changes.
    pub fn handle(&self) -> KeyCacheHandle {
        KeyCacheHandle { state: self.state.clone() }
    }

    /// Whether the last reading of the backend's generation is within the bound at `now`.
    fn fresh(&self, state: &State, now: Instant) -> bool {
        state.checked.is_some_and(|at| now.saturating_duration_since(at) < self.max_staleness)
    }

    /// Reads the backend's generation if the last reading is older than the bound, and
    /// empties the cache if it changed. Returns the epoch to tag new entries with.
    async fn refresh(&self) -> Result<u64, StoreError> {
        let started = Instant::now();
        {
            let state = lock(&self.state);
            if self.fresh(&state, started) {
                return Ok(state.epoch);
            }
        }
        let generation = self.changes.key_generation().await?;
        let mut state = lock(&self.state);
        if state.generation != Some(generation) {
            state.clear();
            state.generation = Some(generation);
        }
        // Concurrent readings may finish out of order: keep the latest start.
        if state.checked.is_none_or(|at| at < started) {
            state.checked = Some(started);
        }
        Ok(state.epoch)
    }
}

impl KeyStore for CachedKeyStore {
    fn find_key_now(&self, id: &str) -> Option<KeyRecord> {
        // What `find_key` answers without reading the backend: a key cached since the last
        // reading of the generation, when that reading is within the bound. (The cache is
        // emptied, and its epoch moved, whenever the generation changes.)
        let now = Instant::now();
        let state = lock(&self.state);
        if self.fresh(&state, now) { state.keys.get(id).cloned() } else { None }
    }

    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
        Box::pin(async move {
            let epoch = self.refresh().await?;
            {
                let state = lock(&self.state);
                if state.epoch == epoch
                    && let Some(record) = state.keys.get(id)
                {
                    return Ok(Some(record.clone()));
                }
            }
            let found = self.inner.find_key(id).await?;
            if let Some(record) = &found
                && self.capacity > 0
            {
                let mut state = lock(&self.state);
                // Emptied while the backend was read: what was read may predate the change.
                if state.epoch == epoch {
                    if state.keys.len() >= self.capacity {
                        // Not a change of keys: readers under way may still insert.
                        state.keys.clear();
                    }
                    state.keys.insert(record.id.clone(), record.clone());
                }
            }
            Ok(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use super::*;

    #[derive(Default)]
    struct Counting {
        reads: AtomicUsize,
        generation: AtomicU64,
        revoked: std::sync::atomic::AtomicBool,
    }

    impl KeyStore for Counting {
        fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let record = (id != "missing").then(|| KeyRecord {
                id: id.into(),
                org_id: "org".into(),
                secret_hash: [0; 32],
                scopes: vec!["read".into()].into(),
                expires_at: None,
                revoked_at: self.revoked.load(Ordering::SeqCst).then_some(1),
                allowed_ips: Vec::new(),
                live: false,
            });
            Box::pin(std::future::ready(Ok(record)))
        }
    }

    impl KeyChanges for Counting {
        fn key_generation(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
            Box::pin(std::future::ready(Ok(self.generation.load(Ordering::SeqCst))))
        }
    }

    fn cache(backend: &Arc<Counting>, bound: Duration) -> CachedKeyStore {
        CachedKeyStore::new(backend.clone(), backend.clone()).max_staleness(bound)
    }

    #[tokio::test]
    async fn a_cached_key_is_not_read_again_until_keys_change() {
        let backend = Arc::new(Counting::default());
        let cache = cache(&backend, Duration::ZERO);
        for _ in 0..3 {
            assert!(cache.find_key("k1").await.expect("find").is_some());
        }
        assert_eq!(backend.reads.load(Ordering::SeqCst), 1);
        backend.revoked.store(true, Ordering::SeqCst);
        backend.generation.fetch_add(1, Ordering::SeqCst);
        let record = cache.find_key("k1").await.expect("find").expect("found");
        assert!(record.revoked_at.is_some(), "a change of generation is seen at once with a zero bound");
        assert_eq!(backend.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_key_is_at_hand_only_while_cached_and_fresh() {
        let backend = Arc::new(Counting::default());
        let cache = cache(&backend, Duration::from_secs(3600));
        assert!(cache.find_key_now("k1").is_none(), "nothing cached yet");
        assert!(cache.find_key("k1").await.expect("find").is_some());
        assert_eq!(cache.find_key_now("k1").map(|r| r.id), Some("k1".into()));
        assert!(cache.find_key_now("k2").is_none(), "another key is not at hand");
        cache.handle().invalidate();
        assert!(cache.find_key_now("k1").is_none(), "an emptied cache holds nothing");
        assert_eq!(backend.reads.load(Ordering::SeqCst), 1, "find_key_now never reads the backend");
        // With a zero bound the generation is read on every lookup: nothing is ever at hand.
        let eager = CachedKeyStore::new(backend.clone(), backend.clone()).max_staleness(Duration::ZERO);
        assert!(eager.find_key("k1").await.expect("find").is_some());
        assert!(eager.find_key_now("k1").is_none());
    }

    #[tokio::test]
    async fn unknown_keys_are_not_cached() {
        let backend = Arc::new(Counting::default());
        let cache = cache(&backend, Duration::from_secs(3600));
        for _ in 0..3 {
            assert!(cache.find_key("missing").await.expect("find").is_none());
        }
        assert_eq!(backend.reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn within_the_bound_the_generation_is_not_read_and_a_push_empties_the_cache() {
        let backend = Arc::new(Counting::default());
        let cache = cache(&backend, Duration::from_secs(3600));
        assert!(cache.find_key("k1").await.expect("find").is_some());
        backend.revoked.store(true, Ordering::SeqCst);
        backend.generation.fetch_add(1, Ordering::SeqCst);
        let stale = cache.find_key("k1").await.expect("find").expect("found");
        assert!(stale.revoked_at.is_none(), "within the bound the cached record is served");
        let handle = cache.handle();
        handle.invalidate();
        let fresh = cache.find_key("k1").await.expect("find").expect("found");
        assert!(fresh.revoked_at.is_some());
        assert!(!handle.is_orphaned());
        drop(cache);
        assert!(handle.is_orphaned(), "a listener can tell that the cache is gone");
    }

    #[tokio::test]
    async fn a_full_cache_starts_over_and_a_zero_capacity_caches_nothing() {
        let backend = Arc::new(Counting::default());
        let cache = cache(&backend, Duration::from_secs(3600)).capacity(2);
        for id in ["a", "b", "c", "a"] {
            cache.find_key(id).await.expect("find");
        }
        // "c" emptied the cache holding a and b, so "a" was read again.
        assert_eq!(backend.reads.load(Ordering::SeqCst), 4);
        assert!(lock(&cache.state).keys.len() <= 2);
        let none = CachedKeyStore::new(backend.clone(), backend.clone()).capacity(0);
        none.find_key("a").await.expect("find");
        none.find_key("a").await.expect("find");
        assert_eq!(backend.reads.load(Ordering::SeqCst), 6);
    }
}
