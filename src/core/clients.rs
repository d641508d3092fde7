//! This node's copy of the client table, so that a client_credentials or introspection
//! request touches no store at all.
//!
//! The store stays the truth; this is a cache with a bounded staleness. Every node re-reads
//! the whole table every `cache.clients_seconds` (`app::refresh_clients`). Between reloads:
//! - a client the cache has never seen is read from the store (and then remembered), so a
//!   client registered with the CLI works at once on every node;
//! - a request that fails against the cached copy (wrong secret, disabled client) is checked
//!   once more against the store before it is refused, so a rotated secret or a re-enabled
//!   client also works at once (`core::client_auth`);
//! - what can lag is the other direction: a client disabled or removed, a secret rotated
//!   away, a redirect URI unregistered keep working on a node until it reloads. On Postgres
//!   every change is announced with NOTIFY and each node reloads at once
//!   (`app::watch_client_changes`); the period bounds the rest (SQLite, a lost notification).
//!   `clients_seconds = 0` turns the cache off for deployments that want every change to
//!   bite on the next request, at one store round trip per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::model::Client;
use crate::store::{DbResult, Store};

/// The clients as this node sees them: the cache in front of the store, when the cache is on.
#[derive(Clone)]
pub struct Clients {
    store: Store,
    cache: ClientCache,
    cache_on: bool,
}

impl Clients {
    /// `cache_seconds = 0` turns the cache off: every lookup reads the store.
    pub fn new(store: Store, cache_seconds: u64) -> Self {
        Clients {
            store,
            cache: ClientCache::default(),
            cache_on: cache_seconds > 0,
        }
    }

    /// A client as this node knows it: from the cache, else from the store.
    pub async fn get(&self, id: &str) -> DbResult<Option<Arc<Client>>> {
        match self.cached(id) {
            Some(c) => Ok(Some(c)),
            None => self.from_store(id).await,
        }
    }

    /// Whether client `id` is still registered and enabled: tokens of a disabled or removed
    /// client are honoured nowhere (introspection, UserInfo).
    pub async fn enabled(&self, id: &str) -> DbResult<bool> {
        Ok(self.get(id).await?.is_some_and(|c| c.enabled))
    }

    /// The cache's copy of a client, when the cache is on and holds it.
    pub fn cached(&self, id: &str) -> Option<Arc<Client>> {
        self.cache_on.then(|| self.cache.lookup(id)).flatten()
    }

    /// A client as the store has it right now; the cache learns the answer.
    pub async fn from_store(&self, id: &str) -> DbResult<Option<Arc<Client>>> {
        let client = self.store.get_client(id).await?.map(Arc::new);
        if self.cache_on {
            self.cache.update(id, client.as_ref());
        }
        Ok(client)
    }

    /// The cache itself, for the periodic reload and for discovery's view of the clients.
    pub fn cache(&self) -> &ClientCache {
        &self.cache
    }
}

#[derive(Clone, Default)]
pub struct ClientCache {
    map: Arc<RwLock<HashMap<String, Arc<Client>>>>,
}

impl ClientCache {
    pub fn lookup(&self, id: &str) -> Option<Arc<Client>> {
        self.map.read().ok()?.get(id).cloned()
    }

    /// Whether any enabled client in this copy satisfies `f` (what discovery advertises).
    pub fn any_enabled(&self, f: impl Fn(&Client) -> bool) -> bool {
        self.map
            .read()
            .is_ok_and(|m| m.values().any(|c| c.enabled && f(c)))
    }

    /// Swap in a fresh copy of the whole table.
    pub fn replace(&self, clients: impl IntoIterator<Item = Client>) {
        let fresh: HashMap<_, _> = clients
            .into_iter()
            .map(|c| (c.id.clone(), Arc::new(c)))
            .collect();
        if let Ok(mut m) = self.map.write() {
            *m = fresh;
        }
    }

    /// Record what the store just said about one client (`None`: it does not exist).
    pub fn update(&self, id: &str, client: Option<&Arc<Client>>) {
        if let Ok(mut m) = self.map.write() {
            match client {
                Some(c) => m.insert(id.to_owned(), c.clone()),
                None => m.remove(id),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientSettings, Source};

    fn client(id: &str, enabled: bool) -> Client {
        Client {
            id: id.into(),
            source: Source::Config,
            enabled,
            secret_hash: None,
            settings: ClientSettings::default(),
        }
    }

    #[test]
    fn replace_drops_clients_the_store_no_longer_has() {
        let cache = ClientCache::default();
        cache.replace([client("a", true), client("b", true)]);
        assert!(cache.lookup("a").is_some());
        cache.replace([client("b", false)]);
        assert!(cache.lookup("a").is_none());
        assert!(!cache.lookup("b").expect("b is cached").enabled);
        cache.update("c", Some(&Arc::new(client("c", true))));
        assert!(cache.lookup("c").is_some());
        cache.update("c", None);
        assert!(cache.lookup("c").is_none());
    }
}
