//! Tests of the consumer loop and its bookkeeping: no read after shutdown begins,
//! delayed wake-ups, directed ids and due queues.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::directed::Directed;
use super::schedule::{DelayedWakes, Due, Wake};
use super::{ConsumerConfig, DirectedIds, run_with};
use crate::listener::QueueEvent;
use crate::names::QueueName;

fn ready(queue: &str, delay_ms: u64) -> Result<QueueEvent, broadcast::error::RecvError> {
    Ok(QueueEvent::MessageReady {
        namespace: "ns".to_string(),
        queue: queue.to_string(),
        msg_id: Some(1),
        delay_ms,
    })
}

/// Shutdown that begins while a handler runs (here, the handler begins it) stops the
/// reads: the handler's finishing, ready at the same moment, starts no other read.
/// Before, an unbiased `select!` picked either, and a worker shutting down could
/// claim again the step it had just given back.
#[tokio::test]
async fn no_read_after_shutdown_begins() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for _ in 0..50 {
        let fetches = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let config = ConsumerConfig {
            queues: vec![QueueName::new("q").unwrap()],
            visibility_timeout_seconds: 30,
            max_in_flight: 1,
            batch_size: 1,
            poll_interval: Some(Duration::from_secs(3600)),
            probe: None,
        };
        let counted = fetches.clone();
        let fetch = move |_queue: QueueName, _qty: i32, _directed: DirectedIds| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>((vec![()], 1)) }
        };
        let stop = shutdown.clone();
        let handler = move |_queue: QueueName, _item: ()| {
            let stop = stop.clone();
            async move { stop.cancel() }
        };
        tokio::time::timeout(
            Duration::from_secs(10),
            run_with(fetch, None, config, shutdown, handler),
        )
        .await
        .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn every_delayed_wake_is_kept_in_deadline_order() {
    let queues = [QueueName::new("q").unwrap()];
    let mut wakes = DelayedWakes::default();
    assert_eq!(wakes.note(&queues, ready("q", 300)), Wake::Later);
    assert_eq!(wakes.note(&queues, ready("q", 100)), Wake::Later);
    assert_eq!(wakes.note(&queues, ready("q", 200)), Wake::Later);
    assert_eq!(wakes.note(&queues, ready("other", 50)), Wake::Later);
    assert_eq!(wakes.note(&queues, ready("q", 0)), Wake::Queue(0));
    let start = Instant::now();
    let mut fired = Vec::new();
    while let Some(at) = wakes.next() {
        tokio::time::sleep_until(at).await;
        fired.push((Instant::now() - start).as_millis());
        assert_eq!(wakes.pop_due(Instant::now()), BTreeSet::from([0]));
    }
    assert_eq!(fired, [100, 200, 300]);
}

#[test]
fn wakes_name_the_queues_to_read() {
    let queues = [QueueName::new("a").unwrap(), QueueName::new("b").unwrap()];
    let mut wakes = DelayedWakes::default();
    assert_eq!(wakes.note(&queues, ready("b", 0)), Wake::Queue(1));
    assert_eq!(wakes.note(&queues, ready("", 0)), Wake::All);
    assert_eq!(wakes.note(&queues, ready("c", 0)), Wake::Later);
    assert_eq!(wakes.note(&queues, Ok(QueueEvent::Reconnected)), Wake::All);
    assert_eq!(
        Wake::Queue(0).or(Wake::Queue(1)),
        Wake::Queues(BTreeSet::from([0, 1]))
    );
    assert_eq!(Wake::Later.or(Wake::Queue(1)), Wake::Queue(1));
    assert_eq!(Wake::Queue(1).or(Wake::All), Wake::All);
}

#[test]
fn directed_ids_wait_by_queue_until_taken() {
    let queues = [QueueName::new("a").unwrap(), QueueName::new("b").unwrap()];
    let directed = |queue: &str, msg_id| {
        Ok(QueueEvent::Directed {
            queue: queue.to_string(),
            msg_id,
        })
    };
    let mut waiting = Directed::default();
    for (queue, id) in [("b", 7), ("b", 8), ("b", 7), ("c", 9), ("a", 1)] {
        waiting.note(&queues, &directed(queue, id));
    }
    waiting.note(&queues, &ready("b", 0));
    let mut wakes = DelayedWakes::default();
    // Directed messages are no reason to read their queue.
    assert_eq!(wakes.note(&queues, directed("b", 10)), Wake::Later);
    assert_eq!(
        (waiting.len(1), waiting.has(0), waiting.has(2)),
        (2, true, false)
    );
    // A queue's ids come out oldest first, no more than asked, each once.
    assert_eq!(waiting.take(1, 1), vec![7]);
    assert_eq!(waiting.take(1, 5), vec![8]);
    assert!(waiting.take(1, 5).is_empty());
    assert_eq!(waiting.take(0, 5), vec![1]);
    assert!(waiting.is_empty());
    // A reconnect (or falling behind) may have lost some: every queue must look.
    assert!(waiting.missed.is_empty());
    waiting.note(&queues, &Ok(QueueEvent::Reconnected));
    assert_eq!(waiting.missed, BTreeSet::from([0, 1]));
    // What a failed fetch was given comes back first, once, with its hint.
    waiting.missed.clear();
    waiting.note(&queues, &directed("a", 5));
    waiting.restore(
        0,
        DirectedIds {
            ids: vec![3, 5],
            missed: true,
        },
    );
    assert_eq!(waiting.take(0, 10), vec![3, 5]);
    assert_eq!(waiting.missed, BTreeSet::from([0]));
}

#[test]
fn due_reads_grow_and_never_shrink() {
    let mut due = Due::default();
    due.add(1);
    due.add(0);
    assert_eq!(due, Due::Some(BTreeSet::from([0, 1])));
    // A poll on top of named queues reads everything.
    due.merge(Due::Poll);
    assert_eq!(due, Due::All);
    let mut due = Due::default();
    due.merge(Due::Poll);
    assert_eq!(due, Due::Poll);
    due.add(1);
    assert_eq!(due, Due::All);
}
