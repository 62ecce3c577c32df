//! One LISTEN connection per process, shared by every consumer in it.
//!
//! The listener subscribes to `pgmq_message_ready.<namespace>` for each namespace it is
//! given and turns notifications into [`QueueEvent`]s on a broadcast channel. When the
//! connection drops it reconnects with exponential backoff and then emits
//! [`QueueEvent::Reconnected`], because notifications sent in between are lost: consumers
//! must poll their queues when they see it (and on a timer anyway).
//!
//! A process may also listen on a direct channel of its own
//! ([`QueueListener::start_with_direct`]): a producer that leased a message to this
//! process names it there, and the listener emits [`QueueEvent::Directed`].

use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::names::{CHANNEL_PREFIX, channel_for_namespace, validate_namespace};

/// Something the listener saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    /// A message was committed to a queue of `namespace`.
    MessageReady {
        /// The namespace whose channel carried the notification.
        namespace: String,
        /// The queue the message went to.
        queue: String,
        /// The message id, when the payload carried one.
        msg_id: Option<i64>,
        /// Milliseconds until the message becomes visible (0 for immediate delivery).
        delay_ms: u64,
    },
    /// A message on `queue` was leased to this process and named on its direct channel:
    /// only this process should take it (other readers do not see it until its lease
    /// ends).
    Directed {
        /// The queue the message is on.
        queue: String,
        /// The message id.
        msg_id: i64,
    },
    /// The LISTEN connection was (re)established. Notifications may have been missed
    /// while it was down, so consumers should read their queues now.
    Reconnected,
}

#[derive(Deserialize)]
struct DirectedPayload {
    queue: String,
    msg_id: i64,
}

#[derive(Deserialize)]
struct Payload {
    queue: String,
    #[serde(default)]
    msg_id: Option<i64>,
    #[serde(default)]
    delay_ms: u64,
}

/// Handle to the process-wide listener task.
#[derive(Debug, Clone)]
pub struct QueueListener {
    events: broadcast::Sender<QueueEvent>,
}

impl QueueListener {
    /// Starts listening on the channels of `namespaces` until `shutdown` is cancelled.
    ///
    /// The first connection is made before this returns, so an unreachable database is
    /// reported at once; later connection losses are retried with backoff.
    pub async fn start(
        pool: PgPool,
        namespaces: Vec<String>,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>)> {
        Self::start_with_direct(pool, namespaces, None, shutdown).await
    }

    /// Like [`start`](Self::start), also listening on `direct`, a channel of this
    /// process's own, whose payloads `{"queue", "msg_id"}` become
    /// [`QueueEvent::Directed`].
    pub async fn start_with_direct(
        pool: PgPool,
        namespaces: Vec<String>,
        direct: Option<String>,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>)> {
        for ns in &namespaces {
            validate_namespace(ns)?;
        }
        let mut channels: Vec<String> = namespaces
            .iter()
            .map(|ns| channel_for_namespace(ns))
            .collect();
        channels.extend(direct.iter().cloned());
        let listener = connect(&pool, &channels).await?;
        let (events, _) = broadcast::channel(1024);
        let task = tokio::spawn(run(
            pool,
            channels,
            direct,
            listener,
            events.clone(),
            shutdown,
        ));
        Ok((Self { events }, task))
    }

    /// A new receiver of events. A receiver that falls behind gets `Lagged`, which a
    /// consumer should treat like [`QueueEvent::Reconnected`]: read the queues now.
    pub fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.events.subscribe()
    }
}

async fn connect(pool: &PgPool, channels: &[String]) -> Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
    listener.listen_all(refs).await?;
    Ok(listener)
}

async fn run(
    pool: PgPool,
    channels: Vec<String>,
    direct: Option<String>,
    mut listener: PgListener,
    events: broadcast::Sender<QueueEvent>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.try_recv() => r,
        };
        match received {
            Ok(Some(notification)) => {
                backoff = Duration::from_millis(100);
                let event = if direct.as_deref() == Some(notification.channel()) {
                    parse_directed(notification.payload())
                } else {
                    parse(notification.channel(), notification.payload())
                };
                if let Some(event) = event {
                    // No receivers is fine: nobody is waiting right now.
                    let _ = events.send(event);
                }
            }
            Ok(None) => {
                // The connection dropped and sqlx re-established it (and re-ran LISTEN).
                tracing::warn!("LISTEN connection was lost and re-established");
                let _ = events.send(QueueEvent::Reconnected);
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "LISTEN connection failed");
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    match connect(&pool, &channels).await {
                        Ok(fresh) => {
                            listener = fresh;
                            tracing::info!("LISTEN connection re-established");
                            let _ = events.send(QueueEvent::Reconnected);
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "LISTEN reconnect failed");
                        }
                    }
                }
            }
        }
    }
}

fn parse_directed(payload: &str) -> Option<QueueEvent> {
    match serde_json::from_str::<DirectedPayload>(payload) {
        Ok(p) => Some(QueueEvent::Directed {
            queue: p.queue,
            msg_id: p.msg_id,
        }),
        Err(error) => {
            // Its message comes back to every reader when its lease ends.
            tracing::warn!(%error, payload, "directed notification not understood; ignored");
            None
        }
    }
}

fn parse(channel: &str, payload: &str) -> Option<QueueEvent> {
    let namespace = channel
        .strip_prefix(CHANNEL_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))?
        .to_string();
    match serde_json::from_str::<Payload>(payload) {
        Ok(p) => Some(QueueEvent::MessageReady {
            namespace,
            queue: p.queue,
            msg_id: p.msg_id,
            delay_ms: p.delay_ms,
        }),
        Err(error) => {
            tracing::debug!(%error, channel, "notification payload not understood; treating it as a wake-up");
            Some(QueueEvent::MessageReady {
                queue: String::new(),
                namespace,
                msg_id: None,
                delay_ms: 0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_payloads() {
        let e = parse(
            "pgmq_message_ready.payments",
            r#"{"queue":"worker_payments_queue","msg_id":7,"delay_ms":250}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            QueueEvent::MessageReady {
                namespace: "payments".into(),
                queue: "worker_payments_queue".into(),
                msg_id: Some(7),
                delay_ms: 250
            }
        );
        assert!(parse("other_channel", "{}").is_none());
        assert_eq!(
            parse_directed(r#"{"queue":"worker_payments_queue","msg_id":9}"#),
            Some(QueueEvent::Directed {
                queue: "worker_payments_queue".into(),
                msg_id: 9
            })
        );
        assert_eq!(parse_directed(r#"{"queue":"q"}"#), None);
        // A payload we do not understand is still a wake-up.
        assert!(matches!(
            parse("pgmq_message_ready.x", "garbage"),
            Some(QueueEvent::MessageReady { msg_id: None, .. })
        ));
    }
}
