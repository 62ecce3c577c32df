//! `tasker-server dev`: a complete single-machine Tasker in one process.
//!
//! PostgreSQL (DATABASE_URL, or a throwaway cluster under target/tasker-dev/), PGMQ and
//! the migrations, the orchestration and the REST API, and a native Rust worker serving
//! the example templates; then one demo task, and a banner saying what runs where.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use tasker_orchestration::OrchestrationCore;
use tasker_orchestration::lifecycle::task_initializer::create_task;
use tasker_shared::api::TaskRequest;
use tasker_shared::config::TaskerConfig;
use tasker_shared::database::step::read as steps;
use tasker_shared::database::task::transition::SETTLED_CHANNEL;
use tasker_worker::WorkerBuilder;

use crate::embedded_pg::EmbeddedPostgres;

/// Options of `tasker-server dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Keep the throwaway PostgreSQL cluster's files after Ctrl-C.
    #[arg(long)]
    keep_data: bool,
    /// Where the throwaway cluster lives.
    #[arg(long, default_value = "target/tasker-dev")]
    data_dir: PathBuf,
    /// Skip the demo task.
    #[arg(long)]
    no_demo: bool,
}

/// Runs until Ctrl-C, SIGTERM or SIGHUP.
pub async fn run(args: DevArgs, mut config: TaskerConfig) -> anyhow::Result<()> {
    let embedded = if config.database.url.is_empty() {
        eprintln!(
            "tasker dev: starting a throwaway PostgreSQL under {}",
            args.data_dir.display()
        );
        let pg = EmbeddedPostgres::start(&args.data_dir)?;
        config.database.url = pg.url.clone();
        Some(pg)
    } else {
        None
    };
    let result = serve(
        &args,
        config,
        embedded.as_ref().map(|p| p.dir().display().to_string()),
    )
    .await;
    if let Some(pg) = embedded {
        if args.keep_data {
            eprintln!(
                "tasker dev: kept the PostgreSQL files in {}",
                pg.dir().display()
            );
        }
        pg.stop(args.keep_data);
    }
    result
}

async fn serve(
    args: &DevArgs,
    config: TaskerConfig,
    data_dir: Option<String>,
) -> anyhow::Result<()> {
    let bind: SocketAddr = config.web.bind_address;
    let core = OrchestrationCore::from_settings(config.clone())
        .await
        .context("starting the orchestration")?;
    let pool = core.pool().clone();

    // The worker has a pool of its own: the orchestration closes its pool when it stops,
    // and the worker still needs one to give its steps back.
    let worker = WorkerBuilder::new(config.clone())
        .worker_id_prefix("dev-worker")
        .health_endpoint(false)
        .load()
        .await
        .map_err(|e| match e {
            tasker_worker::Error::NothingToServe { template_path } => anyhow::anyhow!(
                "no templates under {template_path}: run from the repository root or set TASKER_TEMPLATE_PATH"
            ),
            other => other.into(),
        })?
        .start(tasker_worker_rust::registry())
        .await?;
    let namespaces = worker.namespaces().to_vec();

    // Ctrl-C, SIGTERM or SIGHUP stops the worker first (its handlers finish, or their
    // steps are given back, and its last results are processed), then the orchestration.
    let stop = CancellationToken::new();
    tasker_shared::process::cancel_on_signal(stop.clone());
    let stop_server = CancellationToken::new();
    let mut server = tokio::spawn(core.run(stop_server.clone()));
    let mut worker = tokio::spawn(worker.run(stop.clone()));
    wait_for_port(bind).await;

    let api = format!(
        "http://{}",
        if bind.ip().is_unspecified() {
            format!("127.0.0.1:{}", bind.port())
        } else {
            bind.to_string()
        }
    );
    println!();
    println!("  Tasker is running (development mode)");
    println!("  API           {api}   (OpenAPI UI: {api}/api-docs/ui)");
    println!("  database      {}", config.database.url);
    if let Some(dir) = &data_dir {
        println!(
            "                a throwaway cluster in {dir}; removed on exit unless --keep-data"
        );
    }
    println!(
        "  worker        in process, namespaces {}",
        namespaces.join(", ")
    );
    println!(
        "  log level     {} (RUST_LOG overrides)",
        config.logging.level
    );
    println!();
    println!(
        "  try:  tasker-cli --url {api} task create --template linear_workflow --context '{{\"even_number\": 2}}' --wait"
    );
    println!("  (from the repository: cargo run --bin tasker-cli -- --url {api} task create ...)");
    println!();

    if !args.no_demo {
        match demo(&pool).await {
            Ok(line) => println!("  demo: {line}\n"),
            Err(e) => eprintln!("tasker dev: the demo task did not complete: {e:#}"),
        }
    }
    println!("  Ctrl-C stops everything.");

    // Either stopping (a signal, or a failure of one) stops the other.
    let (worked, served) = tokio::select! {
        worked = &mut worker => {
            stop_server.cancel();
            (worked, server.await)
        }
        served = &mut server => {
            stop.cancel();
            (worker.await, served)
        }
    };
    served.context("the orchestration task")??;
    worked.context("the worker task")??;
    eprintln!("tasker dev: stopped");
    Ok(())
}

async fn wait_for_port(bind: SocketAddr) {
    let target = if bind.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bind.port()))
    } else {
        bind
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(target).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs linear_workflow once and describes the outcome.
async fn demo(pool: &sqlx::PgPool) -> anyhow::Result<String> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(SETTLED_CHANNEL).await?;
    let started = Instant::now();
    let request = TaskRequest::new(
        "examples",
        "linear_workflow",
        json!({"even_number": 2, "demo_run": uuid::Uuid::now_v7()}),
    );
    let created = create_task(pool, &request)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let n = listener.recv().await?;
            let v: serde_json::Value = serde_json::from_str(n.payload()).unwrap_or_default();
            if v["task_uuid"] == json!(created.task_uuid) {
                return Ok::<_, anyhow::Error>(
                    v["status"].as_str().unwrap_or_default().to_string(),
                );
            }
        }
    })
    .await
    .context("no outcome within 30 s")??;
    let elapsed = started.elapsed();
    let last = steps::list_for_task(pool, created.task_uuid)
        .await?
        .into_iter()
        .find(|s| s.readiness.name == "linear_step_4")
        .and_then(|s| s.results)
        .map(|r| r["result"].to_string())
        .unwrap_or_else(|| "nothing".into());
    Ok(format!(
        "linear_workflow task {} is {status} after {:.1} ms; its last step returned {last}",
        created.task_uuid,
        elapsed.as_secs_f64() * 1000.0
    ))
}
