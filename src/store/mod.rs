//! The store: PostgreSQL in production, SQLite as the zero-setup default.
//!
//! Both run the same portable SQL through sqlx's `Any` driver (see `migrations/`): text ids,
//! BIGINT unix seconds, `$n` placeholders (which SQLite also accepts), `INSERT … ON CONFLICT`
//! and `UPDATE … RETURNING`. One implementation means one set of semantics, proven by one
//! contract test suite run against both backends (`tests/it/store.rs`).
//!
//! Contract, relied on by the protocol code:
//! - a code is consumed atomically: of two concurrent redemptions exactly one gets `Valid`;
//! - a refresh token is rotated atomically: of two concurrent rotations exactly one wins;
//! - expiry compares against the `now` passed in, never the database clock;
//! - only hashes of codes, tokens, session ids and secrets are stored.

mod audit;
mod clients;
pub mod device;
pub mod grants;
mod janitor;
mod keys;
pub mod model;
mod sessions;
pub mod throttle;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use clients::CLIENTS_CHANNEL;
pub use janitor::PurgeCounts;
pub use throttle::{ThrottlePolicy, ThrottleState, throttle_policy};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

impl Store {
    /// Connect to `postgres://…` or `sqlite://path` (the SQLite file and its folder are
    /// created when missing).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if let Some(dir) = std::path::Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)?;
                }
                if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => url.to_owned(),
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite has one writer; a few readers in WAL mode.
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            // No ping before every checkout: it doubled the round trips of each query (the
            // benchmark's profile had it at 18% of client_credentials). A connection that
            // died is found by the query itself, fails that one request and is dropped.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run during a write; busy_timeout makes a writer wait
                        // for the lock instead of failing with SQLITE_BUSY.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// For `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

pub type DbResult<T> = Result<T, sqlx::Error>;

pub(crate) fn json_err(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}
