//! The admin service: the rules for managing clients, users and signing keys, over the store.
//! The CLI parses arguments, reads secrets and prints; a future HTTP admin API can call the
//! same functions, so nothing here knows clap, a terminal or stdout.

mod clients;
mod keys;
mod users;

use std::path::{Path, PathBuf};

pub use clients::{ClientChanges, ClientDraft, NewClient, Registered};
pub use keys::{KeyStatus, Resealed};
pub use users::{MIN_PASSWORD_LEN, UserDetails};

use crate::clock::Clock;
use crate::config::{Config, Problem};
use crate::store::{Store, StoreError};

/// Why an admin operation was refused or failed. The messages are what the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no client {0}")]
    NoClient(String),
    #[error("client {0} already exists")]
    ClientExists(String),
    /// The config file is applied at every start, so a change made here would be undone at
    /// the next one.
    #[error(
        "client {client_id} is defined in {} ([[clients]]), which is applied at every start: change or remove it there and restart",
        config_path.display()
    )]
    ConfigClient {
        client_id: String,
        config_path: PathBuf,
    },
    /// A config client's secret is its `client_secret_hash` in the file.
    #[error("{0} comes from the config file: change client_secret_hash there")]
    ConfigClientSecret(String),
    #[error("{0} is a public client and has no secret")]
    PublicClient(String),
    /// The config's validator refused the client; `problems` holds everything it found
    /// (warnings too), `action` what did not happen ("registered", "updated").
    #[error("client {client_id} not {action}")]
    InvalidClient {
        client_id: String,
        action: &'static str,
        problems: Vec<Problem>,
    },
    /// An update that names no change.
    #[error("nothing to change: give a name, redirect URIs or scopes")]
    NothingToChange,
    #[error("no user {0}")]
    NoUser(String),
    #[error("user {0} already exists")]
    UserExists(String),
    /// Like [`AdminError::ConfigClient`], for `[[users]]`.
    #[error(
        "user {username} is defined in {} ([[users]]), which is applied at every start: change or remove it there and restart",
        config_path.display()
    )]
    ConfigUser {
        username: String,
        config_path: PathBuf,
    },
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters")]
    ShortPassword,
    /// `keys reseal` found a key that neither master key opens; nothing was written.
    #[error(
        "signing key {0} opens with neither master_key nor previous_master_key; nothing was changed"
    )]
    UnopenableKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing, sealing or key generation failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AdminResult<T> = Result<T, AdminError>;

/// The admin service over one store and the config it runs with.
pub struct Admin<'a> {
    store: &'a Store,
    config: &'a Config,
    /// The file `config` was read from, named when refusing to change what it owns.
    config_path: &'a Path,
    clock: Clock,
}

impl<'a> Admin<'a> {
    pub fn new(store: &'a Store, config: &'a Config, config_path: &'a Path, clock: Clock) -> Self {
        Admin {
            store,
            config,
            config_path,
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Running nodes read clients from their cache (`client_cache`): when a change that
    /// shuts something out reaches them.
    pub fn propagation_note(&self) -> String {
        match self.config.cache.clients_seconds {
            0 => "running nodes apply this to their next request".into(),
            n if self.store.announces_client_changes() => format!(
                "running nodes reload their clients now (Postgres notification), at the latest within {n} s"
            ),
            n => format!(
                "running nodes stop accepting what this replaced within {n} s (cache.clients_seconds)"
            ),
        }
    }
}
