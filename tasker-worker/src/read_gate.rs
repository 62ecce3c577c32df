//! The gate between claiming and giving steps back at shutdown.
//!
//! A step given back is made visible on its queue again. If a claim were still running
//! at that moment (it started just before shutdown) it could take the step straight
//! back, and the worker would give it back a second time. So shutdown first closes the
//! gate, which waits for the claims in flight, and only then starts the grace period
//! after which running handlers are stopped and their steps given back.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::RwLock;

/// Open until [`close`](Self::close); reads run concurrently while it is open.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadGate {
    closed: Arc<RwLock<bool>>,
}

impl ReadGate {
    /// Runs `read` if the gate is open, holding it open until `read` finishes; `None`
    /// once it is closed.
    pub(crate) async fn read<T>(&self, read: impl Future<Output = T>) -> Option<T> {
        let closed = self.closed.read().await;
        if *closed {
            return None;
        }
        Some(read.await)
    }

    /// Closes the gate, after the reads in flight have finished.
    pub(crate) async fn close(&self) {
        *self.closed.write().await = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn close_waits_for_the_read_in_flight_and_later_reads_do_nothing() {
        let gate = ReadGate::default();
        let (finish, finished) = oneshot::channel::<()>();
        let (started, is_started) = oneshot::channel::<()>();
        let reader = tokio::spawn({
            let gate = gate.clone();
            async move {
                gate.read(async move {
                    let _ = started.send(());
                    let _ = finished.await;
                    7
                })
                .await
            }
        });
        is_started.await.unwrap();
        let closing = tokio::spawn({
            let gate = gate.clone();
            async move { gate.close().await }
        });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(!closing.is_finished(), "closed while a read was running");

        finish.send(()).unwrap();
        assert_eq!(reader.await.unwrap(), Some(7));
        closing.await.unwrap();
        let mut ran = false;
        assert_eq!(gate.read(async { ran = true }).await, None);
        assert!(!ran, "a read ran after the gate closed");
    }
}
