//! `OrchestrationCore`: the running orchestration (loops plus the REST API).

use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use pgmq_notify::QueueListener;
use tasker_shared::config::TaskerConfig;
use tasker_shared::database;
use tasker_shared::messaging::ORCHESTRATION_NAMESPACE;

use crate::config::OrchestrationConfig;
use crate::error::Result;
use crate::event_systems;
use crate::lifecycle::staleness::StalenessDetector;
use crate::web;

/// A connected, migrated orchestration, ready to [`run`](Self::run).
#[derive(Debug)]
pub struct OrchestrationCore {
    config: OrchestrationConfig,
    settings: TaskerConfig,
    pool: PgPool,
}

impl OrchestrationCore {
    /// Connects, installs PGMQ and applies the migrations, with default settings for
    /// everything `config` does not say.
    pub async fn from_config(config: OrchestrationConfig) -> Result<Self> {
        let mut settings = TaskerConfig::default();
        settings.database.url = config.database_url.clone();
        settings.web.bind_address = config.bind_address;
        let pool = database::connect(&config.database_url, &config.pool).await?;
        database::setup(&pool).await?;
        Ok(Self {
            config,
            settings,
            pool,
        })
    }

    /// Connects and, when `database.auto_migrate` is true, installs PGMQ and applies the
    /// migrations; otherwise checks that they are applied.
    pub async fn from_settings(settings: TaskerConfig) -> Result<Self> {
        let config = OrchestrationConfig::from_settings(&settings);
        let pool = database::connect(&config.database_url, &config.pool).await?;
        if settings.database.auto_migrate {
            database::setup(&pool).await?;
        } else if !database::schema_is_current(&pool).await? {
            return Err(crate::error::Error::Corrupt(
                "the database is not migrated and database.auto_migrate is false: run `tasker-server migrate` first".into(),
            ));
        }
        Ok(Self {
            config,
            settings,
            pool,
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves the API and runs the lifecycle loops until `shutdown` is cancelled, then
    /// stops accepting requests and finishes the work in flight.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let listener = if self.config.deployment_mode.listens() {
            let (listener, _task) = QueueListener::start(
                self.pool.clone(),
                vec![ORCHESTRATION_NAMESPACE.to_string()],
                shutdown.clone(),
            )
            .await?;
            Some(listener)
        } else {
            None
        };

        let tcp = tokio::net::TcpListener::bind(self.config.bind_address).await?;
        let local = tcp.local_addr()?;
        tracing::info!(address = %local, mode = ?self.config.deployment_mode, "tasker-server listening");

        let mut tasks = JoinSet::new();
        {
            // Result batches commit durably: the messages they send get ids from the
            // queue's sequence, and a worker holds a message's id across a PostgreSQL
            // crash, so a batch lost in one could hand the same id to another step's
            // message (docs/operations.md, Durability).
            let pool = self.pool.clone();
            let config = self.config.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                event_systems::run_result_consumer(pool, listener, &config, shutdown).await
            });
        }
        {
            let pool = self.pool.clone();
            let interval = self.config.readiness_sweep_interval;
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                event_systems::run_readiness_sweeper(pool, interval, shutdown).await;
                Ok(())
            });
        }
        {
            let detector = StalenessDetector::new(self.pool.clone(), self.config.staleness);
            let interval = self.config.staleness_interval;
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                detector.run(interval, shutdown).await;
                Ok(())
            });
        }
        if let Some(policy) = self.config.retention {
            let pool = self.pool.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                crate::maintenance::run_retention(pool, policy, shutdown).await;
                Ok(())
            });
        }
        {
            let auth = web::Authenticator::from_config(&self.settings.web.auth)
                .map_err(crate::error::Error::Corrupt)?;
            let prometheus = match crate::metrics::install_prometheus() {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics is disabled");
                    None
                }
            };
            let state = web::AppState::with_config(
                self.pool.clone(),
                self.settings.clone(),
                auth,
                prometheus,
            );
            let app = web::app(state);
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                axum::serve(tcp, app)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await?;
                Ok(())
            });
        }

        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let outcome = match joined {
                Ok(outcome) => outcome,
                Err(join_error) => {
                    tracing::error!(%join_error, "orchestration task panicked");
                    shutdown.cancel();
                    continue;
                }
            };
            if let Err(error) = outcome {
                tracing::error!(%error, "orchestration component failed; shutting down");
                shutdown.cancel();
                first_error.get_or_insert(error);
            }
        }
        self.pool.close().await;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
