//! Factories for test data with defaults a test rarely cares about, so that a test
//! states only what matters to it (river's test factory): a registered template, a task
//! of it, a step moved through its states, a worker's result.
//!
//! ```no_run
//! # async fn example(db: &tasker_shared::testing::TestDb) {
//! use tasker_shared::testing::factory;
//! use tasker_shared::state_machine::WorkflowStepState::*;
//!
//! let template = factory::named_task(&db.pool, "name: t\nnamespace_name: tests\nversion: 1.0.0\n\
//!     steps:\n  - name: a\n    handler: { callable: c }\n").await;
//! let task = factory::task(&template).create(&db.pool).await;
//! let a = task.steps["a"];
//! factory::walk_step(&db.pool, a, &[Pending, Enqueued, InProgress]).await;
//! let result = factory::succeeded(a, 0, serde_json::json!(42));
//! # }
//! ```
//!
//! Every function panics when the database refuses what it writes: these are test
//! helpers.

use serde_json::{Value, json};
use sqlx::{Acquire, PgPool, Postgres};
use uuid::Uuid;

use pgmq_notify::QueueName;

use crate::database::named_task::{self, NamedTask};
use crate::database::step;
use crate::database::task::create::{self, CreateOutcome, CreatedTask, NewTask};
use crate::identity::identity_hash;
use crate::results::{ResultMetadata, ResultStatus, StepErrorInfo, StepExecutionResult};
use crate::state_machine::WorkflowStepState;
use crate::template::{IdentityStrategy, TaskTemplate};

/// Registers the template `yaml` and returns it as task creation finds it.
pub async fn named_task(pool: &PgPool, yaml: &str) -> NamedTask {
    let template = TaskTemplate::from_yaml(yaml, "factory").expect("a valid template");
    named_task::register(pool, &template)
        .await
        .expect("register the template");
    named_task::find(pool, &template.namespace_name, &template.name, None)
        .await
        .expect("find the template")
        .expect("the template just registered")
}

/// A task of `template` to build or create. By default its context is `{}`, its
/// identity unique (two default tasks never collide), its trace id fresh, and the
/// initiator, source system and reason `"test"`, with no tags and priority 0.
pub fn task(template: &NamedTask) -> TaskFactory<'_> {
    TaskFactory {
        template,
        task_uuid: Uuid::now_v7(),
        context: json!({}),
        identity: Identity::Unique,
        priority: 0,
        correlation_id: Uuid::now_v7(),
    }
}

/// A task being built; see [`task`].
#[derive(Debug, Clone)]
pub struct TaskFactory<'a> {
    template: &'a NamedTask,
    task_uuid: Uuid,
    context: Value,
    identity: Identity,
    priority: i32,
    correlation_id: Uuid,
}

#[derive(Debug, Clone)]
enum Identity {
    Unique,
    FromContext,
    Hash(String),
}

impl TaskFactory<'_> {
    /// The task's input.
    pub fn context(mut self, context: Value) -> Self {
        self.context = context;
        self
    }

    /// The identity a request with this context and no idempotency key gets under the
    /// template's identity strategy, so that a second task with the same context is a
    /// duplicate (under `strict`).
    pub fn identity_from_context(mut self) -> Self {
        self.identity = Identity::FromContext;
        self
    }

    /// This identity hash.
    pub fn identity_hash(mut self, hash: impl Into<String>) -> Self {
        self.identity = Identity::Hash(hash.into());
        self
    }

    /// The task's priority (-100..=100).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The task's trace id.
    pub fn correlation_id(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    /// The [`NewTask`] to create.
    pub fn build(self) -> NewTask {
        let named = self.template;
        let identity_hash = match self.identity {
            Identity::Unique => identity_hash(
                named.named_task_uuid,
                IdentityStrategy::AlwaysUnique,
                &self.context,
                None,
            ),
            Identity::FromContext => identity_hash(
                named.named_task_uuid,
                named.identity_strategy,
                &self.context,
                None,
            ),
            Identity::Hash(hash) => Ok(hash),
        }
        .expect("an identity for the template's strategy");
        NewTask {
            task_uuid: self.task_uuid,
            context: self.context,
            identity_hash,
            initiator: "test".into(),
            source_system: "test".into(),
            reason: "test".into(),
            tags: vec![],
            priority: self.priority,
            correlation_id: self.correlation_id,
            parent_correlation_id: None,
        }
    }

    /// Creates the task with everything `pending` ([`create::pending`]), on a
    /// connection of `db` (a pool, a connection or a transaction).
    pub async fn create<'c>(self, db: impl Acquire<'c, Database = Postgres>) -> CreatedTask {
        let template = self.template;
        let mut conn = db.acquire().await.expect("a connection");
        created(create::pending(&mut conn, template, &self.build()).await)
    }

    /// Creates the task running, its root steps enqueued on `queue`
    /// ([`create::and_enqueue`]).
    pub async fn create_and_enqueue<'c>(
        self,
        db: impl Acquire<'c, Database = Postgres>,
        queue: &QueueName,
    ) -> CreatedTask {
        let template = self.template;
        let mut conn = db.acquire().await.expect("a connection");
        created(create::and_enqueue(&mut conn, template, &self.build(), queue).await)
    }
}

