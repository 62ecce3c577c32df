//! Range checks of a loaded configuration that serde cannot express, one function per
//! section; each problem names the key, the rule, the value and where the value came from.

use super::model::{
    ApiKeyConfig, DatabaseConfig, EventsConfig, LoggingConfig, OrchestrationSettings,
    RetentionSettings, TaskerConfig, WebConfig, WorkerSettings,
};

/// Range checks that serde cannot express. `origin(key)` says where a key's value came
/// from, so each message can name it. Problems come in the order of the sections.
pub(super) fn validate(
    c: &TaskerConfig,
    origin: impl Fn(&str) -> String,
) -> Result<(), Vec<String>> {
    let mut problems = Problems {
        origin: &origin,
        found: Vec::new(),
    };
    database(&mut problems, &c.database);
    events(&mut problems, &c.events);
    logging(&mut problems, &c.logging);
    orchestration(&mut problems, &c.orchestration);
    web(&mut problems, &c.web);
    worker(&mut problems, &c.worker);
    if problems.found.is_empty() {
        Ok(())
    } else {
        Err(problems.found)
    }
}

/// The problems found so far, and where each key's value came from.
struct Problems<'a> {
    origin: &'a dyn Fn(&str) -> String,
    found: Vec<String>,
}

impl Problems<'_> {
    /// Records `key: rule, got shown (origin)` unless `ok`.
    fn check(&mut self, ok: bool, key: &str, rule: &str, shown: String) {
        if !ok {
            let origin = (self.origin)(key);
            self.found
                .push(format!("{key}: {rule}, got {shown}{origin}"));
        }
    }
}

fn database(p: &mut Problems<'_>, d: &DatabaseConfig) {
    p.check(
        (1..=1000).contains(&d.max_connections),
        "database.max_connections",
        "must be between 1 and 1000",
        d.max_connections.to_string(),
    );
    p.check(
        d.acquire_timeout_ms >= 100,
        "database.acquire_timeout_ms",
        "must be at least 100",
        d.acquire_timeout_ms.to_string(),
    );
}

fn events(p: &mut Problems<'_>, e: &EventsConfig) {
    p.check(
        e.poll_interval_ms >= 10,
        "events.poll_interval_ms",
        "must be at least 10",
        e.poll_interval_ms.to_string(),
    );
}

fn logging(p: &mut Problems<'_>, l: &LoggingConfig) {
    p.check(
        ["pretty", "json"].contains(&l.format.as_str()),
        "logging.format",
        "must be pretty or json",
        format!("{:?}", l.format),
    );
}

fn orchestration(p: &mut Problems<'_>, o: &OrchestrationSettings) {
    p.check(
        (1..=1000).contains(&o.result_batch_size),
        "orchestration.result_batch_size",
        "must be between 1 and 1000",
        o.result_batch_size.to_string(),
    );
    p.check(
        (1..=16).contains(&o.result_processors),
        "orchestration.result_processors",
        "must be between 1 and 16",
        o.result_processors.to_string(),
    );
    p.check(
        (1..=86_400).contains(&o.visibility_timeout_seconds),
        "orchestration.visibility_timeout_seconds",
        "must be between 1 and 86400",
        o.visibility_timeout_seconds.to_string(),
    );
    p.check(
        o.readiness_sweep_interval_ms >= 10,
        "orchestration.readiness_sweep_interval_ms",
        "must be at least 10",
        o.readiness_sweep_interval_ms.to_string(),
    );
    retention(p, &o.retention);
    p.check(
        o.staleness.interval_ms >= 10,
        "orchestration.staleness.interval_ms",
        "must be at least 10",
        o.staleness.interval_ms.to_string(),
    );
    p.check(
        o.backpressure.queue_depth_threshold >= 1,
        "orchestration.backpressure.queue_depth_threshold",
        "must be at least 1",
        o.backpressure.queue_depth_threshold.to_string(),
    );
}

fn retention(p: &mut Problems<'_>, r: &RetentionSettings) {
    p.check(
        r.max_age().is_ok(),
        "orchestration.retention.max_age",
        "must be a duration such as 30d, 12h or 90m",
        format!("{:?}", r.max_age),
    );
    p.check(
        r.interval_ms >= 10,
        "orchestration.retention.interval_ms",
        "must be at least 10",
        r.interval_ms.to_string(),
    );
    p.check(
        (1..=100_000).contains(&r.batch_size),
        "orchestration.retention.batch_size",
        "must be between 1 and 100000",
        r.batch_size.to_string(),
    );
}

fn web(p: &mut Problems<'_>, w: &WebConfig) {
    p.check(
        w.request_timeout_ms >= 100,
        "web.request_timeout_ms",
        "must be at least 100",
        w.request_timeout_ms.to_string(),
    );
    p.check(
        (1024..=1024 * 1024 * 1024).contains(&w.body_limit_bytes),
        "web.body_limit_bytes",
        "must be between 1024 and 1073741824",
        w.body_limit_bytes.to_string(),
    );
    for (i, key) in w.auth.api_keys.iter().enumerate() {
        api_key(p, i, key);
    }
}

/// API key `i`: long enough, and only known permissions. The key itself is never shown.
fn api_key(p: &mut Problems<'_>, i: usize, key: &ApiKeyConfig) {
    p.check(
        key.key.len() >= 16,
        &format!("web.auth.api_keys[{i}].key"),
        "must be at least 16 characters",
        "a shorter key".into(),
    );
    for permission in &key.permissions {
        if let Err(e) = crate::auth::validate_permission(permission) {
            p.check(
                false,
                &format!("web.auth.api_keys[{i}].permissions"),
                &e,
                format!("{permission:?}"),
            );
        }
    }
}

fn worker(p: &mut Problems<'_>, k: &WorkerSettings) {
    p.check(
        (1..=10_000).contains(&k.max_concurrent_steps),
        "worker.max_concurrent_steps",
        "must be between 1 and 10000",
        k.max_concurrent_steps.to_string(),
    );
    p.check(
        (1..=86_400).contains(&k.visibility_timeout_seconds),
        "worker.visibility_timeout_seconds",
        "must be between 1 and 86400",
        k.visibility_timeout_seconds.to_string(),
    );
    p.check(
        k.default_step_timeout_seconds >= 1,
        "worker.default_step_timeout_seconds",
        "must be at least 1",
        k.default_step_timeout_seconds.to_string(),
    );
}
