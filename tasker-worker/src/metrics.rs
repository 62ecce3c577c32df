//! Worker metrics, through the `metrics` facade. A binary that wants them exported
//! calls [`install_prometheus`] once and serves the handle's `render()` output.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// Steps claimed.
pub const STEPS_CLAIMED: &str = "tasker_steps_claimed_total";
/// Attempts that succeeded.
pub const STEPS_SUCCEEDED: &str = "tasker_steps_successes_total";
/// Attempts that failed (including timeouts and panics).
pub const STEPS_FAILED: &str = "tasker_steps_failures_total";
/// Handlers running now.
pub const STEPS_IN_FLIGHT: &str = "tasker_worker_steps_in_flight";
/// Handler latency.
pub const STEP_DURATION: &str = "tasker_step_execution_duration_seconds";

pub(crate) fn claimed(namespace: &str) {
    counter!(STEPS_CLAIMED, "namespace" => namespace.to_string()).increment(1);
    gauge!(STEPS_IN_FLIGHT).increment(1.0);
}

pub(crate) fn finished(namespace: &str, success: Option<bool>, elapsed: Duration) {
    gauge!(STEPS_IN_FLIGHT).decrement(1.0);
    let Some(success) = success else { return };
    let name = if success {
        STEPS_SUCCEEDED
    } else {
        STEPS_FAILED
    };
    counter!(name, "namespace" => namespace.to_string()).increment(1);
    histogram!(STEP_DURATION, "namespace" => namespace.to_string()).record(elapsed.as_secs_f64());
}

/// Installs a Prometheus recorder for this process and returns its handle. Histogram
/// buckets run from 1 ms to 60 s.
pub fn install_prometheus() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0,
        ])?
        .install_recorder()
}
