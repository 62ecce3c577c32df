//! Reading tasks: one task with its template's names, a filtered page of tasks, a
//! task's execution context (`tasker.get_task_execution_context`), and the tasks with
//! steps ready to enqueue (`tasker.get_next_ready_tasks`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::database::Result;
use crate::database::states::parse_task;
use crate::state_machine::TaskState;

/// Where a task stands (`tasker.get_task_execution_context`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskExecutionContext {
    /// The task.
    pub task_uuid: Uuid,
    /// Its template.
    pub named_task_uuid: Uuid,
    /// Current task state.
    pub status: String,
    /// Steps in all.
    pub total_steps: i32,
    /// Steps pending.
    pub pending_steps: i32,
    /// Steps running or awaiting result processing.
    pub in_progress_steps: i32,
    /// Steps complete or resolved.
    pub completed_steps: i32,
    /// Steps in error.
    pub failed_steps: i32,
    /// Steps ready to enqueue.
    pub ready_steps: i32,
    /// Steps enqueued, not yet claimed.
    pub enqueued_steps: i32,
    /// Steps waiting for their next attempt.
    pub waiting_for_retry_steps: i32,
    /// Steps cancelled.
    pub cancelled_steps: i32,
    /// See the SQL function's documentation.
    pub execution_status: String,
    /// What to do next.
    pub recommended_action: String,
    /// Percentage done.
    pub completion_percentage: f64,
    /// healthy / recovering / blocked.
    pub health_status: String,
}

impl TaskExecutionContext {
    /// The context computed from the task's steps, as `tasker.get_task_execution_context`
    /// computes it (a test holds the two equal), for callers that have already read the
    /// steps: `steps` yields each step's current state and whether it is ready.
    pub fn from_steps<'a>(
        task_uuid: Uuid,
        named_task_uuid: Uuid,
        status: &str,
        steps: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> Self {
        let (mut total, mut pending, mut in_progress, mut enqueued, mut completed) =
            (0, 0, 0, 0, 0);
        let (mut failed, mut ready, mut retrying, mut cancelled) = (0, 0, 0, 0);
        for (state, is_ready) in steps {
            total += 1;
            match state {
                "pending" => pending += 1,
                "in_progress"
                | "enqueued_for_orchestration"
                | "enqueued_as_error_for_orchestration" => in_progress += 1,
                "enqueued" => enqueued += 1,
                "complete" | "resolved_manually" => completed += 1,
                "error" => failed += 1,
                "waiting_for_retry" => retrying += 1,
                "cancelled" => cancelled += 1,
                _ => {}
            }
            if is_ready {
                ready += 1;
            }
        }
        let execution_status = if failed > 0 {
            "blocked_by_failures"
        } else if ready > 0 {
            "has_ready_steps"
        } else if in_progress + enqueued > 0 {
            "processing"
        } else if retrying > 0 {
            "waiting_for_retry"
        } else if completed == total {
            "all_complete"
        } else {
            "waiting_for_dependencies"
        };
        let recommended_action = match execution_status {
            "blocked_by_failures" => "handle_failures",
            "has_ready_steps" => "execute_ready_steps",
            "processing" => "wait_for_completion",
            "waiting_for_retry" => "wait_for_retry",
            "all_complete" => "finalize_task",
            _ => "wait_for_dependencies",
        };
        let completion_percentage = if total == 0 {
            100.0
        } else {
            (10_000.0 * f64::from(completed) / f64::from(total)).round() / 100.0
        };
        let health_status = if failed > 0 {
            "blocked"
        } else if retrying > 0 {
            "recovering"
        } else {
            "healthy"
        };
        Self {
            task_uuid,
            named_task_uuid,
            status: status.to_string(),
            total_steps: total,
            pending_steps: pending,
            in_progress_steps: in_progress,
            completed_steps: completed,
            failed_steps: failed,
            ready_steps: ready,
            enqueued_steps: enqueued,
            waiting_for_retry_steps: retrying,
            cancelled_steps: cancelled,
            execution_status: execution_status.to_string(),
            recommended_action: recommended_action.to_string(),
            completion_percentage,
            health_status: health_status.to_string(),
        }
    }
}

/// Reads a task's execution context.
pub async fn execution_context<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
) -> Result<Option<TaskExecutionContext>> {
    let ctx = sqlx::query_as::<_, TaskExecutionContext>(
        "SELECT task_uuid, named_task_uuid, status, total_steps, pending_steps, in_progress_steps,
                completed_steps, failed_steps, ready_steps, enqueued_steps, waiting_for_retry_steps,
                cancelled_steps, execution_status, recommended_action,
                completion_percentage::float8 AS completion_percentage, health_status
         FROM tasker.get_task_execution_context($1)",
    )
    .bind(task_uuid)
    .fetch_optional(executor)
    .await?;
    Ok(ctx)
}

