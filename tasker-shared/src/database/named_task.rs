//! The template registry: namespaces, named tasks and named steps.

use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{Error, Result};
use crate::identity::canonical_json;
use crate::template::{IdentityStrategy, TaskTemplate};

/// What registering a template did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A new (namespace, name, version).
    Created,
    /// The same version existed with different content and was replaced. Tasks that
    /// already exist keep the step definitions they were created with.
    Updated,
    /// The same content was already registered; nothing was written.
    Unchanged,
}

/// A registered template.
#[derive(Debug, Clone)]
pub struct NamedTask {
    /// Row id.
    pub named_task_uuid: Uuid,
    /// Namespace name.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
    /// How duplicate requests are recognised.
    pub identity_strategy: IdentityStrategy,
    /// The template itself.
    pub template: TaskTemplate,
    /// The registry rows of its steps' names (`named_steps`), as found with it; a name
    /// registered since is looked up at task creation.
    pub named_steps: std::collections::HashMap<String, Uuid>,
}

/// Registers a template: creates its namespace (and the namespace's worker queue) and
/// named steps, and upserts `(namespace, name, version)`. Re-registering identical
/// content writes nothing.
pub async fn register(pool: &PgPool, template: &TaskTemplate) -> Result<RegisterOutcome> {
    let configuration = serde_json::to_value(template)?;
    let content_hash = {
        let mut h = Sha256::new();
        h.update(canonical_json(&configuration).as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };

    let existing: Option<String> = sqlx::query_scalar(
        "SELECT nt.content_hash FROM tasker.named_tasks nt
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
         WHERE ns.name = $1 AND nt.name = $2 AND nt.version = $3",
    )
    .bind(&template.namespace_name)
    .bind(&template.name)
    .bind(&template.version)
    .fetch_optional(pool)
    .await?;
    if existing.as_deref() == Some(content_hash.as_str()) {
        return Ok(RegisterOutcome::Unchanged);
    }

    let queue = pgmq_notify::QueueName::worker(&template.namespace_name)?;
    pgmq_notify::PgmqClient::new(pool.clone())
        .create_queue(&queue)
        .await?;

    let mut tx = pool.begin().await?;
    let namespace_uuid: Uuid = sqlx::query_scalar(
        "INSERT INTO tasker.task_namespaces (task_namespace_uuid, name) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET updated_at = tasker.task_namespaces.updated_at
         RETURNING task_namespace_uuid",
    )
    .bind(Uuid::now_v7())
    .bind(&template.namespace_name)
    .fetch_one(&mut *tx)
    .await?;

    let step_names: Vec<&str> = template.steps.iter().map(|s| s.name.as_str()).collect();
    ensure_named_steps(&mut *tx, &step_names).await?;

    let inserted: bool = sqlx::query_scalar(
        "INSERT INTO tasker.named_tasks
             (named_task_uuid, task_namespace_uuid, name, version, description, configuration, content_hash, identity_strategy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (task_namespace_uuid, name, version) DO UPDATE SET
             description = EXCLUDED.description,
             configuration = EXCLUDED.configuration,
             content_hash = EXCLUDED.content_hash,
             identity_strategy = EXCLUDED.identity_strategy,
             updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(Uuid::now_v7())
    .bind(namespace_uuid)
    .bind(&template.name)
    .bind(&template.version)
    .bind(&template.description)
    .bind(&configuration)
    .bind(&content_hash)
    .bind(template.identity_strategy.as_str())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(if inserted {
        RegisterOutcome::Created
    } else {
        RegisterOutcome::Updated
    })
}

/// Creates the named steps that do not exist yet.
pub async fn ensure_named_steps<'e>(executor: impl PgExecutor<'e>, names: &[&str]) -> Result<()> {
    let ids: Vec<Uuid> = names.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO tasker.named_steps (named_step_uuid, name)
         SELECT * FROM unnest($1::uuid[], $2::text[])
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&ids)
    .bind(names)
    .execute(executor)
    .await?;
    Ok(())
}

/// Looks up a template; without a version, the newest registered one (by creation time,
/// since version strings need not be semver).
pub async fn find<'e>(
    executor: impl PgExecutor<'e>,
    namespace: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Option<NamedTask>> {
    type Row = (
        Uuid,
        String,
        String,
        String,
        String,
        serde_json::Value,
        sqlx::types::Json<std::collections::HashMap<String, Uuid>>,
    );
    let row: Option<Row> = sqlx::query_as(
        // Each of the template's steps is looked up by name (LATERAL ... OFFSET 0): as a
        // join, the plan read every named step ever registered to find a handful.
        "SELECT nt.named_task_uuid, ns.name, nt.name, nt.version, nt.identity_strategy, nt.configuration,
                COALESCE((SELECT jsonb_object_agg(s.name, s.named_step_uuid)
                          FROM jsonb_array_elements(nt.configuration -> 'steps') st
                          CROSS JOIN LATERAL (SELECT s.name, s.named_step_uuid
                                              FROM tasker.named_steps s
                                              WHERE s.name = st ->> 'name' OFFSET 0) s),
                         '{}')
         FROM tasker.task_namespaces ns
         CROSS JOIN LATERAL (SELECT nt.* FROM tasker.named_tasks nt
                             WHERE nt.task_namespace_uuid = ns.task_namespace_uuid
                               AND nt.name = $2 AND ($3::text IS NULL OR nt.version = $3)
                             ORDER BY nt.created_at DESC, nt.named_task_uuid DESC
                             LIMIT 1) nt
         WHERE ns.name = $1",
    )
    .bind(namespace)
    .bind(name)
    .bind(version)
    .fetch_optional(executor)
    .await?;
    let Some((named_task_uuid, namespace, name, version, strategy, configuration, named_steps)) =
        row
    else {
        return Ok(None);
    };
    let template: TaskTemplate = serde_json::from_value(configuration)?;
    let identity_strategy = match strategy.as_str() {
        "strict" => IdentityStrategy::Strict,
        "caller_provided" => IdentityStrategy::CallerProvided,
        "always_unique" => IdentityStrategy::AlwaysUnique,
        other => return Err(Error::Corrupt(format!("identity strategy {other:?}"))),
    };
    Ok(Some(NamedTask {
        named_task_uuid,
        namespace,
        name,
        version,
        identity_strategy,
        template,
        named_steps: named_steps.0,
    }))
}

/// A registry row, for listings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NamedTaskRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: Option<String>,
    /// Identity strategy.
    pub identity_strategy: String,
    /// The template JSON.
    pub configuration: serde_json::Value,
    /// First registered.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Every registered template, by namespace, name and version; or one of them.
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    exact: Option<(&str, &str, &str)>,
) -> Result<Vec<NamedTaskRow>> {
    let (ns, name, version) = match exact {
        Some((a, b, c)) => (Some(a), Some(b), Some(c)),
        None => (None, None, None),
    };
    let rows = sqlx::query_as::<_, NamedTaskRow>(
        "SELECT ns.name AS namespace, nt.name, nt.version, nt.description, nt.identity_strategy,
                nt.configuration, nt.created_at, nt.updated_at
         FROM tasker.named_tasks nt
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
         WHERE ($1::text IS NULL OR (ns.name = $1 AND nt.name = $2 AND nt.version = $3))
         ORDER BY ns.name, nt.name, nt.created_at",
    )
    .bind(ns)
    .bind(name)
    .bind(version)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
