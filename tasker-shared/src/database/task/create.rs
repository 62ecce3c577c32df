//! Creating a task: the task, its steps, edges and first history entries, and (for the
//! orchestration) its root steps enqueued with their messages, in one statement
//! (`create.sql`, `create_and_enqueue.sql`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;

use crate::database::named_task::{NamedTask, ensure_named_steps};
use crate::database::splice::fill;
use crate::database::{Error, Result};
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

/// What [`pending`] and [`and_enqueue`] did.
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
pub async fn pending(
    conn: &mut PgConnection,
    named_task: &NamedTask,
    new: &NewTask,
) -> Result<CreateOutcome> {
    insert(conn, named_task, new, None).await
}

/// Like [`pending`], and the task starts running: its root steps are inserted `enqueued`
/// with their messages sent to `queue` (with the notification workers listen for), and
/// the task is `steps_in_process`. The history reads as if each had moved there from
/// `pending` (`initialized`, then `steps_enqueued` / `enqueued`), all at the statement's
/// time. Either everything is written or, for a duplicate, nothing of the task (a
/// step name new to the registry may have been added to `named_steps` first).
pub async fn and_enqueue(
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

    let Rows {
        steps,
        root_steps,
        cols,
        edges,
        messages,
        task_history,
    } = Rows::build(named_task, &named_steps, new, queue.is_some())?;
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

/// The rows of a new task, as the parallel columns the creation statement binds.
struct Rows {
    /// Step name → step uuid.
    steps: HashMap<String, Uuid>,
    root_steps: Vec<Uuid>,
    cols: StepColumns,
    edges: Edges,
    /// The root steps' messages.
    messages: Vec<Value>,
    task_history: History,
}

impl Rows {
    /// The task's steps (the roots `enqueued` if `enqueue`), edges, root messages and
    /// history, from its template.
    fn build(
        named_task: &NamedTask,
        named_steps: &HashMap<String, Uuid>,
        new: &NewTask,
        enqueue: bool,
    ) -> Result<Self> {
        let template = &named_task.template;
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
            cols.push(id, *named, step, root && enqueue);
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
        if enqueue {
            task_history.push(
                Some(TaskState::Pending.as_str()),
                TaskState::StepsInProcess.as_str(),
                json!({"event": "steps_enqueued", "count": root_steps.len()}),
            );
        }
        Ok(Self {
            steps,
            root_steps,
            cols,
            edges,
            messages,
            task_history,
        })
    }
}

/// The creation statement: `create.sql`, or with `queue` `create_and_enqueue.sql`.
fn statement(queue: Option<&QueueName>) -> String {
    use pgmq_notify::sql::{queue_table, returning_with_notify};
    match queue {
        Some(queue) => fill(
            include_str!("create_and_enqueue.sql"),
            &[
                ("{worker_queue}", &queue_table(queue)),
                ("{worker_queue_notify}", &returning_with_notify(queue)),
            ],
        ),
        None => include_str!("create.sql").to_string(),
    }
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

#[cfg(test)]
mod tests {
    use crate::database::splice::tests::assert_filled;

    #[test]
    fn the_statement_sends_the_roots_only_with_a_queue() {
        let queue = pgmq_notify::QueueName::worker("payments").unwrap();
        let enqueue = super::statement(Some(&queue));
        assert_filled(&enqueue);
        assert!(enqueue.contains("INSERT INTO pgmq.q_worker_payments_queue (vt, message)"));
        let pending = super::statement(None);
        assert_filled(&pending);
        assert!(!pending.contains("pgmq."));
    }
}
