//! The store: PostgreSQL in production, SQLite as the zero-setup default.
//!
//! Both run the same portable SQL through sqlx's `Any` driver (see `migrations/`): text ids,
//! BIGINT unix seconds, `$n` placeholders (which SQLite also accepts), `INSERT … ON CONFLICT`
//! and `UPDATE … RETURNING`. One implementation means one set of semantics, proven by one
//! contract test suite run against both backends (`tests/it/store.rs`).
//!
//! Contract, relied on by the protocol code:
//! - operations are stated by intent and own their transactions: no transaction or
//!   connection is handed out, and an operation that fails has committed nothing;
//! - a code is redeemed atomically with the grant it starts (`redeem_code`): of concurrent
//!   redemptions exactly one gets `Redeemed`, and a later one is told the grant, to revoke it;
//!   an approved device code likewise (`redeem_device`);
//! - a refresh token is rotated atomically: of two concurrent rotations exactly one wins;
//! - expiry compares against the `now` passed in, never the database clock;
//! - only hashes of codes, tokens, session ids and secrets are stored;
//! - errors are [`StoreError`]s: sqlx, and anything Postgres-specific (`LISTEN`), stays here.

mod audit;
pub mod backchannel;
mod clients;
pub mod device;
mod error;
pub mod explorer;
pub mod factors;
pub mod grants;
mod janitor;
pub mod keys;
pub mod passkeys;
mod sessions;
pub mod throttle;
pub mod users;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlSafeStr};

use crate::files;

pub use clients::ClientChanges;
pub use error::{DbResult, StoreError};
pub use janitor::PurgeCounts;
pub use sessions::AppRemoval;
pub use throttle::ThrottlePolicy;

/// The schema, compiled in: (version, description, SQL) per file in migrations/, named
/// `<version>_<description>.sql`. Listed here rather than found by `sqlx::migrate!` because
/// that macro was the only reason to build sqlx's compile-time half: a second sqlx with both
/// drivers and a second bundled SQLite, compiled for the build host, about a tenth of a cold
/// release build. sqlx computes each checksum from the SQL exactly as the macro does, so
/// databases migrated by earlier builds stay valid; a unit test checks the list against the
/// directory.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "throttle attempts",
        include_str!("../../migrations/0002_throttle_attempts.sql"),
    ),
    (
        3,
        "user revocation",
        include_str!("../../migrations/0003_user_revocation.sql"),
    ),
    (
        4,
        "backchannel logout",
        include_str!("../../migrations/0004_backchannel_logout.sql"),
    ),
    (
        5,
        "code failed at",
        include_str!("../../migrations/0005_code_failed_at.sql"),
    ),
    (
        6,
        "offline grants",
        include_str!("../../migrations/0006_offline_grants.sql"),
    ),
    (
        7,
        "second factors",
        include_str!("../../migrations/0007_second_factors.sql"),
    ),
    (
        8,
        "passkeys",
        include_str!("../../migrations/0008_passkeys.sql"),
    ),
    (
        9,
        "explorer",
        include_str!("../../migrations/0009_explorer.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    // sqlx's own marker for a migration that must run outside a transaction.
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The backend a `database_url` names, by its scheme; None for any other URL. The one
    /// place that tells them apart (config parsing, `Config::is_sqlite`, `Store::connect`).
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Postgres only: where `client_changes` opens its LISTEN connection (outside the pool,
    /// which sqlx's `Any` driver cannot lend to a `PgListener`). Holds the password: never
    /// printed.
    listen_url: Option<Arc<str>>,
    backchannel_queued: backchannel::Queued,
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
    /// created when missing, readable by the owner only: see `files`).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        // Config refuses any other scheme; a URL from elsewhere is tried as Postgres.
        let backend = Backend::of_url(url).unwrap_or(Backend::Postgres);
        let url = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let (path, query) = path.split_once('?').unwrap_or((path, ""));
                let on_disk = path != ":memory:"
                    && !path.is_empty()
                    && !query.contains("mode=memory")
                    && !query.contains("mode=ro");
                if on_disk {
                    let path = std::path::Path::new(path);
                    if let Some(dir) = path.parent()
                        && !dir.as_os_str().is_empty()
                    {
                        files::create_private_dir(dir)?;
                    }
                    // Created here so it starts as 0600: sqlx would create it 0644 (less the
                    // umask). SQLite gives the -wal and -shm files the database's own mode.
                    files::create_private_file(path)?;
                }
                if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => url.to_owned(),
        };
        // Never sqlx's parse error: it may quote the URL, password and all.
        let opts = AnyConnectOptions::from_str(&url).map_err(|_| {
            anyhow::anyhow!(
                "database_url is not a valid postgres://, postgresql:// or sqlite:// URL (check database_url or LATCHKEY_DATABASE_URL)"
            )
        })?;
        let target = describe(&url, backend);
        if backend == Backend::Postgres {
            // One connection first, briefly: nothing listening fails at once, with the
            // place and what to do, not after the pool's acquire timeout.
            first_connection(&opts, &target).await?;
        }
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
        Ok(Store {
            pool,
            backend,
            listen_url: (backend == Backend::Postgres).then(|| Arc::from(url.as_str())),
            backchannel_queued: backchannel::Queued::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrator().run(&self.pool).await.map_err(|e| {
            let why = match &e {
                sqlx::migrate::MigrateError::Execute(e) => cause(e),
                e => e.to_string(),
            };
            anyhow::anyhow!("cannot update the schema of the store: {why}")
        })?;
        Ok(())
    }

    /// For `/readyz`: one round trip to the database.
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Where a store is, for messages: host, port and database, never the password.
fn describe(url: &str, backend: Backend) -> String {
    if backend == Backend::Sqlite {
        return format!("the SQLite store {}", url.split('?').next().unwrap_or(url));
    }
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u
                .query_pairs()
                .find(|(k, _)| k == "host")
                .map(|(_, v)| v.into_owned())
                .or_else(|| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "localhost".into());
            let port = u.port().unwrap_or(5432);
            let db = match u.path().trim_start_matches('/') {
                "" if u.username().is_empty() => "postgres".to_owned(),
                "" => u.username().to_owned(),
                db => db.to_owned(),
            };
            format!("PostgreSQL at {host}:{port}, database \"{db}\"")
        }
        Err(_) => "PostgreSQL (database_url)".into(),
    }
}

/// The database's own message (sqlx's Display adds "error returned from database", and the
/// line of PostgreSQL's C source the error came from).
fn cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        e => e.to_string(),
    }
}

