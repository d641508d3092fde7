//! Start-up: connect and migrate the store, register config clients and users
//! (`bootstrap`), make sure signing keys exist (`keys`), build the state, start the
//! background tasks (`background`), and serve.

mod background;
mod bootstrap;
mod keys;

use std::collections::HashSet;
use std::sync::Arc;

use url::Url;

use crate::clock::Clock;
use crate::config::Config;
use crate::core::Core;
use crate::core::client_auth::SecretCache;
use crate::core::clients::Clients;
use crate::core::passkey::Passkeys;
use crate::core::tokens::TokenIssuer;
use crate::crypto::keys::KeyRing;
use crate::crypto::password::PasswordHasherPool;
use crate::metrics::Metrics;
use crate::model::KeyRecord;
use crate::state::{AppState, CorsOrigins, Shared};
use crate::store::Store;

pub use background::{
    Background, REUSE_GRACE_SECONDS, janitor_pass, spawn_background, watch_client_changes,
};
pub use bootstrap::{bootstrap, client_from_config, master_key};
pub use keys::{ensure_keys, insert_key, retire_after};

/// Re-read keys and clients from the store into the in-process caches.
pub async fn refresh_caches(state: &AppState) -> anyhow::Result<()> {
    let records = state.core.store.list_keys().await?;
    load_keys(state, &records)?;
    refresh_clients(state).await
}

pub(crate) fn load_keys(state: &AppState, records: &[KeyRecord]) -> anyhow::Result<()> {
    state.core.tokens.keys().load(
        &state.master,
        records,
        state.now(),
        retire_after(&state.config),
    )
}

/// Re-read the client table into this node's client cache and the CORS origin list.
pub async fn refresh_clients(state: &AppState) -> anyhow::Result<()> {
    let clients = state.core.store.list_clients().await?;
    let mut origins = HashSet::new();
    for c in clients.iter().filter(|c| c.enabled) {
        origins.extend(c.settings.allowed_origins.iter().cloned());
        for uri in &c.settings.redirect_uris {
            if let Ok(u) = Url::parse(uri)
                && matches!(u.scheme(), "http" | "https")
            {
                origins.insert(u.origin().ascii_serialization());
            }
        }
    }
    state.cors_origins.replace(origins);
    state.core.clients.cache().replace(clients);
    Ok(())
}

/// Build the state: connect, migrate, bootstrap, keys, caches.
pub async fn build_state(mut config: Config, clock: Clock) -> anyhow::Result<AppState> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let master = master_key(&config)?;
    crate::explorer::register_clients(&mut config, &master)?;
    let now = clock.now();
    bootstrap(&config, &store, now).await?;
    let key_records = ensure_keys(&config, &store, &master, now).await?;
    let trusted_proxies = config.trusted_proxies.as_slice().into();
    let config = Arc::new(config);
    let passkeys = Passkeys::for_issuer(config.issuer.url(), &config.theme.product_name);
    if passkeys.is_none() {
        tracing::info!(
            issuer = config.base_url(),
            "passkeys are off: WebAuthn needs the issuer's host to be a domain name, not an IP address"
        );
    }
    let core = Core {
        passkeys,
        passwords: PasswordHasherPool::new(&config.login.hash_pool())?,
        tokens: TokenIssuer::new(&config, KeyRing::default()),
        clients: Clients::new(store.clone(), config.cache.clients_seconds),
        secrets: SecretCache::default(),
        metrics: Metrics::new()?,
        sealing: master.clone(),
        store,
        config: config.clone(),
    };
    let explorer = if config.explorer.enabled {
        Some(Arc::new(crate::explorer::Explorer::new(&config, &master)?))
    } else {
        None
    };
    let state = AppState::new(Shared {
        explorer,
        csrf_keys: master.derive_all("latchkey csrf").into(),
        config,
        core: Arc::new(core),
        master,
        clock,
        cors_origins: CorsOrigins::default(),
        trusted_proxies,
    });
    load_keys(&state, &key_records)?;
    refresh_clients(&state).await?;
    Ok(state)
}

pub use crate::server::{serve, serve_metrics};

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
