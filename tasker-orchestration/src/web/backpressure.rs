//! Backpressure: task creation answers 503 with `Retry-After` while the namespace's
//! queue is deeper than `orchestration.backpressure.queue_depth_threshold`.
//!
//! Depths are sampled lazily, at most once a second per queue, so the check costs
//! nothing when nobody creates tasks and one query per second when many do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use tasker_shared::database;

const MAX_AGE: Duration = Duration::from_secs(1);

/// Recently sampled queue depths.
#[derive(Debug, Default)]
pub struct QueueDepths {
    samples: Mutex<HashMap<String, (Instant, i64)>>,
}

impl QueueDepths {
    /// The depth of `queue`, at most a second old.
    pub async fn depth(&self, pool: &PgPool, queue: &str) -> Result<i64, database::Error> {
        if let Ok(samples) = self.samples.lock()
            && let Some((at, depth)) = samples.get(queue)
            && at.elapsed() < MAX_AGE
        {
            return Ok(*depth);
        }
        let depth = database::queue_depth(pool, queue).await?.unwrap_or(0);
        if let Ok(mut samples) = self.samples.lock() {
            samples.insert(queue.to_string(), (Instant::now(), depth));
        }
        Ok(depth)
    }
}
