//! A throwaway PostgreSQL cluster for `tasker-server dev`: initdb + pg_ctl on a free
//! port, everything under one directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A running cluster; [`EmbeddedPostgres::stop`] shuts it down.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin: PathBuf,
    dir: PathBuf,
    pub url: String,
}

fn is_root() -> bool {
    // Our uid, from /proc (no libc dependency needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Where `initdb` and `pg_ctl` are: PATH first, then the usual Debian/Ubuntu and
/// Homebrew locations.
pub fn find_server_binaries() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has(&dir) {
                return Some(dir);
            }
        }
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    for pattern_dir in ["/usr/lib/postgresql", "/usr/local/opt", "/opt/homebrew/opt"] {
        if let Ok(entries) = std::fs::read_dir(pattern_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if pattern_dir == "/usr/lib/postgresql" || name.starts_with("postgresql") {
                    candidates.push(e.path().join("bin"));
                }
            }
        }
    }
    candidates.push(PathBuf::from("/usr/local/pgsql/bin"));
    candidates.sort();
    candidates.into_iter().rev().find(|d| has(d))
}

fn run(
    bin: &Path,
    tool: &str,
    args: &[&str],
    as_postgres: bool,
) -> anyhow::Result<std::process::Output> {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    let out = cmd
        .args(args)
        .output()
        .with_context(|| format!("running {tool}"))?;
    Ok(out)
}

impl EmbeddedPostgres {
    /// Starts a fresh cluster under `dir` (replacing what is there).
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let Some(bin) = find_server_binaries() else {
            bail!(
                "no PostgreSQL server binaries (initdb, pg_ctl) found: install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16) or set DATABASE_URL to an existing database"
            );
        };
        let root = is_root();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut dir = dir.canonicalize()?;
        if root {
            // PostgreSQL refuses to run as root: run it as `postgres`, in a directory it
            // can reach.
            let chown = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status();
            let reachable = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !chown.is_ok_and(|s| s.success()) || !reachable {
                let _ = std::fs::remove_dir_all(&dir);
                dir = std::env::temp_dir().join(format!("tasker-dev-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(&dir)
                    .status()?;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = dir.join("data");
        let data_s = data.display().to_string();
        let out = run(
            &bin,
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            root,
        )?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let log = dir.join("server.log").display().to_string();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            dir.display()
        );
        let out = run(
            &bin,
            "pg_ctl",
            &[
                "-D", &data_s, "-l", &log, "-o", &opts, "-w", "-t", "60", "start",
            ],
            root,
        )?;
        if !out.status.success() {
            bail!("pg_ctl start failed; see {log}");
        }
        Ok(Self {
            bin,
            dir,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }

    /// The directory holding the cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the cluster and, unless `keep`, removes its directory.
    pub fn stop(self, keep: bool) {
        let data = self.dir.join("data").display().to_string();
        let _ = run(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "stop"],
            is_root(),
        );
        if !keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
