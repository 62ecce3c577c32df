//! The one start-up path of every worker process (the Rust `tasker-worker` binary, the
//! Ruby gem, `tasker-server dev`): a language bridge parses its own options and calls
//! this, in two stages.
//!
//! 1. [`WorkerBuilder::load`]: settings, templates loaded (broken files logged), the
//!    namespaces to serve decided. The language then builds its [`HandlerRegistry`]
//!    for the callables the served templates name ([`LoadedWorker::callables`]).
//! 2. [`LoadedWorker::start`]: every served step's callable checked against the
//!    registry (a missing one refuses the start, listing them all), the database
//!    connected and its schema checked, the templates registered, the queues created,
//!    and the health endpoint bound. [`Worker::run`] then runs until shutdown.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::sync::{CancellationToken, DropGuard};

use tasker_shared::config::TaskerConfig;
use tasker_shared::database;

use crate::config::WorkerConfig;
use crate::error::{Error, MissingHandler, Result};
use crate::handlers::HandlerRegistry;
use crate::health;
use crate::runtime::WorkerCore;
use crate::status::WorkerStatus;
use crate::task_template_manager::TaskTemplateManager;

/// Most connections a worker's pool opens for its handler slots.
const MAX_POOL: u32 = 64;

/// Options every worker language shares; see the [module docs](self).
#[derive(Debug)]
pub struct WorkerBuilder {
    settings: TaskerConfig,
    namespaces: Vec<String>,
    worker_id: Option<String>,
    worker_id_prefix: &'static str,
    health: bool,
    pool: Option<PgPool>,
}

impl WorkerBuilder {
    /// A worker configured by the layered settings (already overridden by the
    /// language's own options).
    pub fn new(settings: TaskerConfig) -> Self {
        Self {
            settings,
            namespaces: Vec::new(),
            worker_id: None,
            worker_id_prefix: "worker",
            health: true,
            pool: None,
        }
    }

    /// Namespaces to serve; none (the default) serves every namespace of the templates.
    pub fn namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// The worker's name in results and transitions; default `<prefix>-<pid>`.
    pub fn worker_id(mut self, worker_id: Option<String>) -> Self {
        self.worker_id = worker_id.filter(|id| !id.is_empty());
        self
    }

    /// The prefix of the default worker id (`worker`, `ruby-worker`, ...).
    pub fn worker_id_prefix(mut self, prefix: &'static str) -> Self {
        self.worker_id_prefix = prefix;
        self
    }

    /// Serve the health endpoint when `worker.health_port` is set (the default); off for
    /// a worker embedded in another server.
    pub fn health_endpoint(mut self, serve: bool) -> Self {
        self.health = serve;
        self
    }

    /// Run on this pool instead of connecting one.
    pub fn pool(mut self, pool: PgPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Checks the options and loads the templates; see the [module docs](self).
    pub async fn load(self) -> Result<LoadedWorker> {
        if self.settings.database.url.is_empty() && self.pool.is_none() {
            return Err(Error::NoDatabaseUrl);
        }
        for ns in &self.namespaces {
            pgmq_notify::validate_namespace(ns).map_err(|e| Error::Namespace {
                namespace: ns.clone(),
                problem: e.to_string(),
            })?;
        }
        let mut config = WorkerConfig::from_settings(&self.settings);
        config.worker_id = self
            .worker_id
            .unwrap_or_else(|| format!("{}-{}", self.worker_id_prefix, std::process::id()));
        // A connection per handler slot, and a few for the claim, the listener and the
        // lease keepers.
        config.pool.max_connections = config.pool.max_connections.max(
            u32::try_from(config.max_concurrent_steps + 3)
                .unwrap_or(MAX_POOL)
                .min(MAX_POOL),
        );
        let mut templates = TaskTemplateManager::new(&config.template_path);
        templates.load_templates().await?;
        for problem in templates.problems() {
            tracing::error!("template not loaded: {problem}");
        }
        let namespaces: Vec<String> = if self.namespaces.is_empty() {
            templates.namespaces().into_iter().collect()
        } else {
            self.namespaces
        };
        if namespaces.is_empty() {
            return Err(Error::NothingToServe {
                template_path: config.template_path.display().to_string(),
            });
        }
        Ok(LoadedWorker {
            config,
            templates,
            namespaces,
            health_port: self.settings.worker.health_port.filter(|_| self.health),
            pool: self.pool,
        })
    }
}

/// A worker whose templates are loaded, waiting for its handlers.
#[derive(Debug)]
pub struct LoadedWorker {
    config: WorkerConfig,
    templates: TaskTemplateManager,
    namespaces: Vec<String>,
    health_port: Option<u16>,
    pool: Option<PgPool>,
}

impl LoadedWorker {
    /// The namespaces to serve.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The worker's settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// The templates loaded, of every namespace.
    pub fn templates(&self) -> &TaskTemplateManager {
        &self.templates
    }

