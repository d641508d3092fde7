//! Shared application state: cheap to clone, no globals.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::keys::{KeyRing, MasterKey};
use crate::crypto::password::PasswordHasherPool;
use crate::metrics::Metrics;
use crate::oauth::client_auth::SecretCache;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: KeyRing,
    pub master: MasterKey,
    pub clock: Clock,
    pub passwords: PasswordHasherPool,
    pub metrics: Metrics,
    pub secret_cache: SecretCache,
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

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Absolute URL of one of our endpoints.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.base_url(), path)
    }
}
