//! The SQL seam: every query Tasker runs lives below this module (queue functions aside,
//! which live in `pgmq-notify`). Other crates call typed functions such as
//! [`step::claim::from_queue`] or [`task::create::and_enqueue`]; they never build SQL.
//!
//! The modules are named for what they act on: [`task`] and [`step`] (each with one
//! module per operation, its one-item and many-item forms side by side), the template
//! registry ([`named_task`]), the dead letter queue and staleness ([`dlq`]), and
//! [`retention`]. Long statements are `.sql` files next to the module that runs them,
//! each opening with a comment that names its parameters; a statement on a queue's own
//! tables holds placeholders for the queue (`splice.rs`).
//!
//! Functions that must run inside a caller's transaction take `&mut PgConnection`
//! (a `&mut *tx` works); read-only helpers take any executor.

pub mod dlq;
pub mod error;
pub mod named_task;
pub mod retention;
mod splice;
mod states;
pub mod step;
pub mod task;

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use error::{Error, Result};

use crate::messaging::{
    ORCHESTRATION_STEP_RESULTS, ORCHESTRATION_TASK_FINALIZATIONS, ORCHESTRATION_TASK_REQUESTS,
};

/// Tasker's migrations (`migrations/` at the workspace root).
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most connections held at once.
    pub max_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
    /// A connection idle this long is pinged before it is handed out; one used more
    /// recently is not (see [`connect`]).
    pub ping_if_idle_for: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            ping_if_idle_for: PING_IF_IDLE_FOR,
        }
    }
}

/// Settings of every connection Tasker opens (see [`connect`] for why).
pub const SESSION_SETTINGS: [(&str, &str); 4] = [
    ("search_path", "public"),
    ("plan_cache_mode", "force_generic_plan"),
    ("jit", "off"),
    ("enable_seqscan", "off"),
];

/// How long a pooled connection may sit idle before it is pinged on its next acquire.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

/// Opens a pool. Every connection gets `search_path = public` explicitly, so nothing
/// depends on the role's name; Tasker's queries qualify `tasker.` and `pgmq.` objects.
///
/// Connections also use `plan_cache_mode = force_generic_plan`: every statement Tasker
/// prepares looks rows up by key, so one plan per statement and connection serves every
/// call. Under PostgreSQL's default the hot statements (the state transitions, and
/// those that inline the readiness functions) were re-planned on every call, which cost
/// about as much CPU as running them (docs/benchmarks.md). And `jit = off`: a generic
/// plan's cost estimate can pass `jit_above_cost` (the claim's did), and compiling it
/// took 30–50 ms for a statement that runs in a fraction of one.
///
/// And `enable_seqscan = off`: a generic plan is made once, with the table sizes of that
/// moment, and kept until `ANALYZE` changes the statistics. Made while a table was small
/// (a fresh database, an empty queue), it scanned the whole table for a keyed lookup and
/// kept doing so as the table grew: under load the result handover read ~8,500 buffers
/// to delete one message, and each step transition read all of `workflow_steps`
/// (docs/benchmarks.md, "Plans made on small tables"). Every statement on the hot path
/// is written so that each table is reached by key; with sequential scans priced out,
/// its plan is the keyed one whatever the statistics said. Statements that must scan
/// (the API's lists, retention) still do where no index serves them.
///
/// A pooled connection is pinged before it is handed out only if it sat idle for
/// [`PoolConfig::ping_if_idle_for`] ([`PING_IF_IDLE_FOR`] by default) or longer.
/// sqlx's default pings on every acquire: a round trip in front of every claim, submit
/// and result batch. (sqlx also pings each connection as it goes back to the pool, in
/// the background, so one that broke while in use never returns.) A connection in
/// steady use has just proved itself; one that broke while idle fails its statement
/// with a transient error, and every caller retries or redelivers on that.
pub async fn connect(url: &str, config: &PoolConfig) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| Error::Config(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}")))?
        .options(SESSION_SETTINGS)
        .application_name("tasker");
    Ok(pool_options(config).connect_with(options).await?)
}

