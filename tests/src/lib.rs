//! Harness for end-to-end tests: a fresh database, real `tasker-server` and
//! `tasker-worker` processes, and a `tasker-client` pointed at them.
//!
//! The binaries are taken from the same target directory as the test executable, so
//! build them first (`cargo build --bins`; the project's test command does).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use tasker_client::OrchestrationClient;
use tasker_shared::api::TaskResponse;
use tasker_shared::state_machine::TaskState;
use tasker_shared::testing::TestDb;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A binary built next to the running test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> or target/<profile>/<binary> → target/<profile>/<name>
    let mut dir = exe.parent().unwrap();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().unwrap();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first with `cargo build --bins` (the project's test command does)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process whose stderr is copied to a log file and watched line by line.
#[derive(Debug)]
pub struct Proc {
    /// Short name, for messages.
    pub name: String,
    /// The process; killed when this value is dropped.
    pub child: Child,
    /// Where its output goes.
    pub log_path: PathBuf,
    lines: watch::Receiver<(u64, String)>,
    /// Copies the output into the log; ends once the process closed its pipes.
    copier: Option<tokio::task::JoinHandle<()>>,
}

impl Proc {
    /// Starts `program` with `args` and `envs`, logging to `log_dir/<name>.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log_dir: &Path,
    ) -> Self {
        let log_path = log_dir.join(format!("{name}.log"));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let (tx, rx) = watch::channel((0u64, String::new()));
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let path = log_path.clone();
        let copier = tokio::spawn(async move {
            let mut file = tokio::fs::File::create(&path).await.unwrap();
            let mut err_lines = BufReader::new(stderr).lines();
            let mut out_lines = BufReader::new(stdout).lines();
            let mut n = 0u64;
            let (mut err_open, mut out_open) = (true, true);
            while err_open || out_open {
                let line = tokio::select! {
                    l = err_lines.next_line(), if err_open => match l { Ok(Some(l)) => l, _ => { err_open = false; continue } },
                    l = out_lines.next_line(), if out_open => match l { Ok(Some(l)) => l, _ => { out_open = false; continue } },
                };
                let _ = file.write_all(line.as_bytes()).await;
                let _ = file.write_all(b"\n").await;
                let _ = file.flush().await;
                n += 1;
                let _ = tx.send((n, line));
            }
        });
        Self {
            name: name.to_string(),
            child,
            log_path,
            lines: rx,
            copier: Some(copier),
        }
    }

    /// Waits until a line containing `needle` is printed (or fails with the log).
    pub async fn wait_for_line(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            // The log file has every line (the watch channel only the latest one).
            self.lines.borrow_and_update();
            if std::fs::read_to_string(&self.log_path).is_ok_and(|t| t.contains(needle)) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before printing {needle:?}:\n{}",
                    self.name,
                    self.log_tail(60)
                );
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                panic!(
                    "{} did not print {needle:?} within {timeout:?}:\n{}",
                    self.name,
                    self.log_tail(60)
                );
            }
            // Woken by the next line, or re-check a little later if output ended.
            let _ = tokio::time::timeout(
                remaining.min(Duration::from_millis(500)),
                self.lines.changed(),
            )
            .await;
        }
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`…) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("process is still running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    /// Its last lines are in the log when this returns.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => {
                // The process is gone, but the copier may still hold its last lines.
                if let Some(copier) = self.copier.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(5), copier).await;
                }
                status.unwrap()
            }
            Err(_) => panic!(
                "{} did not exit within {timeout:?}:\n{}",
                self.name,
                self.log_tail(40)
            ),
        }
    }

    /// Sends SIGKILL and waits for the process to end.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Options for [`Cluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Extra environment for every process.
    pub env: Vec<(String, String)>,
    /// Template path for the worker (default `config/tasks`).
    pub templates: PathBuf,
    /// Number of workers.
    pub workers: usize,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            templates: workspace_root().join("config/tasks"),
            workers: 1,
        }
    }
}

/// A database with servers and workers running against it.
#[derive(Debug)]
pub struct Cluster {
    /// The first server process.
    pub server: Proc,
    /// More server processes (see [`Cluster::add_server`]).
    pub more_servers: Vec<(Proc, OrchestrationClient)>,
    /// The worker processes.
    pub workers: Vec<Proc>,
    /// A client for the server.
    pub client: OrchestrationClient,
    /// The server's base URL.
    pub base_url: String,
    /// Where the logs are.
    pub log_dir: PathBuf,
    /// The database (dropped last).
    pub db: TestDb,
    env: Vec<(String, String)>,
    templates: PathBuf,
}

