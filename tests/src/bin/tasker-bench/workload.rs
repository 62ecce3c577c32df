//! Templates, load generators and database counters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::oneshot;
use uuid::Uuid;

use tasker_client::OrchestrationClient;
use tasker_shared::api::TaskRequest;
use tasker_tests::Cluster;

fn template(name: &str, steps: &[(&str, &[&str])]) -> String {
    let mut out = format!(
        "name: {name}\nnamespace_name: bench\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n"
    );
    for (step, deps) in steps {
        out.push_str(&format!(
            "  - name: {step}\n    handler: {{ callable: builtin::noop }}\n"
        ));
        if !deps.is_empty() {
            out.push_str(&format!("    dependencies: [{}]\n", deps.join(", ")));
        }
    }
    out
}

/// No-op templates of every shape, written to a fresh directory.
pub fn write_templates() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tasker-bench-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let write =
        |name: &str, text: String| std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
    write(
        "bench_linear",
        template(
            "bench_linear",
            &[
                ("bl_1", &[]),
                ("bl_2", &["bl_1"]),
                ("bl_3", &["bl_2"]),
                ("bl_4", &["bl_3"]),
            ],
        ),
    );
    write(
        "bench_diamond",
        template(
            "bench_diamond",
            &[
                ("bd_start", &[]),
                ("bd_b", &["bd_start"]),
                ("bd_c", &["bd_start"]),
                ("bd_end", &["bd_b", "bd_c"]),
            ],
        ),
    );
    write(
        "bench_tree",
        template(
            "bench_tree",
            &[
                ("bt_root", &[]),
                ("bt_l", &["bt_root"]),
                ("bt_r", &["bt_root"]),
                ("bt_d", &["bt_l"]),
                ("bt_e", &["bt_l"]),
                ("bt_f", &["bt_r"]),
                ("bt_g", &["bt_r"]),
                ("bt_conv", &["bt_d", "bt_e", "bt_f", "bt_g"]),
            ],
        ),
    );
    write(
        "bench_mixed",
        template(
            "bench_mixed",
            &[
                ("bm_init", &[]),
                ("bm_left", &["bm_init"]),
                ("bm_right", &["bm_init"]),
                ("bm_validate", &["bm_left", "bm_right"]),
                ("bm_transform", &["bm_left"]),
                ("bm_analyze", &["bm_right"]),
                (
                    "bm_finalize",
                    &["bm_validate", "bm_transform", "bm_analyze"],
                ),
            ],
        ),
    );
    let mut fan = String::from(
        "name: bench_fanout_1000\nnamespace_name: bench\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n  - name: bf_root\n    handler: { callable: builtin::noop }\n",
    );
    let mut leaves = Vec::new();
    for i in 0..1000 {
        let leaf = format!("bf_{i:04}");
        fan.push_str(&format!("  - name: {leaf}\n    dependencies: [bf_root]\n    handler: {{ callable: builtin::noop }}\n"));
        leaves.push(leaf);
    }
    fan.push_str(&format!(
        "  - name: bf_join\n    dependencies: [{}]\n    handler: {{ callable: builtin::noop }}\n",
        leaves.join(", ")
    ));
    std::fs::write(dir.join("bench_fanout_1000.yaml"), fan).unwrap();
    dir
}

type Waiters = Arc<Mutex<HashMap<Uuid, Slot>>>;

enum Slot {
    Waiting(oneshot::Sender<Instant>),
    Arrived(Instant),
}

/// Creates tasks over HTTP and hears of their completion over LISTEN.
pub struct Driver {
    client: OrchestrationClient,
    waiters: Waiters,
}

impl Driver {
    pub async fn new(cluster: &Cluster) -> Self {
        let waiters: Waiters = Arc::default();
        let mut listener = PgListener::connect_with(&cluster.db.pool).await.unwrap();
        listener
            .listen(tasker_shared::database::task::transition::SETTLED_CHANNEL)
            .await
            .unwrap();
        let w = waiters.clone();
        tokio::spawn(async move {
            while let Ok(n) = listener.recv().await {
                let at = Instant::now();
                let Ok(v) = serde_json::from_str::<serde_json::Value>(n.payload()) else {
                    continue;
                };
                let Some(id) = v["task_uuid"]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                else {
                    continue;
                };
                let mut map = w.lock().unwrap();
                match map.remove(&id) {
                    Some(Slot::Waiting(tx)) => {
                        let _ = tx.send(at);
                    }
                    _ => {
                        map.insert(id, Slot::Arrived(at));
                    }
                }
            }
        });
        let client = OrchestrationClient::builder(&cluster.base_url)
            .retries(0)
            .build()
            .unwrap();
        Self { client, waiters }
    }