const CHECK_URL: &str = "check database_url or LATCHKEY_DATABASE_URL";

async fn first_connection(opts: &AnyConnectOptions, target: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let wait = Duration::from_secs(5);
    let conn = tokio::time::timeout(wait, sqlx::AnyConnection::connect_with(opts)).await;
    let e = match conn {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            return Ok(());
        }
        Ok(Err(e)) => e,
        Err(_) => anyhow::bail!(
            "cannot connect to {target}: no answer within {} s (a wrong host, or a firewall dropping the packets?); {CHECK_URL}",
            wait.as_secs()
        ),
    };
    let code = match &e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    };
    let io = match &e {
        sqlx::Error::Io(io) => Some(io.kind()),
        _ => None,
    };
    let db = target.rsplit('"').nth(1).unwrap_or("NAME");
    let what = match (code.as_deref(), io) {
        (_, Some(std::io::ErrorKind::ConnectionRefused)) => format!(
            "nothing is listening there (connection refused): start PostgreSQL, or {CHECK_URL}"
        ),
        // invalid_catalog_name
        (Some("3D000"), _) => format!("{}: create it (createdb {db}), or {CHECK_URL}", cause(&e)),
        // invalid_password, invalid_authorization_specification
        (Some("28P01" | "28000"), _) => {
            format!(
                "{}: check the user and password in database_url or LATCHKEY_DATABASE_URL",
                cause(&e)
            )
        }
        _ => format!("{}; {CHECK_URL}", cause(&e)),
    };
    anyhow::bail!("cannot connect to {target}: {what}")
}

/// A JSON column that does not read back as its document type.
pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::corrupt("JSON document", e)
}

/// A document that cannot be written as JSON (not expected of these types: every map key is
/// a string).
pub(crate) fn encode_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(sqlx::Error::Encode(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MIGRATIONS lists every file in migrations/, in order, with the version and description
    /// sqlx derives from the file name (as `sqlx::migrate!` would) and with the file's SQL.
    #[test]
    fn migrations_list_matches_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, &(version, description, sql)) in files.iter().zip(MIGRATIONS) {
            let (v, rest) = file.split_once('_').unwrap();
            assert_eq!(v.parse::<i64>().unwrap(), version, "{file}");
            let stem = rest.trim_end_matches(".sql");
            assert_eq!(stem.replace('_', " "), description, "{file}");
            assert_eq!(
                std::fs::read_to_string(dir.join(file)).unwrap(),
                sql,
                "{file}"
            );
        }
        let m = migrator();
        assert!(m.iter().all(|m| !m.no_tx));
    }
}
