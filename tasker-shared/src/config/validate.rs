use super::model::TaskerConfig;

/// Range checks that serde cannot express. `origin(key)` says where a key's value came
/// from, so each message can name it.
pub(super) fn validate(
    c: &TaskerConfig,
    origin: impl Fn(&str) -> String,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, key: &str, rule: &str, shown: String| {
        if !ok {
            problems.push(format!("{key}: {rule}, got {shown}{}", origin(key)));
        }
    };
    check(
        (1..=1000).contains(&c.database.max_connections),
        "database.max_connections",
        "must be between 1 and 1000",
        c.database.max_connections.to_string(),
    );
    check(
        c.database.acquire_timeout_ms >= 100,
        "database.acquire_timeout_ms",
        "must be at least 100",
        c.database.acquire_timeout_ms.to_string(),
    );
    check(
        c.events.poll_interval_ms >= 10,
        "events.poll_interval_ms",
        "must be at least 10",
        c.events.poll_interval_ms.to_string(),
    );
    check(
        ["pretty", "json"].contains(&c.logging.format.as_str()),
        "logging.format",
        "must be pretty or json",
        format!("{:?}", c.logging.format),
    );
    let o = &c.orchestration;
    check(
        (1..=1000).contains(&o.result_batch_size),
        "orchestration.result_batch_size",
        "must be between 1 and 1000",
        o.result_batch_size.to_string(),
    );
    check(
        (1..=16).contains(&o.result_processors),
        "orchestration.result_processors",
        "must be between 1 and 16",
        o.result_processors.to_string(),
    );
    check(
        (1..=86_400).contains(&o.visibility_timeout_seconds),
        "orchestration.visibility_timeout_seconds",
        "must be between 1 and 86400",
        o.visibility_timeout_seconds.to_string(),
    );
    check(
        o.readiness_sweep_interval_ms >= 10,
        "orchestration.readiness_sweep_interval_ms",
        "must be at least 10",
        o.readiness_sweep_interval_ms.to_string(),
    );
    let r = &o.retention;
    check(
        r.max_age().is_ok(),
        "orchestration.retention.max_age",
        "must be a duration such as 30d, 12h or 90m",
        format!("{:?}", r.max_age),
    );
    check(
        r.interval_ms >= 10,
        "orchestration.retention.interval_ms",
        "must be at least 10",
        r.interval_ms.to_string(),
    );
    check(
        (1..=100_000).contains(&r.batch_size),
        "orchestration.retention.batch_size",
        "must be between 1 and 100000",
        r.batch_size.to_string(),
    );
    check(
        o.staleness.interval_ms >= 10,
        "orchestration.staleness.interval_ms",
        "must be at least 10",
        o.staleness.interval_ms.to_string(),
    );
    check(
        o.backpressure.queue_depth_threshold >= 1,
        "orchestration.backpressure.queue_depth_threshold",
        "must be at least 1",
        o.backpressure.queue_depth_threshold.to_string(),
    );
    let w = &c.web;
    check(
        w.request_timeout_ms >= 100,
        "web.request_timeout_ms",
        "must be at least 100",
        w.request_timeout_ms.to_string(),
    );
    check(
        (1024..=1024 * 1024 * 1024).contains(&w.body_limit_bytes),
        "web.body_limit_bytes",
        "must be between 1024 and 1073741824",
        w.body_limit_bytes.to_string(),
    );
    for (i, key) in w.auth.api_keys.iter().enumerate() {
        check(
            key.key.len() >= 16,
            &format!("web.auth.api_keys[{i}].key"),
            "must be at least 16 characters",
            "a shorter key".into(),
        );
        for p in &key.permissions {
            if let Err(e) = crate::auth::validate_permission(p) {
                check(
                    false,
                    &format!("web.auth.api_keys[{i}].permissions"),
                    &e,
                    format!("{p:?}"),
                );
            }
        }
    }
    let k = &c.worker;
    check(
        (1..=10_000).contains(&k.max_concurrent_steps),
        "worker.max_concurrent_steps",
        "must be between 1 and 10000",
        k.max_concurrent_steps.to_string(),
    );
    check(
        (1..=86_400).contains(&k.visibility_timeout_seconds),
        "worker.visibility_timeout_seconds",
        "must be between 1 and 86400",
        k.visibility_timeout_seconds.to_string(),
    );
    check(
        k.default_step_timeout_seconds >= 1,
        "worker.default_step_timeout_seconds",
        "must be at least 1",
        k.default_step_timeout_seconds.to_string(),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
