//! What the worker is doing right now, for health checks.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Live counters of one worker process.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    running: AtomicBool,
    in_flight: AtomicI64,
    claimed: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatusSnapshot {
    /// Whether the claim loop runs (false before start and during shutdown).
    pub running: bool,
    /// Handlers running now.
    pub in_flight: i64,
    /// Steps claimed since start.
    pub claimed: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed.
    pub failed: u64,
}

impl WorkerStatus {
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::SeqCst);
    }

    pub(crate) fn claimed(&self) {
        self.claimed.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, success: Option<bool>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        match success {
            Some(true) => self.succeeded.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.failed.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatusSnapshot {
        StatusSnapshot {
            running: self.running.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            claimed: self.claimed.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}