fn pool_options(config: &PoolConfig) -> PgPoolOptions {
    let ping_if_idle_for = config.ping_if_idle_for;
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_if_idle_for {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// A pool to the same database as `pool`, with the same settings, whose transactions
/// commit without waiting for their WAL to reach the disk (`synchronous_commit = off`).
/// It connects on first use.
///
/// Only for transactions that are *replayable*: losing one (PostgreSQL crashed in the
/// fraction of a second before the WAL writer flushed it) leaves the database as if it
/// had never run, with what it consumed still there to run it again, and hands out no
/// id that a process may still hold afterwards. Within the database nothing built on a
/// lost transaction survives it: the WAL is one sequence, so a later durable commit
/// makes every earlier one durable. Outside it, a process that saw the transaction keeps
/// what it read across the crash, which is why it must not allocate ids from sequences
/// (a lost batch that sent messages would give their ids to other messages later).
///
/// Tasker uses it for the worker's claim only: it updates rows that exist (the step, its
/// message's lease) and inserts a history row keyed by a UUID. A lost claim leaves the
/// step where it was (`enqueued`, `waiting_for_retry`, or `in_progress` under a lost
/// worker) with its message visible; the handler may run again, as after a worker crash,
/// and a result is still recorded once (see `docs/operations.md`, Durability).
pub fn replayable_pool(pool: &PgPool, config: &PoolConfig) -> PgPool {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .options([("synchronous_commit", "off")]);
    pool_options(config).connect_lazy_with(options)
}

/// Installs PGMQ (unless the extension is there), applies the migrations and creates
/// the orchestration queues. Safe to run concurrently and repeatedly.
pub async fn setup(pool: &PgPool) -> Result<()> {
    let source = pgmq_notify::install::install(pool).await?;
    tracing::info!(?source, "PGMQ available");
    MIGRATOR.run(pool).await?;
    let client = pgmq_notify::PgmqClient::new(pool.clone());
    for queue in [
        ORCHESTRATION_STEP_RESULTS,
        ORCHESTRATION_TASK_REQUESTS,
        ORCHESTRATION_TASK_FINALIZATIONS,
    ] {
        client
            .create_queue(&pgmq_notify::QueueName::new(queue)?)
            .await?;
    }
    Ok(())
}

/// Whether every migration this build knows is applied. Workers check this at start
/// instead of migrating, which is the server's job.
pub async fn schema_is_current(pool: &PgPool) -> Result<bool> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(false);
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM public._sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.contains(&m.version)))
}

/// Queue depths (messages, visible or not) of every PGMQ queue.
pub async fn queue_depths(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query_as("SELECT queue_name, queue_length FROM pgmq.metrics_all()")
        .fetch_all(pool)
        .await?;
    Ok(rows)
}

/// Depth of one queue, or None if it does not exist.
pub async fn queue_depth(pool: &PgPool, queue: &str) -> Result<Option<i64>> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = $1)")
            .bind(queue)
            .fetch_one(pool)
            .await?;
    if !exists {
        return Ok(None);
    }
    let depth = sqlx::query_scalar("SELECT queue_length FROM pgmq.metrics($1)")
        .bind(queue)
        .fetch_one(pool)
        .await?;
    Ok(Some(depth))
}

/// Which of `queues` are missing.
pub async fn missing_queues(pool: &PgPool, queues: &[&str]) -> Result<Vec<String>> {
    let present: Vec<String> =
        sqlx::query_scalar("SELECT queue_name FROM pgmq.meta WHERE queue_name = ANY($1)")
            .bind(queues)
            .fetch_all(pool)
            .await?;
    Ok(queues
        .iter()
        .filter(|q| !present.iter().any(|p| p == *q))
        .map(|q| q.to_string())
        .collect())
}

// TEMPORARY: old paths for callers being moved; removed by the worker refactor.
// tasker-worker's tests (runtime.rs) and src (executor.rs, runtime/fetch.rs:
// `step::ClaimedStep`), and tasker-orchestration's web/ (steps.rs, tasks.rs) still name
// the paths below. `step` and `task` take their old names from `old_step_paths` and
// `old_task_paths` with a glob (the last lines of step/mod.rs and task/mod.rs).

/// Old `database::complete::*` paths: now `step::complete`.
#[doc(hidden)]
pub mod complete {
    pub use super::step::complete::{Completion, many as steps};
}

/// Old `database::transition::*` paths: now `step::transition` and `step::history`.
#[doc(hidden)]
pub mod transition {
    pub use super::step::history::list as step_history;
    pub use super::step::transition::{
        current_state as current_step_state, one as transition_step,
    };
}

/// Old `database::step::*` paths, re-exported by `step`.
#[doc(hidden)]
pub mod old_step_paths {
    pub use super::step::claim::{ClaimOutcome, ClaimedStep, one as claim};
    pub use super::step::enqueue::many as enqueue;
    pub use super::step::history::audit;
    pub use super::step::read::{StepDetail, detail as get_detail, list_for_task};
}

/// Old `database::task::*` paths, re-exported by `task`.
#[doc(hidden)]
pub mod old_task_paths {
    pub use super::task::create::{CreateOutcome, CreatedTask, NewTask, pending as create};
    pub use super::task::read::{
        TaskExecutionContext, TaskFilter, TaskRecord, execution_context, get, list,
    };
}
