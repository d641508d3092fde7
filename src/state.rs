//! Shared application state: cheap to clone, no globals.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::config::Config;
use crate::core::Core;
use crate::crypto::aead::MasterKey;

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
    /// The protocol and what it needs; everything below is HTTP's own.
    pub core: Arc<Core>,
    pub master: MasterKey,
    pub clock: Clock,
    /// Keys CSRF tokens; derived from the master key so every node agrees. The first makes
    /// them; during a master key rotation the previous key's is still accepted, so a form
    /// made by a node not yet restarted still posts to one that is.
    pub csrf_keys: Arc<[[u8; 32]]>,
    /// Origins allowed to call the API endpoints cross-origin (a cache of the client list).
    pub cors_origins: CorsOrigins,
    /// Proxies whose `X-Forwarded-For` is believed (`http::client_ip`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The flow explorer, when `[explorer] enabled`.
    pub explorer: Option<Arc<crate::explorer::Explorer>>,
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

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Absolute URL of one of our endpoints.
    pub fn url(&self, path: &str) -> String {
        self.core.url(path)
    }
}