/// A task row with its template's names.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRecord {
    /// The task.
    pub task_uuid: Uuid,
    /// Its template.
    pub named_task_uuid: Uuid,
    /// Template name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Template version.
    pub version: String,
    /// Current state.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Input.
    pub context: Value,
    /// Who asked.
    pub initiator: String,
    /// Which system.
    pub source_system: String,
    /// Why.
    pub reason: String,
    /// -100..=100.
    pub priority: i32,
    /// Labels (JSON array of strings).
    pub tags: Value,
    /// Trace id.
    pub correlation_id: Uuid,
    /// Parent trace id.
    pub parent_correlation_id: Option<Uuid>,
}

impl TaskRecord {
    /// The current state, parsed.
    pub fn state(&self) -> Result<TaskState> {
        parse_task(&self.status)
    }
}

/// Reads a task.
pub async fn get<'e>(executor: impl PgExecutor<'e>, task_uuid: Uuid) -> Result<Option<TaskRecord>> {
    let row = sqlx::query_as::<_, TaskRecord>(
        "SELECT t.task_uuid, nt.name, ns.name AS namespace, nt.version,
                t.current_state AS status,
                t.created_at, t.updated_at, t.completed_at,
                t.context, t.initiator, t.source_system, t.reason, t.priority, t.tags,
                t.correlation_id, t.parent_correlation_id, t.named_task_uuid
         FROM tasker.tasks t
         JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
         WHERE t.task_uuid = $1",
    )
    .bind(task_uuid)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

/// A task with steps the orchestration could enqueue (`tasker.get_next_ready_tasks`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReadyTaskInfo {
    /// The task.
    pub task_uuid: Uuid,
    /// Template name.
    pub task_name: String,
    /// Priority.
    pub priority: i32,
    /// Namespace.
    pub namespace_name: String,
    /// Ready steps.
    pub ready_steps_count: i32,
    /// Priority with the age boost.
    pub computed_priority: f64,
    /// Current state.
    pub current_state: String,
}

/// Tasks with ready steps, highest priority first.
pub async fn next_ready<'e>(
    executor: impl PgExecutor<'e>,
    limit: i32,
) -> Result<Vec<ReadyTaskInfo>> {
    let rows = sqlx::query_as::<_, ReadyTaskInfo>(
        "SELECT task_uuid, task_name, priority, namespace_name, ready_steps_count,
                computed_priority::float8 AS computed_priority, current_state
         FROM tasker.get_next_ready_tasks($1)",
    )
    .bind(limit)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// Filters of a task listing.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Template namespace.
    pub namespace: Option<String>,
    /// Current state.
    pub status: Option<String>,
    /// Who asked.
    pub initiator: Option<String>,
    /// Which system asked.
    pub source_system: Option<String>,
}

/// The tables and filters of a task listing, shared by the page and its count. Only
/// the filters given appear in the SQL (numbered `$1`, `$2`… in the order of the
/// returned values): connections plan each statement once for every call
/// (`plan_cache_mode = force_generic_plan`), and a `$n IS NULL OR col = $n` filter would
/// keep that one plan from using an index.
fn listing(filter: &TaskFilter) -> (String, Vec<&str>) {
    let mut sql = String::from(
        "FROM tasker.tasks t
         JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
         WHERE true",
    );
    let mut values = Vec::new();
    for (column, value) in [
        ("ns.name", &filter.namespace),
        ("t.current_state", &filter.status),
        ("t.initiator", &filter.initiator),
        ("t.source_system", &filter.source_system),
    ] {
        if let Some(value) = value {
            values.push(value.as_str());
            sql.push_str(&format!(" AND {column} = ${}", values.len()));
        }
    }
    (sql, values)
}

/// One page of tasks, newest first, with the total count.
pub async fn list<'e, E>(
    executor: E,
    filter: &TaskFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRecord>, i64)>
where
    E: PgExecutor<'e> + Copy,
{
    let (from, values) = listing(filter);
    let n = values.len();
    let page_sql = format!(
        "SELECT t.task_uuid, nt.name, ns.name AS namespace, nt.version,
                t.current_state AS status,
                t.created_at, t.updated_at, t.completed_at,
                t.context, t.initiator, t.source_system, t.reason, t.priority, t.tags,
                t.correlation_id, t.parent_correlation_id, t.named_task_uuid
         {from}
         ORDER BY t.task_uuid DESC
         LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut page = sqlx::query_as::<_, TaskRecord>(&page_sql);
    for value in &values {
        page = page.bind(*value);
    }
    let rows = page.bind(limit).bind(offset).fetch_all(executor).await?;
    let count_sql = format!("SELECT count(*) {from}");
    let mut count = sqlx::query_scalar(&count_sql);
    for value in &values {
        count = count.bind(*value);
    }
    let total: i64 = count.fetch_one(executor).await?;
    Ok((rows, total))
}
