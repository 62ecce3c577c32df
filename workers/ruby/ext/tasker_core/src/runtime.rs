//! Starting and stopping the embedded worker.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use magnus::{Error, Module, Ruby};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use tasker_shared::config as settings;
use tasker_worker::WorkerBuilder;
use tasker_worker::handlers::HandlerRegistry;
use tasker_worker::status::WorkerStatus;

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

/// `TaskerCore::Native.bootstrap(options_json, resolvable)`: loads the configuration and
/// templates, asks `resolvable` (a Ruby proc, called on this Ruby thread with each
/// `handler.callable` of the served templates) which callables have a handler class,
/// refuses to start when any has none, registers the templates, and starts claiming
/// steps. Returns JSON with the worker's id, namespaces and concurrency.
pub fn bootstrap(
    ruby: &Ruby,
    options_json: String,
    resolvable: magnus::block::Proc,
) -> Result<String, Error> {
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
    let worker_id = text("worker_id").or_else(|| std::env::var("TASKER_WORKER_ID").ok());
    let requested: Vec<String> = options
        .get("namespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tasker-runtime")
        .enable_all()
        .build()
        .map_err(|e| failure(ruby, format!("cannot start the runtime: {e}")))?;
    let loaded = runtime
        .block_on(
            WorkerBuilder::new(config)
                .namespaces(requested)
                .worker_id(worker_id)
                .worker_id_prefix("ruby-worker")
                .load(),
        )
        .map_err(|e| failure(ruby, e.to_string()))?;
    // Only callables with a Ruby class get a handler; the start refuses the others.
    let mut registry = HandlerRegistry::new();
    for callable in loaded.callables() {
        if resolvable.call::<_, bool>((callable.clone(),))? {
            registry.register(callable.clone(), RubyHandler::new(callable));
        }
    }
    let worker = runtime
        .block_on(loaded.start(registry))
        .map_err(|e| failure(ruby, e.to_string()))?;
    let (namespaces, max, worker_id) = (
        worker.namespaces().to_vec(),
        worker.max_concurrent_steps(),
        worker.worker_id().to_string(),
    );

    QUEUE.open();
    let stopped = Arc::new((Mutex::new(false), Condvar::new()));
    let status = worker.status();
    let shutdown = CancellationToken::new();
    {
        let (shutdown, stopped) = (shutdown.clone(), stopped.clone());
        runtime.spawn(async move {
            if let Err(error) = worker.run(shutdown).await {
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
