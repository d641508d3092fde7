//! Shared application state: cheap to clone, no globals.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::config::Config;
use crate::core::client_auth::SecretCache;
use crate::core::clients::ClientCache;
use crate::crypto::keys::{KeyRing, MasterKey};
use crate::crypto::password::PasswordHasherPool;
use crate::metrics::Metrics;
use crate::model::Client;
use crate::store::{DbResult, Store};

/// What every request handler gets. One `Arc` around everything: axum clones the state for
/// every request (and every layer that takes it), and cloning a dozen separate `Arc`s was
/// several percent of a client_credentials request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: KeyRing,
    pub master: MasterKey,
    pub clock: Clock,
    pub passwords: PasswordHasherPool,
    pub metrics: Metrics,
    pub secret_cache: SecretCache,
    /// This node's copy of the client table (`client_cache`).
    pub clients: ClientCache,
    /// Keys CSRF tokens; derived from the master key so every node agrees.
    pub csrf_key: Arc<[u8; 32]>,
    /// Origins allowed to call the API endpoints cross-origin (a cache of the client list).
    pub cors_origins: CorsOrigins,
    /// Proxies whose `X-Forwarded-For` is believed (`http::client_ip`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

#[derive(Clone, Default)]
pub struct CorsOrigins(Arc<RwLock<HashSet<String>>>);

impl CorsOrigins {
    pub fn contains(&self, origin: &str) -> bool {
        self.0.read().map(|s| s.contains(origin)).unwrap_or(false)
    }

    pub fn replace(&self, origins: HashSet<String>) {
        if let Ok(mut g) = self.0.write() {
            *g = origins;
        }
    }
}

impl Shared {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A client as this node knows it: from the client cache, else from the store.
    pub async fn client(&self, id: &str) -> DbResult<Option<Arc<Client>>> {
        match self.cached_client(id) {
            Some(c) => Ok(Some(c)),
            None => self.client_from_store(id).await,
        }
    }

    /// Whether client `id` is still registered and enabled: tokens of a disabled or removed
    /// client are honoured nowhere (introspection, UserInfo).
    pub async fn client_enabled(&self, id: &str) -> DbResult<bool> {
        Ok(self.client(id).await?.is_some_and(|c| c.enabled))
    }

    /// The cache's copy of a client, when the cache is on and holds it.
    pub fn cached_client(&self, id: &str) -> Option<Arc<Client>> {
        (self.config.cache.clients_seconds > 0)
            .then(|| self.clients.lookup(id))
            .flatten()
    }

    /// A client as the store has it right now; the cache learns the answer.
    pub async fn client_from_store(&self, id: &str) -> DbResult<Option<Arc<Client>>> {
        let client = self.store.get_client(id).await?.map(Arc::new);
        if self.config.cache.clients_seconds > 0 {
            self.clients.update(id, client.as_ref());
        }
        Ok(client)
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Absolute URL of one of our endpoints.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.base_url(), path)
    }
}
