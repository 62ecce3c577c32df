//! A fresh database per test.
//!
//! [`TestDb::new`] clones a template database that already has PGMQ and every migration,
//! so each test starts from a clean, migrated schema in milliseconds and tests never see
//! each other's rows or notifications. The template is built once per set of
//! migrations, under an advisory lock, so parallel test processes share it safely.
//! [`TestDb::empty`] gives a database with nothing in it, for tests of the setup path.
//!
//! `DATABASE_URL` must point at a server where the role may create databases; the
//! project's test command starts a throwaway one when it is unset.
//!
//! [`factory`] builds rows (templates, tasks, steps, results) with sensible defaults.

pub mod factory;

use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::database::{self, MIGRATOR, PoolConfig};

/// A database that is dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// A pool on the test database.
    pub pool: PgPool,
    /// Its URL, for child processes.
    pub url: String,
    name: String,
    admin_url: String,
}

fn admin_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "DATABASE_URL is not set. Run the tests through `make test` (or scripts/test.sh), \
             which starts a throwaway PostgreSQL, or point DATABASE_URL at a server where you \
             may create databases."
        ),
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let head = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{head}/{database}?{q}"),
        None => format!("{head}/{database}"),
    }
}

fn template_name() -> String {
    let mut h = Sha256::new();
    h.update(b"pgmq-0.33\n");
    for m in MIGRATOR.iter() {
        h.update(m.version.to_le_bytes());
        h.update(&*m.checksum);
    }
    let digest: String = h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("tasker_test_template_{digest}")
}

async fn admin_conn(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL ({url}): {e}"))
}

async fn ensure_template(admin: &str) -> String {
    let template = template_name();
    let mut conn = admin_conn(admin).await;
    // Serialise template builders across test processes.
    sqlx::query("SELECT pg_advisory_lock(7305115)")
        .execute(&mut conn)
        .await
        .expect("advisory lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut conn)
            .await
            .expect("query pg_database");
    if !exists {
        let building = format!("{template}_building");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop stale template");
        sqlx::query(&format!("CREATE DATABASE {building}"))
            .execute(&mut conn)
            .await
            .expect("create template database");
        let pool = database::connect(&with_database(admin, &building), &PoolConfig::default())
            .await
            .expect("connect to template database");
        database::setup(&pool)
            .await
            .expect("install PGMQ and migrate");
        pool.close().await;
        sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .execute(&mut conn)
            .await
            .expect("publish template database");
    }
    sqlx::query("SELECT pg_advisory_unlock(7305115)")
        .execute(&mut conn)
        .await
        .expect("advisory unlock");
    template
}

impl TestDb {
    /// A fresh database with PGMQ and every migration applied.
    pub async fn new() -> Self {
        let admin = admin_url();
        let template = ensure_template(&admin).await;
        Self::create(admin, Some(template)).await
    }

    /// A fresh, empty database.
    pub async fn empty() -> Self {
        Self::create(admin_url(), None).await
    }

    async fn create(admin: String, template: Option<String>) -> Self {
        let name = format!("tasker_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin_conn(&admin).await;
        let sql = match &template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        let mut attempt = 0;
        loop {
            match sqlx::query(&sql).execute(&mut conn).await {
                Ok(_) => break,
                // Another process may be copying the same template at this instant.
                Err(e) if attempt < 50 && e.to_string().contains("being accessed") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot create test database: {e}"),
            }
        }
        let url = with_database(&admin, &name);
        let options = PgConnectOptions::from_str(&url)
            .expect("test database URL")
            .options(crate::database::SESSION_SETTINGS);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .expect("connect to test database");
        Self {
            pool,
            url,
            name,
            admin_url: admin,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we could borrow; use a private runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
