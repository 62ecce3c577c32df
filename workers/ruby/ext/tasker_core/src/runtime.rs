//! Starting and stopping the embedded worker.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use magnus::{Error, Module, Ruby};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use tasker_shared::config as settings;
use tasker_shared::database;
use tasker_worker::handlers::HandlerRegistry;
use tasker_worker::status::WorkerStatus;
use tasker_worker::task_template_manager::TaskTemplateManager;
use tasker_worker::{WorkerConfig, WorkerCore};

use crate::dispatch::QUEUE;
use crate::ffi::RubyHandler;

struct Running {
    _runtime: tokio::runtime::Runtime,
    shutdown: CancellationToken,
    stopped: Arc<(Mutex<bool>, Condvar)>,
    status: Arc<WorkerStatus>,
}

static WORKER: Mutex<Option<Running>> = Mutex::new(None);

fn worker() -> std::sync::MutexGuard<'static, Option<Running>> {
    WORKER.lock().unwrap_or_else(|e| e.into_inner())
}

fn failure(ruby: &Ruby, message: String) -> Error {
    let class = ruby
        .class_object()
        .const_get::<_, magnus::RModule>("TaskerCore")
        .and_then(|m| m.const_get::<_, magnus::ExceptionClass>("WorkerError"))
        .unwrap_or_else(|_| ruby.exception_runtime_error());
    Error::new(class, message)
}

