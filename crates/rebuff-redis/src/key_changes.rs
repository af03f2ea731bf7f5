//! Key changes pushed over Redis pub/sub, for instances whose keys live in a store that cannot
//! push (SQLite): the instance that revokes a key announces it on the store's channel
//! (`{prefix}key-changes`), and every instance listening there empties its key cache at once
//! instead of at its cache's next poll.
//!
//! Redis holds no keys, so it cannot see a change made elsewhere: only what is announced is
//! pushed. A change made straight in the database (`rebuff keys revoke` on the file, an
//! `UPDATE`), an announcement lost while Redis was down, or one made while a listener was
//! reconnecting is still seen by the cache's polling of the key generation, within its bound
//! ([`rebuff_store::CachedKeyStore::max_staleness`]).

use std::time::Duration;

use futures_util::StreamExt;
use rebuff_store::{KeyCacheHandle, StoreError};

use crate::RedisStore;

/// How long a listener waits before connecting again after losing its connection.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// How often an idle listener looks whether its cache is gone (the server's state dropped),
/// to close its connection.
const ORPHAN_CHECK: Duration = Duration::from_secs(5);

impl RedisStore {
    /// The channel key changes are announced on: `{prefix}key-changes`. Instances that share a
    /// Redis and a prefix share it.
    pub fn key_changes_channel(&self) -> String {
        format!("{}key-changes", self.inner.prefix)
    }

    /// Tells every instance listening on this store's channel
    /// ([`listen_key_changes`](RedisStore::listen_key_changes)) that a key changed (was
    /// revoked, expired early, lost a scope), so that each empties its key cache now rather
    /// than at its next poll. Call it after the change is committed. One `PUBLISH`, under the
    /// store's deadline.
    ///
    /// ```no_run
    /// # async fn demo(redis: rebuff_redis::RedisStore, cache: rebuff_store::KeyCacheHandle) {
    /// // ... the key is revoked in the database, then:
    /// cache.invalidate(); // this instance
    /// if let Err(e) = redis.announce_key_change().await {
    ///     // The others still see it within their cache's bound.
    ///     tracing::warn!(error = %e, "revocation not announced");
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when Redis is down or does not answer in time. The change
    /// itself is not undone: the other instances' polling still sees it within its bound.
    pub async fn announce_key_change(&self) -> Result<(), StoreError> {
        let channel = self.key_changes_channel();
        let channel = channel.as_str();
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        // Sent twice at worst (a dropped connection is retried once): emptying a cache twice
        // is harmless.
        self.run(deadline, move |mut conn| async move {
            redis::cmd("PUBLISH").arg(channel).arg("changed").query_async::<i64>(&mut conn).await
        })
        .await
        .map(|_receivers| ())
    }

    /// Empties `cache` whenever an instance announces a key change on this store's channel
    /// ([`announce_key_change`](RedisStore::announce_key_change)), on a connection of its own
    /// (a subscribed connection carries nothing else). Runs until the cache is dropped
    /// (checked every few seconds) or the runtime stops. It empties the cache when it has
    /// subscribed (a change announced before was not heard) and when the connection drops,
    /// then subscribes again a second later; meanwhile the cache's polling bounds how long a
    /// change can go unseen.
    pub fn listen_key_changes(&self, cache: KeyCacheHandle) -> tokio::task::JoinHandle<()> {
        let client = self.inner.client.clone();
        let (channel, timeout, url) =
            (self.key_changes_channel(), self.inner.timeout, self.inner.url.clone());
        tokio::spawn(async move {
            loop {
                let subscribed = tokio::time::timeout(timeout, async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                })
                .await;
                match subscribed {
                    Ok(Ok(pubsub)) => {
                        cache.invalidate();
                        let mut messages = pubsub.into_on_message();
                        loop {
                            match tokio::time::timeout(ORPHAN_CHECK, messages.next()).await {
                                Ok(Some(_)) => cache.invalidate(),
                                Ok(None) => {
                                    tracing::debug!(%url, "key-change listener: connection lost");
                                    break;
                                }
                                Err(_) if cache.is_orphaned() => return,
                                Err(_) => {}
                            }
                        }
                    }
                    Ok(Err(e)) => tracing::debug!(%url, error = %e, "key-change listener: cannot subscribe"),
                    Err(_) => tracing::debug!(%url, "key-change listener: no answer to SUBSCRIBE"),
                }
                if cache.is_orphaned() {
                    return;
                }
                cache.invalidate();
                tokio::time::sleep(RESUBSCRIBE_DELAY).await;
            }
        })
    }
}
