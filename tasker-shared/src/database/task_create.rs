//! Task creation: the task, its steps, edges and first history entries, and (for the
//! orchestration) its root steps enqueued with their messages, in one statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;

use super::named_task::{NamedTask, ensure_named_steps};
use super::{Error, Result};
use crate::messaging::StepMessage;
use crate::state_machine::{TaskState, WorkflowStepState};

/// Everything needed to create a task, besides its template.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The task's id (UUIDv7).
    pub task_uuid: Uuid,
    /// Input handed to every step.
    pub context: Value,
    /// See [`crate::identity`].
    pub identity_hash: String,
    /// Who asked.
    pub initiator: String,
    /// Which system asked.
    pub source_system: String,
    /// Why.
    pub reason: String,
    /// Labels.
    pub tags: Vec<String>,
    /// -100..=100.
    pub priority: i32,
    /// Trace id.
    pub correlation_id: Uuid,
    /// Parent trace id.
    pub parent_correlation_id: Option<Uuid>,
}

/// A created task's steps, by name.
#[derive(Debug, Clone)]
pub struct CreatedTask {
    /// The task.
    pub task_uuid: Uuid,
    /// Step name → step uuid.
    pub steps: HashMap<String, Uuid>,
    /// Steps without dependencies.
    pub root_steps: Vec<Uuid>,
    /// Step name → its named step (the template registry's row).
    pub named_steps: HashMap<String, Uuid>,
    /// When the task and its steps were created (the transaction's `now()`).
    pub created_at: DateTime<Utc>,
}

/// What [`create`] and [`create_and_enqueue`] did.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// The task and its steps now exist.
    Created(CreatedTask),
    /// A task with the same identity exists already; nothing of the task was written.
    Duplicate {
        /// The existing task.
        existing_task_uuid: Uuid,
    },
}

/// Inserts a task with its steps, edges and initial states, everything `pending`, each
/// with its first history entry. One statement, in the caller's transaction or on its
/// own (preceded by a lookup of the named steps only if [`NamedTask::named_steps`] lacks
/// one).
pub async fn create(
    conn: &mut PgConnection,
    named_task: &NamedTask,
    new: &NewTask,
) -> Result<CreateOutcome> {
    insert(conn, named_task, new, None).await
}

/// Like [`create`], and the task starts running: its root steps are inserted `enqueued`
/// with their messages sent to `queue` (with the notification workers listen for), and
/// the task is `steps_in_process`. The history reads as if each had moved there from
/// `pending` (`initialized`, then `steps_enqueued` / `enqueued`), all at the statement's
/// time. Either everything is written or, for a duplicate, nothing of the task (a
/// step name new to the registry may have been added to `named_steps` first).
pub async fn create_and_enqueue(
    conn: &mut PgConnection,
    named_task: &NamedTask,
    new: &NewTask,
    queue: &QueueName,
) -> Result<CreateOutcome> {
    insert(conn, named_task, new, Some(queue)).await
}