/// `TaskerCore::Native.bootstrap(options_json)`: loads the configuration and templates,
/// registers the templates, and starts claiming steps. Returns JSON with the worker's
/// id, namespaces and concurrency.
pub fn bootstrap(ruby: &Ruby, options_json: String) -> Result<String, Error> {
    let options: Value = serde_json::from_str(&options_json).map_err(|e| {
        Error::new(
            ruby.exception_arg_error(),
            format!("bootstrap options are not JSON: {e}"),
        )
    })?;
    let mut guard = worker();
    if guard.is_some() {
        return Err(failure(
            ruby,
            "the worker is already running in this process".into(),
        ));
    }
    let text = |k: &str| options.get(k).and_then(Value::as_str).map(str::to_string);
    let config_file = text("config").map(PathBuf::from);
    let (mut config, _) =
        settings::load(config_file.as_deref()).map_err(|e| failure(ruby, e.to_string()))?;
    if let Some(path) = text("templates") {
        config.worker.template_path = PathBuf::from(path);
    }
    tasker_shared::process::init_tracing(&config.logging.format, &config.logging.level);
    if config.database.url.is_empty() {
        return Err(failure(
            ruby,
            "no database URL: set DATABASE_URL (or database.url in a config file)".into(),
        ));
    }
    let health_port = config.worker.health_port;
    let mut worker_config = WorkerConfig::from_settings(&config);
    worker_config.worker_id = text("worker_id")
        .or_else(|| {
            std::env::var("TASKER_WORKER_ID")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|| format!("ruby-worker-{}", std::process::id()));
    let requested: Vec<String> = options
        .get("namespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for ns in &requested {
        pgmq_notify::validate_namespace(ns)
            .map_err(|e| Error::new(ruby.exception_arg_error(), e.to_string()))?;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tasker-runtime")
        .enable_all()
        .build()
        .map_err(|e| failure(ruby, format!("cannot start the runtime: {e}")))?;
    // Stops the worker and its health endpoint together.
    let shutdown = CancellationToken::new();
    let started = runtime.block_on(async {
        let mut templates = TaskTemplateManager::new(&worker_config.template_path);
        templates
            .load_templates()
            .await
            .map_err(|e| e.to_string())?;
        for problem in templates.problems() {
            tracing::error!("template not loaded: {problem}");
        }
        let mut registry = HandlerRegistry::new();
        for loaded in templates.templates() {
            for step in &loaded.template.steps {
                registry.register(
                    step.handler.callable.clone(),
                    RubyHandler::new(step.handler.callable.clone()),
                );
            }
        }
        let pool = database::connect(&worker_config.database_url, &worker_config.pool)
            .await
            .map_err(|e| format!("connecting to the database: {e}"))?;
        if !database::schema_is_current(&pool)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(
                "the database is not migrated; run `tasker-server migrate` first".to_string(),
            );
        }
        templates
            .register_all(&pool)
            .await
            .map_err(|e| e.to_string())?;
        let namespaces: Vec<String> = if requested.is_empty() {
            templates.namespaces().into_iter().collect()
        } else {
            requested.clone()
        };
        if namespaces.is_empty() {
            return Err(format!(
                "nothing to serve: no valid template under {} and no namespaces given",
                worker_config.template_path.display()
            ));
        }
        let max = worker_config.max_concurrent_steps;
        let id = worker_config.worker_id.clone();
        let core = WorkerCore::with_pool(worker_config, pool.clone(), registry, namespaces.clone())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(port) = health_port {
            // The recorder is process-wide: a second start in one process serves health
            // without metrics.
            let prometheus = tasker_worker::metrics::install_prometheus().ok();
            let app = tasker_worker::health::router(
                pool,
                core.status(),
                id.clone(),
                namespaces.clone(),
                prometheus,
            );
            let address = std::net::SocketAddr::from(([0, 0, 0, 0], port));
            tasker_worker::health::serve(address, app, shutdown.clone())
                .await
                .map_err(|e| format!("health port {port}: cannot listen on {address}: {e}"))?;
        }
        Ok::<_, String>((core, namespaces, max, id))
    });
    let (core, namespaces, max, worker_id) = started.map_err(|e| failure(ruby, e))?;

    QUEUE.open();
    let stopped = Arc::new((Mutex::new(false), Condvar::new()));
    let status = core.status();
    {
        let (shutdown, stopped) = (shutdown.clone(), stopped.clone());
        runtime.spawn(async move {
            if let Err(error) = core.run(shutdown).await {
                tracing::error!(%error, "the Ruby worker's runtime failed");
            }
            // Every handler has finished or been given back: release the Ruby threads.
            QUEUE.close();
            let (lock, cv) = &*stopped;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
        });
    }
    *guard = Some(Running {
        _runtime: runtime,
        shutdown,
        stopped,
        status,
    });
    Ok(
        json!({"worker_id": worker_id, "namespaces": namespaces, "max_concurrent_steps": max})
            .to_string(),
    )
}

/// `TaskerCore::Native.status`: JSON with `running` (started and not yet stopped),
/// `claiming` (taking new steps) and the step counters.
pub fn status() -> String {
    match &*worker() {
        Some(r) => {
            let s = r.status.snapshot();
            let stopped = *r.stopped.0.lock().unwrap_or_else(|e| e.into_inner());
            json!({"running": !stopped, "claiming": s.running, "steps": s}).to_string()
        }
        None => json!({"running": false, "claiming": false}).to_string(),
    }
}

/// `TaskerCore::Native.request_shutdown`: stop claiming; running handlers finish.
pub fn request_shutdown() -> bool {
    match &*worker() {
        Some(r) => {
            r.shutdown.cancel();
            true
        }
        None => false,
    }
}

struct StopWait {
    stopped: Arc<(Mutex<bool>, Condvar)>,
    timeout: Duration,
    done: bool,
}

unsafe extern "C" fn wait_stopped_without_gvl(
    data: *mut std::ffi::c_void,
) -> *mut std::ffi::c_void {
    // SAFETY: `data` is the `StopWait` that `wait_stopped` keeps alive for the call.
    let w = unsafe { &mut *(data as *mut StopWait) };
    let (lock, cv) = &*w.stopped;
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let (guard, _) = cv
        .wait_timeout_while(guard, w.timeout, |stopped| !*stopped)
        .unwrap_or_else(|e| e.into_inner());
    w.done = *guard;
    std::ptr::null_mut()
}

/// `TaskerCore::Native.wait_stopped(timeout_seconds)`: waits (GVL released) until the
/// worker has stopped, then drops its runtime. Returns whether it stopped in time.
pub fn wait_stopped(timeout_seconds: f64) -> bool {
    let Some(stopped) = worker().as_ref().map(|r| r.stopped.clone()) else {
        return true;
    };
    let mut w = StopWait {
        stopped,
        timeout: Duration::from_secs_f64(timeout_seconds.clamp(0.0, 86_400.0)),
        done: false,
    };
    // SAFETY: the callback touches only `w` (no Ruby API); `w` outlives the call.
    unsafe {
        rb_sys::rb_thread_call_without_gvl(
            Some(wait_stopped_without_gvl),
            &mut w as *mut StopWait as *mut std::ffi::c_void,
            None,
            std::ptr::null_mut(),
        );
    }
    if w.done {
        // Drop the runtime outside the lock's critical path.
        let running = worker().take();
        if let Some(r) = running {
            r._runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
    w.done
}
