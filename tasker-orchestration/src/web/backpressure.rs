//! Backpressure: task creation answers 503 with `Retry-After` while the namespace's
//! queue is deeper than `orchestration.backpressure.queue_depth_threshold`.
//!
//! Depths are sampled lazily, at most once a second per queue, so the check costs
//! nothing when nobody creates tasks and one query per second when many do. One request
//! refreshes an expired sample while the others go on with the previous one: when every
//! concurrent request refreshed it, a stream of creations paid nine queries a second.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use sqlx::PgPool;

use tasker_shared::database;

const MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    depth: i64,
    /// A request is fetching a newer one.
    refreshing: bool,
}

/// Recently sampled queue depths.
#[derive(Debug, Default)]
pub struct QueueDepths {
    samples: Mutex<HashMap<String, Sample>>,
}

impl QueueDepths {
    /// The depth of `queue`, at most about a second old.
    pub async fn depth(&self, pool: &PgPool, queue: &str) -> Result<i64, database::Error> {
        self.sampled(queue, || async {
            Ok(database::queue_depth(pool, queue).await?.unwrap_or(0))
        })
        .await
    }

    /// The cached depth while it is fresh or another caller is refreshing it; else
    /// `fetch`'s.
    async fn sampled<F, Fut>(&self, queue: &str, fetch: F) -> Result<i64, database::Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, database::Error>>,
    {
        if let Ok(mut samples) = self.samples.lock()
            && let Some(sample) = samples.get_mut(queue)
        {
            if sample.at.elapsed() < MAX_AGE || sample.refreshing {
                return Ok(sample.depth);
            }
            sample.refreshing = true;
        }
        let fetched = fetch().await;
        if let Ok(mut samples) = self.samples.lock() {
            match &fetched {
                Ok(depth) => {
                    samples.insert(
                        queue.to_string(),
                        Sample {
                            at: Instant::now(),
                            depth: *depth,
                            refreshing: false,
                        },
                    );
                }
                // The next caller tries again.
                Err(_) => {
                    if let Some(sample) = samples.get_mut(queue) {
                        sample.refreshing = false;
                    }
                }
            }
        }
        fetched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_refresh_of_an_expired_sample() {
        let depths = Arc::new(QueueDepths::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let ask = |depth: i64| {
            let (depths, fetches) = (depths.clone(), fetches.clone());
            async move {
                depths
                    .sampled("q", || async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        Ok(depth)
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(ask(7).await, 7);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Fresh: nobody fetches.
        assert_eq!(ask(8).await, 7);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Expired: of twenty concurrent requests one fetches, the others keep the old
        // depth meanwhile.
        tokio::time::advance(MAX_AGE + Duration::from_millis(1)).await;
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..20 {
            requests.spawn(ask(9));
        }
        let seen = requests.join_all().await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert_eq!(seen.iter().filter(|&&d| d == 9).count(), 1);
        assert_eq!(seen.iter().filter(|&&d| d == 7).count(), 19);
        assert_eq!(ask(10).await, 9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_lets_the_next_request_try_again() {
        let depths = QueueDepths::default();
        depths.sampled("q", || async { Ok(3) }).await.unwrap();
        tokio::time::advance(MAX_AGE + Duration::from_millis(1)).await;
        let failed = depths
            .sampled("q", || async {
                Err(database::Error::Corrupt("database unavailable".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(depths.sampled("q", || async { Ok(4) }).await.unwrap(), 4);
    }
}