async fn insert(
    conn: &mut PgConnection,
    named_task: &NamedTask,
    new: &NewTask,
    queue: Option<&QueueName>,
) -> Result<CreateOutcome> {
    let template = &named_task.template;
    let names: Vec<&str> = template.steps.iter().map(|s| s.name.as_str()).collect();
    let named_steps = if names
        .iter()
        .all(|n| named_task.named_steps.contains_key(*n))
    {
        named_task.named_steps.clone()
    } else {
        named_step_ids(&mut *conn, &names).await?
    };

    let mut steps = HashMap::with_capacity(template.steps.len());
    for step in &template.steps {
        steps.insert(step.name.clone(), Uuid::now_v7());
    }
    let mut cols = StepColumns::default();
    let mut edges = Edges::default();
    let mut root_steps = Vec::new();
    let mut messages = Vec::new();
    for step in &template.steps {
        let id = steps[&step.name];
        let named = named_steps
            .get(&step.name)
            .ok_or_else(|| Error::NotFound(format!("named step '{}'", step.name)))?;
        let root = step.dependencies.is_empty();
        cols.push(id, *named, step, root && queue.is_some());
        if root {
            root_steps.push(id);
            messages.push(serde_json::to_value(StepMessage::new(
                new.task_uuid,
                id,
                new.correlation_id,
            ))?);
        }
        for dep in &step.dependencies {
            let parent = steps
                .get(dep)
                .ok_or_else(|| Error::Corrupt(format!("template step '{dep}' missing")))?;
            edges.push(*parent, id);
        }
    }
    let mut task_history = History::default();
    task_history.push(
        None,
        TaskState::Pending.as_str(),
        json!({"event": "initialized"}),
    );
    if queue.is_some() {
        task_history.push(
            Some(TaskState::Pending.as_str()),
            TaskState::StepsInProcess.as_str(),
            json!({"event": "steps_enqueued", "count": root_steps.len()}),
        );
    }
    let task_state = task_history.last_state().to_string();

    let statement = statement(queue);
    let inserted: Option<DateTime<Utc>> = sqlx::query_scalar(&statement)
        .bind(new.task_uuid)
        .bind(named_task.named_task_uuid)
        .bind(&new.initiator)
        .bind(&new.source_system)
        .bind(&new.reason)
        .bind(json!(new.tags))
        .bind(&new.context)
        .bind(&new.identity_hash)
        .bind(new.priority)
        .bind(new.correlation_id)
        .bind(new.parent_correlation_id)
        .bind(&task_state)
        .bind(task_history.len())
        .bind(&task_history.ids)
        .bind(&task_history.from)
        .bind(&task_history.to)
        .bind(&task_history.metadata)
        .bind(&cols.ids)
        .bind(&cols.named)
        .bind(&cols.callables)
        .bind(&cols.inputs)
        .bind(&cols.retryable)
        .bind(&cols.max_attempts)
        .bind(&cols.backoff)
        .bind(&cols.base_ms)
        .bind(&cols.max_ms)
        .bind(&cols.timeouts)
        .bind(&cols.states)
        .bind(&cols.sort_keys)
        .bind(&cols.history.steps)
        .bind(&cols.history.ids)
        .bind(&cols.history.from)
        .bind(&cols.history.to)
        .bind(&cols.history.metadata)
        .bind(&cols.history.sort_keys)
        .bind(&edges.ids)
        .bind(&edges.from)
        .bind(&edges.to)
        .bind(&messages)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(created_at) = inserted else {
        let existing: Uuid =
            sqlx::query_scalar("SELECT task_uuid FROM tasker.tasks WHERE identity_hash = $1")
                .bind(&new.identity_hash)
                .fetch_one(&mut *conn)
                .await?;
        return Ok(CreateOutcome::Duplicate {
            existing_task_uuid: existing,
        });
    };
    Ok(CreateOutcome::Created(CreatedTask {
        task_uuid: new.task_uuid,
        steps,
        root_steps,
        named_steps,
        created_at,
    }))
}

/// The creation statement. Every part reads `t`, the task row the insert returned: if
/// the identity exists already, `t` is empty and nothing else is written. The tables
/// have no foreign keys (migration 11): that the steps, edges and history rows belong
/// to a task written with them holds because this one statement writes them all.
fn statement(queue: Option<&QueueName>) -> String {
    let send = match queue {
        Some(queue) => format!(
            ", sent AS ({})",
            pgmq_notify::sql::insert_with_notify(
                queue,
                "SELECT clock_timestamp(), m.msg FROM t, unnest($39::jsonb[]) AS m(msg)"
            )
        ),
        // $39 must still appear for PostgreSQL to know its type.
        None => ", sent AS (SELECT $39::jsonb[] AS unused)".to_string(),
    };
    format!(
        "WITH t AS (
             INSERT INTO tasker.tasks
                 (task_uuid, named_task_uuid, initiator, source_system, reason, tags, context,
                  identity_hash, priority, correlation_id, parent_correlation_id,
                  current_state, state_sort_key, state_changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now())
             ON CONFLICT (identity_hash) DO NOTHING
             RETURNING task_uuid, created_at
         ), task_history AS (
             INSERT INTO tasker.task_transitions
                 (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key)
             SELECT h.id, t.task_uuid, h.to_state, h.from_state, h.metadata, h.sort_key
             FROM t, unnest($14::uuid[], $15::text[], $16::text[], $17::jsonb[])
                     WITH ORDINALITY AS h(id, from_state, to_state, metadata, sort_key)
         ), steps AS (
             INSERT INTO tasker.workflow_steps
                 (workflow_step_uuid, task_uuid, named_step_uuid, handler_callable, inputs, retryable,
                  max_attempts, backoff, backoff_base_ms, max_backoff_ms, timeout_seconds,
                  current_state, state_sort_key)
             SELECT u.id, t.task_uuid, u.named, u.callable, u.inputs, u.retryable, u.max_attempts,
                    u.backoff, u.base_ms, u.max_ms, u.timeout, u.state, u.sort_key
             FROM t, unnest($18::uuid[], $19::uuid[], $20::text[], $21::jsonb[], $22::bool[],
                            $23::int[], $24::text[], $25::int[], $26::int[], $27::int[],
                            $28::text[], $29::int[])
                     AS u(id, named, callable, inputs, retryable, max_attempts, backoff, base_ms,
                          max_ms, timeout, state, sort_key)
         ), step_history AS (
             INSERT INTO tasker.workflow_step_transitions
                 (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
             SELECT h.id, h.step, h.to_state, h.from_state, h.metadata, h.sort_key
             FROM t, unnest($30::uuid[], $31::uuid[], $32::text[], $33::text[], $34::jsonb[], $35::int[])
                     AS h(step, id, from_state, to_state, metadata, sort_key)
         ), edges AS (
             INSERT INTO tasker.workflow_step_edges
                 (workflow_step_edge_uuid, from_step_uuid, to_step_uuid, name)
             SELECT e.id, e.from_step, e.to_step, 'provides'
             FROM t, unnest($36::uuid[], $37::uuid[], $38::uuid[]) AS e(id, from_step, to_step)
         ){send}
         SELECT created_at FROM t"
    )
}