fn created(outcome: crate::database::Result<CreateOutcome>) -> CreatedTask {
    match outcome.expect("create the task") {
        CreateOutcome::Created(created) => created,
        CreateOutcome::Duplicate { existing_task_uuid } => {
            panic!("the factory's task duplicates {existing_task_uuid}")
        }
    }
}

/// Moves a step along `path` (consecutive states, each move legal), as workers and the
/// orchestration do, without touching its attempt counter or queue messages.
pub async fn walk_step<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    step_uuid: Uuid,
    path: &[WorkflowStepState],
) {
    let mut conn = db.acquire().await.expect("a connection");
    for pair in path.windows(2) {
        let moved =
            step::transition::one(&mut conn, step_uuid, &[pair[0]], pair[1], &json!({}), None)
                .await
                .expect("move the step");
        assert!(
            moved.applied(),
            "{step_uuid}: {} → {}: {moved:?}",
            pair[0],
            pair[1]
        );
    }
}

/// Moves a `pending` step along the happy path to `complete` ([`walk_step`]).
pub async fn complete_step<'c>(db: impl Acquire<'c, Database = Postgres>, step_uuid: Uuid) {
    use WorkflowStepState::*;
    walk_step(
        db,
        step_uuid,
        &[
            Pending,
            Enqueued,
            InProgress,
            EnqueuedForOrchestration,
            Complete,
        ],
    )
    .await;
}

/// A handler's success with `value`, for `attempt`, from worker `w`.
pub fn succeeded(step_uuid: Uuid, attempt: i32, value: Value) -> StepExecutionResult {
    result(step_uuid, attempt, true, value)
}

/// A handler's failure for `attempt`, from worker `w`.
pub fn failed(step_uuid: Uuid, attempt: i32, error: Option<StepErrorInfo>) -> StepExecutionResult {
    StepExecutionResult {
        error,
        ..result(step_uuid, attempt, false, Value::Null)
    }
}

/// A failure of type `test`.
pub fn error(message: &str, retryable: bool) -> StepErrorInfo {
    StepErrorInfo {
        message: message.into(),
        error_type: "test".into(),
        retryable,
        retry_after_ms: None,
        backtrace: None,
        context: None,
    }
}

/// A handler's result for `attempt` from worker `w` (1 ms): a success or a failure
/// without error details, either with `value`.
pub fn result(step_uuid: Uuid, attempt: i32, success: bool, value: Value) -> StepExecutionResult {
    StepExecutionResult {
        step_uuid,
        success,
        result: value,
        status: if success {
            ResultStatus::Completed
        } else {
            ResultStatus::Failed
        },
        error: None,
        metadata: ResultMetadata {
            attempt,
            execution_time_ms: 1,
            worker_id: "w".into(),
            started_at: chrono::Utc::now(),
            completed_at: chrono::Utc::now(),
            custom: Value::Null,
        },
    }
}
