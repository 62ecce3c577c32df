//! Creating a task from a registered template.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use pgmq_notify::QueueName;
use tasker_shared::api::TaskRequest;
use tasker_shared::database::step::read::{StepDetail, StepReadinessStatus};
use tasker_shared::database::{named_task, task};
use tasker_shared::identity::{self, identity_hash};
use tasker_shared::state_machine::{TaskState, WorkflowStepState};

use crate::error::Error;

/// Why a task was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTaskError {
    /// The request broke the rules; each entry names the field.
    #[error("invalid task request: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// No such template (or version) is registered.
    #[error("{0}")]
    TemplateNotFound(String),
    /// A task with the same identity exists.
    #[error("a task with the same identity already exists: {existing_task_uuid}")]
    Duplicate {
        /// The task that exists.
        existing_task_uuid: Uuid,
    },
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<tasker_shared::database::Error> for CreateTaskError {
    fn from(e: tasker_shared::database::Error) -> Self {
        CreateTaskError::Internal(e.into())
    }
}

/// A created task.
#[derive(Debug, Clone)]
pub struct CreatedTask {
    /// The task.
    pub task_uuid: Uuid,
    /// Steps enqueued at once (the roots).
    pub enqueued_steps: usize,
    /// The task as committed: what reading it back right after the commit returns,
    /// before any worker touched it (`POST /v1/tasks` answers with it, so it need not
    /// read the task back).
    pub record: task::read::TaskRecord,
    /// Its steps as committed, in creation order (like [`step::read::list_for_task`]).
    ///
    /// [`step::read::list_for_task`]: tasker_shared::database::step::read::list_for_task
    pub steps: Vec<StepDetail>,
}

/// Validates the request, creates the task with its steps, enqueues the root steps and
/// moves the task to `steps_in_process`, all in one statement
/// ([`task::create::and_enqueue`]).
pub async fn create_task(
    pool: &PgPool,
    request: &TaskRequest,
) -> Result<CreatedTask, CreateTaskError> {
    request.validate().map_err(CreateTaskError::Invalid)?;
    let clock = std::time::Instant::now();
    let named = named_task::find(
        pool,
        &request.namespace,
        &request.name,
        request.version.as_deref(),
    )
    .await?
    .ok_or_else(|| {
        CreateTaskError::TemplateNotFound(match &request.version {
            Some(v) => format!(
                "no template '{}' version '{}' is registered in namespace '{}'",
                request.name, v, request.namespace
            ),
            None => format!(
                "no template '{}' is registered in namespace '{}'",
                request.name, request.namespace
            ),
        })
    })?;
    let hash = identity_hash(
        named.named_task_uuid,
        named.identity_strategy,
        &request.context,
        request.idempotency_key.as_deref(),
    )
    .map_err(|e: identity::Error| CreateTaskError::Invalid(vec![e.to_string()]))?;

    let new = task::create::NewTask {
        task_uuid: Uuid::now_v7(),
        context: request.context.clone(),
        identity_hash: hash,
        initiator: request
            .initiator
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        source_system: request
            .source_system
            .clone()
            .unwrap_or_else(|| "api".into()),
        reason: request
            .reason
            .clone()
            .unwrap_or_else(|| "unspecified".into()),
        tags: request.tags.clone(),
        priority: request.priority.unwrap_or(0),
        correlation_id: request.correlation_id.unwrap_or_else(Uuid::now_v7),
        parent_correlation_id: request.parent_correlation_id,
    };

    let queue = QueueName::worker(&named.namespace).map_err(Error::from)?;
    let mut conn = pool.acquire().await.map_err(Error::from)?;
    let created = match task::create::and_enqueue(&mut conn, &named, &new, &queue).await? {
        task::create::CreateOutcome::Created(c) => c,
        task::create::CreateOutcome::Duplicate { existing_task_uuid } => {
            return Err(CreateTaskError::Duplicate { existing_task_uuid });
        }
    };
    drop(conn);
    let enqueued = created.root_steps.len();
    crate::metrics::steps_enqueued(&named.namespace, enqueued);
    crate::metrics::task_requested(&named.namespace, clock.elapsed());
    tracing::info!(
        task_uuid = %created.task_uuid,
        correlation_id = %new.correlation_id,
        template = %named.template.full_name(),
        "task created"
    );
    let steps = committed_steps(&named, &created);
    let record = task::read::TaskRecord {
        task_uuid: created.task_uuid,
        named_task_uuid: named.named_task_uuid,
        name: named.name.clone(),
        namespace: named.namespace.clone(),
        version: named.version.clone(),
        status: TaskState::StepsInProcess.as_str().to_string(),
        created_at: created.created_at,
        // The transition to steps_in_process stamped now(), the transaction's time.
        updated_at: created.created_at,
        completed_at: None,
        context: new.context,
        initiator: new.initiator,
        source_system: new.source_system,
        reason: new.reason,
        priority: new.priority,
        tags: json!(new.tags),
        correlation_id: new.correlation_id,
        parent_correlation_id: new.parent_correlation_id,
    };
    Ok(CreatedTask {
        task_uuid: created.task_uuid,
        enqueued_steps: enqueued,
        record,
        steps,
    })
}

/// The steps of a task just created, as `get_step_readiness_status` reads them: the
/// `enqueued` ones (the roots) and the others `pending` behind them, none attempted.
fn committed_steps(
    named: &named_task::NamedTask,
    created: &task::create::CreatedTask,
) -> Vec<StepDetail> {
    let at: DateTime<Utc> = created.created_at;
    let mut steps: Vec<StepDetail> = named
        .template
        .steps
        .iter()
        .filter_map(|step| {
            let step_uuid = *created.steps.get(&step.name)?;
            let named_step_uuid = *created.named_steps.get(&step.name)?;
            // The roots were enqueued by the creation; the others wait for parents.
            let parents = i32::try_from(step.dependencies.len()).unwrap_or(i32::MAX);
            let state = if parents == 0 {
                WorkflowStepState::Enqueued
            } else {
                WorkflowStepState::Pending
            };
            let mut parent_names = step.dependencies.clone();
            parent_names.sort();
            Some(StepDetail {
                readiness: StepReadinessStatus {
                    workflow_step_uuid: step_uuid,
                    task_uuid: created.task_uuid,
                    named_step_uuid,
                    name: step.name.clone(),
                    current_state: state.as_str().to_string(),
                    dependencies_satisfied: parents == 0,
                    // Never attempted: attempts equal the (zero) baseline.
                    retry_eligible: true,
                    // Roots are enqueued, the rest wait: none is ready to enqueue.
                    ready_for_execution: false,
                    last_failure_at: None,
                    next_retry_at: None,
                    total_parents: parents,
                    completed_parents: 0,
                    attempts: 0,
                    max_attempts: i32::try_from(step.retry.max_attempts).unwrap_or(i32::MAX),
                    last_attempted_at: None,
                },
                results: None,
                created_at: at,
                completed_at: None,
                parent_names,
            })
        })
        .collect();
    steps.sort_by_key(|s| s.readiness.workflow_step_uuid);
    steps
}

/// Creates tasks on a pool (see [`create_task`]).
#[derive(Debug, Clone)]
pub struct TaskInitializer {
    pool: PgPool,
}

impl TaskInitializer {
    /// An initializer on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// See [`create_task`].
    pub async fn create_task(&self, request: &TaskRequest) -> Result<CreatedTask, CreateTaskError> {
        create_task(&self.pool, request).await
    }
}
