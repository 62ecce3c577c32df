//! `tasker-bench`: measures Tasker with real processes on a real PostgreSQL, next to the
//! ceilings of the same machine measured in the same run. See docs/benchmarks.md.
//!
//! Run it through `scripts/bench.sh` (release build, durable PostgreSQL).

#![allow(clippy::unwrap_used)]

mod ceilings;
mod profile;
mod report;
mod ruby;
mod workload;

use std::time::Duration;

use serde_json::json;
use tasker_tests::{Cluster, ClusterOptions};

use report::Report;

#[tokio::main]
async fn main() {
    let runs: usize = env_or("BENCH_RUNS", 200);
    let throughput_secs: u64 = env_or("BENCH_THROUGHPUT_SECONDS", 20);
    let history: u64 = env_or("BENCH_HISTORY_TASKS", 100_000);
    let slots: u64 = env_or("BENCH_WORKER_SLOTS", 32);
    let mut report = Report::default();

    let templates = workload::write_templates();
    let cluster = Cluster::start_with(ClusterOptions {
        templates: templates.clone(),
        env: vec![
            ("TASKER_ENV".into(), "bench".into()),
            (
                "RUST_LOG".into(),
                "warn,tasker_orchestration::core=info,tasker_worker::runtime=info".into(),
            ),
            (
                "TASKER__WORKER__MAX_CONCURRENT_STEPS".into(),
                slots.to_string(),
            ),
            // The worker raises its own pool to at least its slots + 3.
            ("TASKER__DATABASE__MAX_CONNECTIONS".into(), "24".into()),
            (
                "TASKER__ORCHESTRATION__BACKPRESSURE__QUEUE_DEPTH_THRESHOLD".into(),
                "100000000".into(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let pool = cluster.db.pool.clone();
    let pids = (
        cluster.server.child.id().unwrap(),
        cluster.workers[0].child.id().unwrap(),
    );
    // Idle first: later phases leave statistics that idle backends flush up to 10 s late.
    let mut idle = 0.0;
    if wants("idle") {
        eprintln!("bench: cluster up; settling, then measuring idle load");
        // The migrations and the template registration just wrote to a fresh database,
        // and autovacuum's first pass over it (a transaction per table) may fall into
        // the window: one full run read 2.26 xact/s against 0.6-0.7 in every other.
        // Done here, that pass finds nothing to do; the window measures Tasker's
        // processes.
        sqlx::query("VACUUM ANALYZE")
            .execute(&pool)
            .await
            .expect("VACUUM ANALYZE the bench database");
        tokio::time::sleep(Duration::from_secs(12)).await;
        idle = workload::idle_rate(&pool, Duration::from_secs(10)).await;
        report.value("idle load", idle, "xact/s", "≤ 1");
        report.value("RSS server, idle", workload::rss_mb(pids.0), "MB", "≤ 40");
        report.value("RSS worker, idle", workload::rss_mb(pids.1), "MB", "≤ 25");
    }

    let mut c = ceilings::Ceilings::default();
    let mut floor_ms = 0.0;
    if wants("ceilings") {
        eprintln!("bench: ceilings");
        c = ceilings::measure(&pool).await;
        report.ceiling("single-statement commit p50", c.commit_ms, "ms");
        report.ceiling("NOTIFY round trip p50", c.notify_ms, "ms");
        report.ceiling("pgmq send+read+delete, batch 1", c.pgmq_batch1, "msg/s");
        report.ceiling("pgmq send+read+delete, batch 100", c.pgmq_batch100, "msg/s");
        floor_ms = 4.0 * 3.0 * c.commit_ms + 8.0 * c.notify_ms;
        report.ceiling("linear-4 floor (12 commits + 8 notifies)", floor_ms, "ms");
        // Let the ceiling connections' statistics reach pg_stat_database before counting.
        tokio::time::sleep(Duration::from_secs(11)).await;
    }

    let driver = workload::Driver::new(&cluster).await;
    // A fresh database plans its first queries with empty statistics, and connections
    // keep those plans until the tables are analyzed (autovacuum does it within a minute
    // or so of traffic). Measure the steady state: warm up, then analyze.
    eprintln!("bench: warm-up (50 tasks), then ANALYZE");
    driver.latencies("bench_linear", 50).await;
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    let mut linear_p50 = 0.0;
    let shapes: &[(&str, usize)] = if wants("latency") {
        eprintln!("bench: latency ({runs} runs per shape)");
        &[
            ("bench_linear", 4),
            ("bench_diamond", 4),
            ("bench_tree", 8),
            ("bench_mixed", 7),
        ]
    } else {
        &[]
    };
    for &(name, steps) in shapes {
        let lat = driver.latencies(name, runs).await;
        let (p50, p95, p99) = report::percentiles(&lat);
        if name == "bench_linear" {
            linear_p50 = p50;
        }
        report.value(
            &format!("{name} ({steps} steps) p50"),
            p50,
            "ms",
            if name == "bench_linear" {
                "≤ 20, ≤ 2× floor"
            } else {
                ""
            },
        );
        report.value(&format!("{name} p95"), p95, "ms", "");
        report.value(
            &format!("{name} p99"),
            p99,
            "ms",
            if name == "bench_linear" {
                "≤ 3× p50"
            } else {
                ""
            },
        );
    }
    if linear_p50 > 0.0 && floor_ms > 0.0 {
        report.value("linear-4 p50 / floor", linear_p50 / floor_ms, "×", "≤ 2");
    }

    if wants("work") {
        eprintln!("bench: database work per task");
        let work = workload::db_work(&driver, &pool, 100, idle).await;
        report.value(
            "committed transactions per linear-4 task",
            work.0,
            "xact",
            "≤ 20",
        );
        report.value(
            "write transactions per linear-4 task",
            work.1,
            "xact",
            "≤ 12",
        );
    }

    if wants("throughput") {
        eprintln!("bench: step throughput ({throughput_secs} s, 200 tasks in flight)");
        let profiling = profile::reset_statements(&pool).await;
        let cpu_before = profile::CpuSample::take(pids.0, pids.1);
        let (tasks_per_s, steps_per_s) = driver
            .throughput("bench_linear", 200, Duration::from_secs(throughput_secs))
            .await;
        // The throughput phase runs a 5 s warm-up before its window; count its steps too.
        let cpu = profile::CpuSample::take(pids.0, pids.1)
            .per_step_ms(&cpu_before, steps_per_s * (throughput_secs + 5) as f64);
        report.value("CPU per step: server", cpu.server, "ms", "");
        report.value("CPU per step: worker", cpu.worker, "ms", "");
        report.value("CPU per step: PostgreSQL", cpu.postgres, "ms", "");
        if profiling {
            eprintln!(
                "bench: statements by planning + execution time during the throughput phase:"
            );
            eprintln!("  {:>9} {:>9} {:>8}", "plan ms", "exec ms", "calls");
            for (plan, exec, calls, query) in profile::top_statements(&pool, 14).await {
                eprintln!("  {plan:>9.0} {exec:>9.0} {calls:>8}  {query}");
            }
        }
        report.value(
            "step throughput",
            steps_per_s,
            "steps/s",
            "≥ 2000, ≥ 2× pgmq batch 1",
        );
        report.value("task throughput", tasks_per_s, "tasks/s", "");
        // Without the ceilings phase there is no pgmq figure to divide by.
        if c.pgmq_batch1 > 0.0 {
            report.value(
                "step throughput / pgmq batch 1",
                steps_per_s / c.pgmq_batch1,
                "×",
                "≥ 2",
            );
        }
        report.value(
            "RSS server, after throughput",
            workload::rss_mb(pids.0),
            "MB",
            "flat",
        );
        report.value(
            "RSS worker, after throughput",
            workload::rss_mb(pids.1),
            "MB",
            "flat",
        );
    }

    if wants("creation") {
        // Accepting tasks, alone: the worker is stopped (SIGSTOP) so that running the
        // tasks does not compete for the two cores; they queue up and run afterwards.
        eprintln!("bench: task creation, worker paused");
        signal(pids.1, "STOP");
        let profiling = profile::reset_statements(&pool).await;
        let cpu_before = profile::CpuSample::take(pids.0, pids.1);
        let window = Duration::from_secs(10);
        let created = driver.creation_rate(8, window).await;
        let cpu = profile::CpuSample::take(pids.0, pids.1)
            .per_step_ms(&cpu_before, created * window.as_secs_f64());
        signal(pids.1, "CONT");
        report.value(
            "task creation (8 clients), worker paused",
            created,
            "tasks/s",
            "≥ 1000",
        );
        report.value("CPU per created task: server", cpu.server, "ms", "");
        report.value("CPU per created task: PostgreSQL", cpu.postgres, "ms", "");
        if profiling {
            eprintln!("bench: statements by planning + execution time during task creation:");
            eprintln!("  {:>9} {:>9} {:>8}", "plan ms", "exec ms", "calls");
            for (plan, exec, calls, query) in profile::top_statements(&pool, 14).await {
                eprintln!("  {plan:>9.0} {exec:>9.0} {calls:>8}  {query}");
            }
        }
        driver.drain(&pool).await;
        eprintln!("bench: task creation while the worker runs the tasks");
        let created = driver.creation_rate(8, window).await;
        report.value(
            "task creation (8 clients), worker running them",
            created,
            "tasks/s",
            "",
        );
        driver.drain(&pool).await;
    }

    if wants("scale") {
        eprintln!("bench: scale in the task (1000-step fan-out/fan-in)");
        let big = driver.latencies("bench_fanout_1000", 3).await;
        let small = driver.latencies("bench_linear", 20).await;
        let per_step_big = report::percentiles(&big).0 / 1002.0;
        let per_step_small = report::percentiles(&small).0 / 4.0;
        report.value("per-step cost, 1000-step task", per_step_big, "ms", "");
        report.value(
            "per-step cost, 1000-step / 4-step",
            per_step_big / per_step_small,
            "×",
            "≤ 2",
        );
    }

    if history > 0 && wants("history") {
        eprintln!("bench: scale in history ({history} completed tasks)");
        // Both sides after a vacuum: the earlier phases leave autovacuum work behind,
        // and the history is vacuumed after it is inserted.
        sqlx::query("VACUUM ANALYZE")
            .execute(&pool)
            .await
            .expect("VACUUM ANALYZE the bench database");
        let before = report::percentiles(&driver.latencies("bench_linear", runs / 2).await).0;
        workload::add_history(&pool, history).await;
        let after = report::percentiles(&driver.latencies("bench_linear", runs / 2).await).0;
        report.value("linear-4 p50, empty history", before, "ms", "");
        report.value(
            &format!("linear-4 p50 with {history} tasks in history"),
            after,
            "ms",
            "",
        );
        report.value(
            &format!("linear-4 p50 with {history} tasks in history / empty"),
            after / before,
            "×",
            "≤ 1.2",
        );
    }

    // Last, so the Ruby worker's connections do not disturb the other figures.
    match if wants("ruby") {
        ruby::start_worker(&cluster).await
    } else {
        Err("not in BENCH_PHASES".to_string())
    } {
        Ok(_ruby_worker) => {
            eprintln!("bench: Ruby handlers ({runs} runs, and Rust again to compare)");
            let rust_p50 = report::percentiles(&driver.latencies("bench_linear", runs).await).0;
            let lat = driver
                .latencies_in(ruby::NAMESPACE, ruby::TEMPLATE, runs)
                .await;
            let (p50, _, p99) = report::percentiles(&lat);
            report.value("Ruby linear-4 (no-op handlers) p50", p50, "ms", "");
            report.value("Ruby linear-4 p99", p99, "ms", "");
            report.value("Rust linear-4 p50, just before", rust_p50, "ms", "");
            report.value(
                "Ruby overhead per step vs Rust",
                (p50 - rust_p50) / 4.0,
                "ms",
                "",
            );
        }
        Err(why) => eprintln!("bench: skipping the Ruby phase: {why}"),
    }

    report.print();
    let path = report.write_json(
        json!({"runs": runs, "throughput_seconds": throughput_secs, "history_tasks": history}),
    );
    eprintln!("bench: results written to {}", path.display());
    drop(cluster);
}

/// Whether `phase` runs: BENCH_PHASES is a comma-separated list (idle, ceilings,
/// latency, work, throughput, creation, scale, history, ruby); unset runs them all.
fn wants(phase: &str) -> bool {
    match std::env::var("BENCH_PHASES") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|p| p.trim() == phase),
        _ => true,
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends `sig` (`STOP`, `CONT`) to a process of the cluster.
fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "kill -{sig} {pid} failed"
    );
}