    async fn run_one(&self, name: &str) -> (Uuid, Instant, Instant) {
        self.run_one_in("bench", name).await
    }

    async fn run_one_in(&self, namespace: &str, name: &str) -> (Uuid, Instant, Instant) {
        let start = Instant::now();
        let task = self
            .client
            .create_task(&TaskRequest::new(namespace, name, json!({})))
            .await
            .unwrap();
        let rx = {
            let mut map = self.waiters.lock().unwrap();
            match map.remove(&task.task_uuid) {
                Some(Slot::Arrived(at)) => return (task.task_uuid, start, at),
                _ => {
                    let (tx, rx) = oneshot::channel();
                    map.insert(task.task_uuid, Slot::Waiting(tx));
                    rx
                }
            }
        };
        let at = tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .unwrap()
            .unwrap();
        (task.task_uuid, start, at)
    }

    /// End-to-end latencies (ms) of `n` tasks run one after another.
    pub async fn latencies(&self, name: &str, n: usize) -> Vec<f64> {
        self.latencies_in("bench", name, n).await
    }

    /// Like [`Driver::latencies`], for a template of another namespace.
    pub async fn latencies_in(&self, namespace: &str, name: &str, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let (_, start, end) = self.run_one_in(namespace, name).await;
            out.push((end - start).as_secs_f64() * 1000.0);
        }
        out
    }

    /// Tasks/s and steps/s with `inflight` tasks always running, over `window` after a
    /// warm-up of 5 s.
    pub async fn throughput(&self, name: &str, inflight: usize, window: Duration) -> (f64, f64) {
        let warm = Instant::now() + Duration::from_secs(5);
        let stop = warm + window;
        let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..inflight {
            let me = Driver {
                client: self.client.clone(),
                waiters: self.waiters.clone(),
            };
            let done = done.clone();
            let name = name.to_string();
            set.spawn(async move {
                while Instant::now() < stop {
                    let (_, _, end) = me.run_one(&name).await;
                    if end >= warm && end < stop {
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
        let tasks = done.load(std::sync::atomic::Ordering::Relaxed) as f64 / window.as_secs_f64();
        (tasks, tasks * 4.0)
    }

    /// Tasks created per second by `clients` concurrent clients over `window`.
    pub async fn creation_rate(&self, clients: usize, window: Duration) -> f64 {
        let stop = Instant::now() + window;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let client = self.client.clone();
            set.spawn(async move {
                let mut n = 0u64;
                while Instant::now() < stop {
                    client
                        .create_task(&TaskRequest::new("bench", "bench_linear", json!({})))
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            });
        }
        let mut total = 0;
        while let Some(n) = set.join_next().await {
            total += n.unwrap();
        }
        total as f64 / window.as_secs_f64()
    }

    /// Waits until no task is still running.
    pub async fn drain(&self, pool: &PgPool) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tasker.tasks WHERE current_state NOT IN ('complete','error','cancelled','resolved_manually','blocked_by_failures')",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if running == 0 || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // (the loop returns)
    }
}

async fn counters(pool: &PgPool) -> (i64, i64) {
    let xact: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let xid: i64 = sqlx::query_scalar("SELECT txid_current()")
        .fetch_one(pool)
        .await
        .unwrap();
    (xact, xid)
}

/// How long backends may hold statistics before PostgreSQL's cumulative statistics see
/// them (PGSTAT_IDLE_INTERVAL, 10 s), with a margin.
const STATS_FLUSH: Duration = Duration::from_secs(11);

/// Committed transactions per second of an idle server and worker.
pub async fn idle_rate(pool: &PgPool, window: Duration) -> f64 {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (a, _) = counters(pool).await;
    let t = Instant::now();
    tokio::time::sleep(window).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (b, _) = counters(pool).await;
    // Our own two counter queries are two of them.
    ((b - a - 2) as f64 / t.elapsed().as_secs_f64()).max(0.0)
}

/// (committed, write) transactions per linear-4 task, over `n` sequential tasks, less the
/// idle rate. Write transactions are WAL commit records (pg_walinspect) when the
/// extension is available, else assigned transaction ids (which also count
/// subtransactions).
pub async fn db_work(driver: &Driver, pool: &PgPool, n: usize, idle: f64) -> (f64, f64) {
    let walinspect = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .execute(pool)
        .await
        .is_ok();
    // pg_stat_database counts a backend's commits when it flushes its statistics: at
    // most once a second while busy, and up to 10 s late once idle. Reading the counter
    // sooner mixes in the previous phase's commits (the figure moved between 13 and 24
    // per task from run to run), so both readings wait out the flush interval.
    tokio::time::sleep(STATS_FLUSH).await;
    let (xa, ia) = counters(pool).await;
    let lsn_a: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(pool)
        .await
        .unwrap();
    let t = Instant::now();
    driver.latencies("bench_linear", n).await;
    tokio::time::sleep(STATS_FLUSH).await;
    let lsn_b: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(pool)
        .await
        .unwrap();
    let (xb, ib) = counters(pool).await;
    let committed = (xb - xa - 3) as f64 - idle * t.elapsed().as_secs_f64();
    let writes = if walinspect {
        let commits: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
             WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%'",
        )
        .bind(&lsn_a)
        .bind(&lsn_b)
        .fetch_one(pool)
        .await
        .unwrap();
        commits as f64
    } else {
        (ib - ia - 1) as f64
    };
    (committed / n as f64, writes / n as f64)
}

/// Resident memory of a process, in MB.
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Inserts `n` completed linear-4 tasks with their steps, edges and transition history
/// (rows as the system would leave them).
pub async fn add_history(pool: &PgPool, n: u64) {
    let n = i64::try_from(n).unwrap();
    let statements = [
        "INSERT INTO tasker.tasks (task_uuid, named_task_uuid, identity_hash, correlation_id, completed_at, context,
                                   current_state, state_sort_key, state_changed_at)
         SELECT tasker.uuid_generate_v7(), nt.named_task_uuid, 'history-' || g, gen_random_uuid(), now(), '{}',
                'complete', 6, now()
         FROM (SELECT named_task_uuid FROM tasker.named_tasks WHERE name = 'bench_linear' LIMIT 1) nt,
              generate_series(1, $1) g",
        "INSERT INTO tasker.task_transitions (task_uuid, to_state, from_state, sort_key)
         SELECT t.task_uuid, s.to_state, s.from_state, s.k
         FROM tasker.tasks t
         CROSS JOIN (VALUES (1, 'pending', NULL), (2, 'initializing', 'pending'),
                            (3, 'enqueuing_steps', 'initializing'), (4, 'steps_in_process', 'enqueuing_steps'),
                            (5, 'evaluating_results', 'steps_in_process'), (6, 'complete', 'evaluating_results'))
                    AS s(k, to_state, from_state)
         WHERE t.identity_hash LIKE 'history-%'",
        "INSERT INTO tasker.workflow_steps (task_uuid, named_step_uuid, handler_callable, attempts, completed_at,
                                            current_state, state_sort_key)
         SELECT t.task_uuid, ns.named_step_uuid, 'builtin::noop', 1, now(), 'complete', 5
         FROM tasker.tasks t CROSS JOIN (SELECT named_step_uuid FROM tasker.named_steps WHERE name IN ('bl_1','bl_2','bl_3','bl_4')) ns
         WHERE t.identity_hash LIKE 'history-%'",
        "INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid)
         SELECT a.workflow_step_uuid, b.workflow_step_uuid
         FROM tasker.tasks t
         JOIN tasker.workflow_steps a ON a.task_uuid = t.task_uuid
         JOIN tasker.named_steps na ON na.named_step_uuid = a.named_step_uuid
         JOIN tasker.workflow_steps b ON b.task_uuid = t.task_uuid
         JOIN tasker.named_steps nb ON nb.named_step_uuid = b.named_step_uuid
         WHERE t.identity_hash LIKE 'history-%'
           AND (na.name, nb.name) IN (('bl_1', 'bl_2'), ('bl_2', 'bl_3'), ('bl_3', 'bl_4'))",
        "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
         SELECT ws.workflow_step_uuid, s.to_state, s.from_state, s.k
         FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
         CROSS JOIN (VALUES (1, 'pending', NULL), (2, 'enqueued', 'pending'), (3, 'in_progress', 'enqueued'),
                            (4, 'enqueued_for_orchestration', 'in_progress'), (5, 'complete', 'enqueued_for_orchestration'))
                    AS s(k, to_state, from_state)
         WHERE t.identity_hash LIKE 'history-%'",
    ];
    for sql in statements {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") { q.bind(n) } else { q };
        q.execute(pool).await.unwrap();
    }
    // A system's history was vacuumed long ago: without this, autovacuum's pass over
    // the rows just inserted ran during the measurement (one run read 1.34×, the next
    // phase's Rust baseline 18 ms against 9 ms in the latency phase).
    sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
}
