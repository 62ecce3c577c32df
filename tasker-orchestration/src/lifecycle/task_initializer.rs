//! Creating a task from a registered template.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use tasker_shared::api::TaskRequest;
use tasker_shared::database::{named_task, task, transition};
use tasker_shared::identity::{self, identity_hash};
use tasker_shared::state_machine::TaskState;

use super::step_enqueuer::{TaskRoute, enqueue_steps};
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
#[derive(Debug, Clone, Copy)]
pub struct CreatedTask {
    /// The task.
    pub task_uuid: Uuid,
    /// Steps enqueued at once (the roots).
    pub enqueued_steps: usize,
}

/// Validates the request, creates the task with its steps, enqueues the root steps and
/// moves the task to `steps_in_process`, all in one transaction.
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

    let new = task::NewTask {
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

    let mut tx = pool.begin().await.map_err(Error::from)?;
    let created = match task::create(&mut tx, &named, &new).await? {
        task::CreateOutcome::Created(c) => c,
        task::CreateOutcome::Duplicate { existing_task_uuid } => {
            return Err(CreateTaskError::Duplicate { existing_task_uuid });
        }
    };
    let route = TaskRoute {
        task_uuid: created.task_uuid,
        namespace: &named.namespace,
        correlation_id: new.correlation_id,
    };
    let enqueued = enqueue_steps(&mut tx, route, &created.root_steps).await?;
    transition::transition_task(
        &mut tx,
        created.task_uuid,
        &[TaskState::Pending],
        TaskState::StepsInProcess,
        &json!({"event": "steps_enqueued", "count": enqueued.len()}),
    )
    .await?;
    tx.commit().await.map_err(Error::from)?;
    crate::metrics::task_requested(&named.namespace, clock.elapsed());
    tracing::info!(
        task_uuid = %created.task_uuid,
        correlation_id = %new.correlation_id,
        template = %named.template.full_name(),
        "task created"
    );
    Ok(CreatedTask {
        task_uuid: created.task_uuid,
        enqueued_steps: enqueued.len(),
    })
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