impl Cluster {
    /// A server and one worker serving `config/tasks`.
    pub async fn start() -> Self {
        Self::start_with(ClusterOptions::default()).await
    }

    /// A cluster with options.
    pub async fn start_with(options: ClusterOptions) -> Self {
        // An empty database: the server installs PGMQ and migrates it.
        let db = TestDb::empty().await;
        let log_dir = workspace_root()
            .join("target/e2e-logs")
            .join(uuid::Uuid::now_v7().to_string());
        std::fs::create_dir_all(&log_dir).unwrap();
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let mut env = vec![
            ("DATABASE_URL".to_string(), db.url.clone()),
            ("TASKER_ENV".into(), "test".into()),
            (
                "TASKER_CONFIG_DIR".into(),
                workspace_root().join("config/tasker").display().to_string(),
            ),
            (
                "RUST_LOG".into(),
                "info,tasker_orchestration=debug,tasker_worker=debug".into(),
            ),
        ];
        env.extend(options.env.iter().cloned());
        let server = start_server("server", port, &env, &log_dir).await;
        let mut cluster = Self {
            server,
            more_servers: Vec::new(),
            workers: Vec::new(),
            client: OrchestrationClient::new(&base_url).unwrap(),
            base_url,
            log_dir,
            db,
            env,
            templates: options.templates.clone(),
        };
        for _ in 0..options.workers {
            cluster.add_worker(&[]).await;
        }
        cluster
    }

    /// The environment every process of this cluster gets.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Starts another `tasker-server` on the same database; returns a client for it.
    pub async fn add_server(&mut self) -> OrchestrationClient {
        let port = free_port();
        let name = format!("server-{}", self.more_servers.len() + 1);
        let proc = start_server(&name, port, &self.env, &self.log_dir).await;
        let client = OrchestrationClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        self.more_servers.push((proc, client.clone()));
        client
    }

    /// Starts one more worker with extra arguments and waits until it runs.
    pub async fn add_worker(&mut self, extra_args: &[&str]) -> usize {
        let index = self.workers.len();
        let mut args = vec![
            "--templates".to_string(),
            self.templates.display().to_string(),
            "--worker-id".to_string(),
            format!("e2e-worker-{index}"),
        ];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut worker = Proc::spawn(
            &format!("worker-{index}"),
            &bin("tasker-worker"),
            &args,
            &self.env,
            &self.log_dir,
        );
        worker
            .wait_for_line("worker running", Duration::from_secs(60))
            .await;
        self.workers.push(worker);
        index
    }

    /// Polls the task until it reaches `state` (or any terminal state), for at most
    /// `timeout`. Panics with the task and the logs if it ends elsewhere.
    pub async fn wait_for_state(
        &self,
        task_uuid: uuid::Uuid,
        state: TaskState,
        timeout: Duration,
    ) -> TaskResponse {
        let deadline = Instant::now() + timeout;
        loop {
            let task = self.client.get_task(task_uuid).await.unwrap();
            if task.status == state {
                return task;
            }
            if task.status.is_terminal() || Instant::now() > deadline {
                panic!(
                    "task {task_uuid} is {} (wanted {state}) after {:?}:\n{}\n\n{}",
                    task.status,
                    timeout,
                    serde_json::to_string_pretty(&task).unwrap(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The tails of every process's log.
    pub fn logs(&self) -> String {
        let mut out = format!(
            "--- server ({}) ---\n{}\n",
            self.server.log_path.display(),
            self.server.log_tail(40)
        );
        let others = self
            .more_servers
            .iter()
            .map(|(p, _)| p)
            .chain(&self.workers);
        for w in others {
            out.push_str(&format!(
                "--- {} ({}) ---\n{}\n",
                w.name,
                w.log_path.display(),
                w.log_tail(40)
            ));
        }
        out
    }
}

async fn start_server(name: &str, port: u16, env: &[(String, String)], log_dir: &Path) -> Proc {
    let mut server_env = env.to_vec();
    server_env.push((
        "TASKER_WEB_BIND_ADDRESS".into(),
        format!("127.0.0.1:{port}"),
    ));
    let mut server = Proc::spawn(name, &bin("tasker-server"), &[], &server_env, log_dir);
    server
        .wait_for_line("tasker-server listening", Duration::from_secs(60))
        .await;
    server
}

/// The fixture templates of the failure and operations tests (namespace `e2e`).
pub fn fixture_templates() -> PathBuf {
    workspace_root().join("tests/fixtures/templates")
}