/// History entries to insert, as parallel columns.
#[derive(Default)]
struct History {
    ids: Vec<Uuid>,
    from: Vec<Option<&'static str>>,
    to: Vec<&'static str>,
    metadata: Vec<Value>,
}

impl History {
    fn push(&mut self, from: Option<&'static str>, to: &'static str, metadata: Value) {
        self.ids.push(Uuid::now_v7());
        self.from.push(from);
        self.to.push(to);
        self.metadata.push(metadata);
    }

    fn len(&self) -> i32 {
        i32::try_from(self.ids.len()).unwrap_or(i32::MAX)
    }

    fn last_state(&self) -> &'static str {
        self.to.last().copied().unwrap_or("pending")
    }
}

/// Step history: [`History`] plus the step and the sort key of each entry.
#[derive(Default)]
struct StepHistory {
    steps: Vec<Uuid>,
    ids: Vec<Uuid>,
    from: Vec<Option<&'static str>>,
    to: Vec<&'static str>,
    metadata: Vec<Value>,
    sort_keys: Vec<i32>,
}

impl StepHistory {
    fn push(&mut self, step: Uuid, from: Option<&'static str>, to: &'static str, sort_key: i32) {
        let event = if from.is_none() {
            "initialized"
        } else {
            "enqueued"
        };
        self.steps.push(step);
        self.ids.push(Uuid::now_v7());
        self.from.push(from);
        self.to.push(to);
        self.metadata.push(json!({"event": event}));
        self.sort_keys.push(sort_key);
    }
}

#[derive(Default)]
struct Edges {
    ids: Vec<Uuid>,
    from: Vec<Uuid>,
    to: Vec<Uuid>,
}

impl Edges {
    fn push(&mut self, from: Uuid, to: Uuid) {
        self.ids.push(Uuid::now_v7());
        self.from.push(from);
        self.to.push(to);
    }
}

#[derive(Default)]
struct StepColumns {
    ids: Vec<Uuid>,
    named: Vec<Uuid>,
    callables: Vec<String>,
    inputs: Vec<Value>,
    retryable: Vec<bool>,
    max_attempts: Vec<i32>,
    backoff: Vec<&'static str>,
    base_ms: Vec<i32>,
    max_ms: Vec<i32>,
    timeouts: Vec<Option<i32>>,
    states: Vec<&'static str>,
    sort_keys: Vec<i32>,
    history: StepHistory,
}

impl StepColumns {
    /// One step, `pending`, or `enqueued` (through `pending`) if `enqueue`.
    fn push(
        &mut self,
        id: Uuid,
        named: Uuid,
        step: &crate::template::StepDefinition,
        enqueue: bool,
    ) {
        let clamp = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        self.ids.push(id);
        self.named.push(named);
        self.callables.push(step.handler.callable.clone());
        self.inputs.push(step.handler.initialization.clone());
        self.retryable.push(step.retry.retryable);
        self.max_attempts
            .push(i32::try_from(step.retry.max_attempts).unwrap_or(i32::MAX));
        self.backoff.push(step.retry.backoff.as_str());
        self.base_ms.push(clamp(step.retry.backoff_base_ms));
        self.max_ms.push(clamp(step.retry.max_backoff_ms));
        self.timeouts.push(
            step.timeout_seconds
                .map(|t| i32::try_from(t).unwrap_or(i32::MAX)),
        );
        let pending = WorkflowStepState::Pending.as_str();
        self.history.push(id, None, pending, 1);
        if enqueue {
            let enqueued = WorkflowStepState::Enqueued.as_str();
            self.history.push(id, Some(pending), enqueued, 2);
            self.states.push(enqueued);
            self.sort_keys.push(2);
        } else {
            self.states.push(pending);
            self.sort_keys.push(1);
        }
    }
}

async fn named_step_ids(conn: &mut PgConnection, names: &[&str]) -> Result<HashMap<String, Uuid>> {
    let mut found = fetch_named_steps(&mut *conn, names).await?;
    if found.len() < names.len() {
        ensure_named_steps(&mut *conn, names).await?;
        found = fetch_named_steps(&mut *conn, names).await?;
    }
    Ok(found)
}

async fn fetch_named_steps(
    conn: &mut PgConnection,
    names: &[&str],
) -> Result<HashMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT name, named_step_uuid FROM tasker.named_steps WHERE name = ANY($1)")
            .bind(names)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}
