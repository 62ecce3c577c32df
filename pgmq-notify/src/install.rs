//! Installing PGMQ into a database.
//!
//! PGMQ 1.x is plain SQL, so no server-side extension binary is needed. When the `pgmq`
//! extension is already installed, it is used as is. Otherwise the SQL shipped inside the
//! `pgmq` crate is installed into schema `pgmq`; the installer records what it applied, so
//! running it again is a no-op.

use sqlx::PgPool;

use crate::error::{Error, Result};

/// How PGMQ is available in a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgmqSource {
    /// `CREATE EXTENSION pgmq` had been run.
    Extension,
    /// The SQL installer put PGMQ into schema `pgmq`.
    EmbeddedSql,
}

/// Advisory lock key that serialises concurrent installers (several processes starting at
/// once against a fresh database).
const INSTALL_LOCK_KEY: i64 = 0x7067_6d71_696e_7374; // "pgmqinst"

/// Makes PGMQ available in the database behind `pool`, and says how.
pub async fn install(pool: &PgPool) -> Result<PgmqSource> {
    // A session-level advisory lock on a dedicated connection: the installer opens its
    // own transactions on the pool.
    let mut lock_conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(INSTALL_LOCK_KEY)
        .execute(&mut *lock_conn)
        .await?;
    let outcome = install_locked(pool).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(INSTALL_LOCK_KEY)
        .execute(&mut *lock_conn)
        .await;
    let source = outcome?;
    unlock?;
    Ok(source)
}

async fn install_locked(pool: &PgPool) -> Result<PgmqSource> {
    let has_extension: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')")
            .fetch_one(pool)
            .await?;
    if has_extension {
        return Ok(PgmqSource::Extension);
    }
    pgmq::install::install_sql_from_embedded(pool)
        .await
        .map_err(|e| Error::Install(e.to_string()))?;
    Ok(PgmqSource::EmbeddedSql)
}
