//! Rate-limit decisions per second: the in-memory store against Redis (one `EVALSHA` each),
//! one at a time and 64 in flight. Needs Redis at `REBUFF_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`); without it only the in-memory figures are measured.
//!
//! ```sh
//! CARGO_TARGET_DIR=/root/.cache/rebuff-target cargo bench -p rebuff-redis --bench ratelimit
//! ```

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rebuff_redis::RedisStore;
use rebuff_store::memory::MemoryStore;
use rebuff_store::ratelimit::now_nanos;
use rebuff_store::{Quota, RateLimitStore};

/// Never refuses during the benchmark, so every decision writes.
const QUOTA: Quota = Quota { limit: 1_000_000_000, period: Duration::from_secs(1) };
const IN_FLIGHT: usize = 64;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let url = std::env::var("REBUFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let redis = runtime.block_on(RedisStore::builder(url).prefix("rebuff-bench:").connect());
    let mut stores: Vec<(&str, Arc<dyn RateLimitStore>)> = vec![("memory", Arc::new(MemoryStore::new()))];
    match redis {
        Ok(store) => stores.push(("redis", Arc::new(store))),
        Err(e) => eprintln!("no Redis ({e}): measuring the in-memory store only"),
    }
    let mut group = c.benchmark_group("rate_limit_check");
    for (name, store) in &stores {
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("sequential", name), |b| {
            b.to_async(&runtime).iter(|| async { store.check("org:bench", QUOTA, now_nanos()).await })
        });
        group.throughput(Throughput::Elements(IN_FLIGHT as u64));
        group.bench_function(BenchmarkId::new("64_in_flight", name), |b| {
            b.to_async(&runtime).iter(|| {
                let store = store.clone();
                async move {
                    let tasks: Vec<_> = (0..IN_FLIGHT)
                        .map(|i| {
                            let store = store.clone();
                            tokio::spawn(async move {
                                store.check(&format!("org:bench{}", i % 8), QUOTA, now_nanos()).await
                            })
                        })
                        .collect();
                    for task in tasks {
                        let _ = task.await;
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