    /// Every `handler.callable` of the served templates, once each.
    pub fn callables(&self) -> BTreeSet<String> {
        self.served_steps().map(|(_, _, c)| c.to_string()).collect()
    }

    /// (template, step, callable) of every step of the served templates.
    fn served_steps(&self) -> impl Iterator<Item = (String, &str, &str)> {
        self.templates
            .templates()
            .iter()
            .filter(|t| self.namespaces.contains(&t.template.namespace_name))
            .flat_map(|t| {
                let name = t.template.full_name();
                t.template
                    .steps
                    .iter()
                    .map(move |s| (name.clone(), s.name.as_str(), s.handler.callable.as_str()))
            })
    }

    /// Checks the handlers, connects and starts; see the [module docs](self).
    pub async fn start(self, registry: HandlerRegistry) -> Result<Worker> {
        let missing: Vec<MissingHandler> = self
            .served_steps()
            .filter(|(_, _, callable)| registry.get(callable).is_none())
            .map(|(template, step, callable)| MissingHandler {
                template,
                step: step.to_string(),
                callable: callable.to_string(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingHandlers(missing));
        }
        let owns_pool = self.pool.is_none();
        let pool = match self.pool {
            Some(pool) => pool,
            None => database::connect(&self.config.database_url, &self.config.pool).await?,
        };
        if !database::schema_is_current(&pool).await? {
            return Err(Error::SchemaNotMigrated);
        }
        for (name, outcome) in self.templates.register_all(&pool).await? {
            tracing::info!(template = %name, ?outcome, "template registered");
        }
        let worker_id = self.config.worker_id.clone();
        let max_concurrent_steps = self.config.max_concurrent_steps;
        let core =
            WorkerCore::with_pool(self.config, pool.clone(), registry, self.namespaces.clone())
                .await?;
        let stop_health = CancellationToken::new();
        if let Some(port) = self.health_port {
            // The recorder is process-wide: a second worker in one process serves health
            // without metrics.
            let prometheus = match crate::metrics::install_prometheus() {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics is empty");
                    None
                }
            };
            let app = health::router(
                pool.clone(),
                core.status(),
                worker_id.clone(),
                self.namespaces.clone(),
                prometheus,
            );
            let address = SocketAddr::from(([0, 0, 0, 0], port));
            health::serve(address, app, stop_health.clone())
                .await
                .map_err(|source| Error::HealthPort { address, source })?;
        }
        Ok(Worker {
            core,
            pool,
            worker_id,
            namespaces: self.namespaces,
            max_concurrent_steps,
            owns_pool,
            _health: stop_health.drop_guard(),
        })
    }
}

/// A started worker: connected, registered, its health endpoint listening.
#[derive(Debug)]
pub struct Worker {
    core: WorkerCore,
    pool: PgPool,
    worker_id: String,
    namespaces: Vec<String>,
    max_concurrent_steps: usize,
    /// The pool was connected here, so it is closed when the worker is done.
    owns_pool: bool,
    /// Stops the health endpoint when the worker is done.
    _health: DropGuard,
}

impl Worker {
    /// The worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The namespaces served.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Handlers running at once, at most.
    pub fn max_concurrent_steps(&self) -> usize {
        self.max_concurrent_steps
    }

    /// Live counters.
    pub fn status(&self) -> Arc<WorkerStatus> {
        self.core.status()
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs until `shutdown` is cancelled and the work in flight is finished or given
    /// back ([`WorkerCore::run`]), then stops the health endpoint and closes the pool it
    /// connected (so a database stopped next, as `tasker-server dev` does, finds no
    /// connection of it open).
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let outcome = self.core.run(shutdown).await;
        drop(self._health);
        if self.owns_pool {
            self.pool.close().await;
        }
        outcome
    }
}
