//! Orchestration metrics, through the `metrics` facade; `tasker-server` installs a
//! Prometheus recorder and serves it on `/metrics`.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// Tasks created.
pub const TASKS_REQUESTED: &str = "tasker_tasks_requests_total";
/// Tasks that reached `complete`.
pub const TASKS_COMPLETED: &str = "tasker_tasks_completions_total";
/// Tasks that were blocked by failures or given up on.
pub const TASKS_FAILED: &str = "tasker_tasks_failures_total";
/// Steps put on a worker queue.
pub const STEPS_ENQUEUED: &str = "tasker_steps_enqueued_total";
/// Step results processed.
pub const RESULTS_PROCESSED: &str = "tasker_step_results_processed_total";
/// Time to create a task (one transaction).
pub const TASK_INITIALIZATION: &str = "tasker_task_initialization_duration_seconds";
/// Time to process one step result (one transaction).
pub const RESULT_PROCESSING: &str = "tasker_step_result_processing_duration_seconds";
/// Rows the retention job deleted, by `kind` (`tasks`, `archived_messages`).
pub const RETENTION_PURGED: &str = "tasker_retention_purged_total";
/// Messages in a queue, sampled when `/metrics` is scraped.
pub const QUEUE_DEPTH: &str = "tasker_queue_depth";

pub(crate) fn task_requested(namespace: &str, elapsed: Duration) {
    counter!(TASKS_REQUESTED, "namespace" => namespace.to_string()).increment(1);
    histogram!(TASK_INITIALIZATION).record(elapsed.as_secs_f64());
}

pub(crate) fn task_completed() {
    counter!(TASKS_COMPLETED).increment(1);
}

pub(crate) fn task_failed(state: &'static str) {
    counter!(TASKS_FAILED, "state" => state).increment(1);
}

pub(crate) fn steps_enqueued(namespace: &str, count: usize) {
    counter!(STEPS_ENQUEUED, "namespace" => namespace.to_string()).increment(count as u64);
}

pub(crate) fn result_processed(outcome: &'static str, elapsed: Duration) {
    counter!(RESULTS_PROCESSED, "outcome" => outcome).increment(1);
    histogram!(RESULT_PROCESSING).record(elapsed.as_secs_f64());
}

pub(crate) fn purged(report: &tasker_shared::database::retention::PurgeReport) {
    counter!(RETENTION_PURGED, "kind" => "tasks").increment(report.tasks);
    counter!(RETENTION_PURGED, "kind" => "archived_messages").increment(report.archived_messages);
}

pub(crate) fn queue_depth(queue: &str, depth: i64) {
    gauge!(QUEUE_DEPTH, "queue" => queue.to_string()).set(depth as f64);
}

/// Installs the process's Prometheus recorder; buckets from 1 ms to 10 s.
pub fn install_prometheus() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install_recorder()
}
