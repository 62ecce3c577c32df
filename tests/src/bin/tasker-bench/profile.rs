//! Where the time goes during a phase: CPU seconds of the server, the worker and every
//! PostgreSQL backend (from /proc), and, when the cluster preloads pg_stat_statements,
//! the statements that took the most execution time.

use sqlx::PgPool;

/// CPU seconds used so far by the server, the worker and PostgreSQL's processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    pub server: f64,
    pub worker: f64,
    pub postgres: f64,
}

impl CpuSample {
    pub fn take(server: u32, worker: u32) -> Self {
        let postgres = std::fs::read_dir("/proc")
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|pid| {
                        std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .is_ok_and(|c| c.trim() == "postgres")
                    })
                    .map(cpu_seconds)
                    .sum()
            })
            .unwrap_or(0.0);
        Self {
            server: cpu_seconds(server),
            worker: cpu_seconds(worker),
            postgres,
        }
    }

    /// CPU used between `earlier` and `self`, per step done in between, in ms.
    pub fn per_step_ms(&self, earlier: &CpuSample, steps: f64) -> CpuSample {
        let per = |a: f64, b: f64| {
            if steps > 0.0 {
                (a - b) * 1000.0 / steps
            } else {
                0.0
            }
        };
        CpuSample {
            server: per(self.server, earlier.server),
            worker: per(self.worker, earlier.worker),
            postgres: per(self.postgres, earlier.postgres),
        }
    }
}

/// utime + stime of a process, in seconds (Linux's clock tick is 100 Hz).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Resets pg_stat_statements; false when the cluster does not preload it.
pub async fn reset_statements(pool: &PgPool) -> bool {
    if sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await
        .is_err()
    {
        return false;
    }
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(pool)
        .await
        .is_ok()
}

/// The `n` statements with the most total planning plus execution time since the reset:
/// (plan ms, execution ms, calls, query). Planning time is 0 unless the cluster sets
/// `pg_stat_statements.track_planning = on`.
pub async fn top_statements(pool: &PgPool, n: i64) -> Vec<(f64, f64, i64, String)> {
    sqlx::query_as::<_, (f64, f64, i64, String)>(
        "SELECT total_plan_time, total_exec_time, calls, regexp_replace(left(query, 100), '\\s+', ' ', 'g')
         FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT $1",
    )
    .bind(n)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}
