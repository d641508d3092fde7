//! Start-up: connect and migrate the store, register config clients and users, make sure
//! signing keys exist, start the background tasks, and serve.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::clock::Clock;
use crate::config::{ClientConfig, Config};
use crate::core::Core;
use crate::core::client_auth::SecretCache;
use crate::core::clients::Clients;
use crate::core::tokens::TokenIssuer;
use crate::crypto::aead::MasterKey;
use crate::crypto::keys::{self, KeyRing};
use crate::crypto::password::PasswordHasherPool;
use crate::crypto::secret::SecretHash;
use crate::files;
use crate::metrics::Metrics;
use crate::model::{Client, ClientSettings, ClientSource, KeyRecord};
use crate::oauth::types::SigningAlg;
use crate::state::{AppState, CorsOrigins, Shared};
use crate::store::users::NewUser;
use crate::store::{Store, StoreError};

/// The master key from config/env, or (SQLite only) one generated into the data folder;
/// with the previous key, when a rotation is under way.
pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    let key = current_master_key(config)?;
    Ok(match &config.previous_master_key {
        Some(previous) => key.with_previous(previous),
        None => key,
    })
}

fn current_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(k) = &config.master_key {
        return Ok(k.clone());
    }
    if !config.is_sqlite() {
        anyhow::bail!(
            "set LATCHKEY_MASTER_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`): every node sharing this Postgres store needs the same key to read the signing keys"
        );
    }
    let path = config.data_dir.join("master.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        files::warn_if_shared(&path);
        return MasterKey::from_base64(&text)
            .map_err(|()| anyhow::anyhow!("{} is corrupt", path.display()));
    }
    files::create_private_dir(&config.data_dir)?;
    let k = MasterKey::generate();
    files::write_private(&path, &k.to_base64())?;
    tracing::info!(path = %path.display(), "generated a master key for the embedded store");
    Ok(k)
}

/// A client entry (from the config file, or built by `latchkey client add`, named by
/// `source`) in the stored form. Its values were parsed when it was read; only a secret from
/// the environment is still to be hashed.
pub fn client_from_config(c: &ClientConfig, source: ClientSource) -> anyhow::Result<Client> {
    let secret_hash = match (&c.client_secret_hash, &c.secret_env, &c.env_secret) {
        (Some(h), _, _) => Some(h.clone()),
        (None, Some(_), Some(secret)) => Some(SecretHash::Argon2(
            crate::crypto::password::hash_default(secret.expose())?,
        )),
        (None, Some(var), None) => anyhow::bail!("client {}: {var} is not set", c.client_id),
        (None, None, _) => None,
    };
    Ok(Client {
        id: c.client_id.clone(),
        source,
        enabled: true,
        secret_hash,
        settings: ClientSettings::from(c),
    })
}

impl From<&ClientConfig> for ClientSettings {
    fn from(c: &ClientConfig) -> Self {
        ClientSettings {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.clone(),
            response_types: c.response_types.clone(),
            scopes: c.scopes.clone(),
            default_scopes: c.default_scopes.clone(),
            audiences: c.audiences.clone(),
            allowed_origins: c.allowed_origins.clone(),
            auth_method: c.token_endpoint_auth_method,
            require_pkce: c.require_pkce,
            allow_plain_pkce: c.allow_plain_pkce,
            skip_consent: c.skip_consent,
            always_issue_refresh_token: c.always_issue_refresh_token,
            id_token_scope_claims: c.id_token_scope_claims,
            introspection: c.introspection,
            access_token_ttl: c.access_token_ttl,
            refresh_token_ttl: c.refresh_token_ttl,
            id_token_alg: c.id_token_signed_response_alg,
            access_token_alg: c.access_token_signed_response_alg,
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
        }
    }
}

/// Upsert config clients and users (idempotent); disable config clients no longer listed.
pub async fn bootstrap(config: &Config, store: &Store, now: i64) -> anyhow::Result<()> {
    let mut keep = Vec::new();
    for c in &config.clients {
        let mut client = client_from_config(c, ClientSource::Config)?;
        // secret_env secrets are re-hashed with a new salt on every start; keep the stored
        // hash when it still verifies, so a restart changes nothing.
        if let (Some(secret), Some(SecretHash::Argon2(_))) = (&c.env_secret, &client.secret_hash)
            && let Some(existing) = store.get_client(&c.client_id).await?
            && let Some(SecretHash::Argon2(old)) = &existing.secret_hash
            && crate::crypto::password::verify_sync(secret.expose(), old)
        {
            client.secret_hash = existing.secret_hash.clone();
        }
        if store.upsert_client(&client, now).await? {
            tracing::info!(client_id = %client.id, "registered client from config");
        }
        keep.push(client.id);
    }
    for id in store.disable_config_clients_except(&keep, now).await? {
        tracing::warn!(client_id = %id, "client removed from config: disabled");
    }
    for u in &config.users {
        let evicted = store
            .upsert_config_user(
                NewUser {
                    username: &u.username,
                    password_hash: &u.password_hash,
                    claims: &u.claims,
                    source: "config",
                },
                u.disabled,
                now,
            )
            .await?;
        if evicted {
            tracing::warn!(username = %u.username, "config changed the password or disabled the user: signed out everywhere, tokens revoked");
        }
    }
    let keep: Vec<String> = config.users.iter().map(|u| u.username.clone()).collect();
    for name in store.disable_config_users_except(&keep, now).await? {
        tracing::warn!(username = %name, "user removed from config: disabled, signed out everywhere, tokens revoked");
    }
    Ok(())
}

/// The longest a retired key must stay published: the life of anything it signed.
pub fn retire_after(config: &Config) -> i64 {
    let client_max = config
        .clients
        .iter()
        .filter_map(|c| c.access_token_ttl)
        .max()
        .unwrap_or(0);
    config
        .tokens
        .access_token_ttl
        .max(config.tokens.id_token_ttl)
        .max(client_max)
        + 60
}

/// Create a key for every algorithm that has none, and rotate on schedule.
pub async fn ensure_keys(
    config: &Config,
    store: &Store,
    master: &MasterKey,
    now: i64,
) -> anyhow::Result<Vec<KeyRecord>> {
    let records = store.list_keys().await?;
    let states = keys::classify(&records, now, retire_after(config));
    let mut inserted = false;
    for alg in SigningAlg::ALL {
        let mine: Vec<(&KeyRecord, keys::KeyState)> = records
            .iter()
            .zip(states.iter())
            .filter(|(r, _)| r.alg == alg)
            .map(|(r, (s, _))| (r, *s))
            .collect();
        let active = mine.iter().find(|(_, s)| *s == keys::KeyState::Active);
        let has_next = mine.iter().any(|(_, s)| *s == keys::KeyState::Next);
        match active {
            None if !has_next => {
                insert_key(store, master, alg, now, now).await?;
                inserted = true;
            }
            Some((r, _))
                if config.keys.rotate_after_seconds > 0
                    && !has_next
                    && now - r.activates_at >= config.keys.rotate_after_seconds =>
            {
                insert_key(
                    store,
                    master,
                    alg,
                    now,
                    now + config.keys.prepublish_seconds,
                )
                .await?;
                inserted = true;
                tracing::info!(alg = %alg, "scheduled key rotation: next key published");
            }
            _ => {}
        }
    }
    // The caller loads these into its key ring; re-read only when we changed them.
    if inserted {
        Ok(store.list_keys().await?)
    } else {
        Ok(records)
    }
}

pub async fn insert_key(
    store: &Store,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    activates_at: i64,
) -> anyhow::Result<String> {
    let g = tokio::task::spawn_blocking(move || keys::generate(alg)).await??;
    store
        .insert_key(&KeyRecord {
            kid: g.kid.clone(),
            alg,
            private_enc: master.encrypt(&g.pkcs8)?,
            created_at: now,
            activates_at,
        })
        .await?;
    Ok(g.kid)
}

/// Re-read keys and clients from the store into the in-process caches.
pub async fn refresh_caches(state: &AppState) -> anyhow::Result<()> {
    let records = state.core.store.list_keys().await?;
    load_keys(state, &records)?;
    refresh_clients(state).await
}

fn load_keys(state: &AppState, records: &[KeyRecord]) -> anyhow::Result<()> {
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
pub async fn build_state(config: Config, clock: Clock) -> anyhow::Result<AppState> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let master = master_key(&config)?;
    let now = clock.now();
    bootstrap(&config, &store, now).await?;
    let key_records = ensure_keys(&config, &store, &master, now).await?;
    let trusted_proxies = config.trusted_proxies.as_slice().into();
    let config = Arc::new(config);
    let core = Core {
        passwords: PasswordHasherPool::new(&config.login.hash_pool())?,
        tokens: TokenIssuer::new(&config, KeyRing::default()),
        clients: Clients::new(store.clone(), config.cache.clients_seconds),
        secrets: SecretCache::default(),
        metrics: Metrics::new()?,
        store,
        config: config.clone(),
    };
    let state = AppState::new(Shared {
        csrf_key: Arc::new(master.derive("latchkey csrf")),
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

/// `refresh_clients` for the background tasks: a failure is logged, and the next reload
/// (tick or notification) tries again.
async fn reload_clients(state: &AppState) {
    if let Err(e) = refresh_clients(state).await {
        tracing::error!(error = %e, "client cache refresh failed");
    }
}

/// On Postgres, reload the client cache as soon as any process (a node, the CLI) announces a
/// change to the client table (`Store::client_changes`), so a disabled client stops working on
/// every node within milliseconds rather than `cache.clients_seconds`. The periodic reload
/// stays as the backstop: notifications sent while the listener is reconnecting are lost, so
/// a reconnect also triggers a reload. None where the store announces nothing (SQLite), or
/// when the cache is off.
pub fn watch_client_changes(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    if state.config.cache.clients_seconds == 0 {
        return None;
    }
    let mut changes = state.core.store.client_changes()?;
    let s = state.clone();
    Some(tokio::spawn(async move {
        while changes.next().await.is_some() {
            reload_clients(&s).await;
        }
    }))
}

/// Background work: cache refresh and scheduled key rotation, the janitor, and the
/// back-channel logout worker.
pub fn spawn_background(state: &AppState) -> anyhow::Result<()> {
    crate::core::backchannel::spawn(state.core.clone(), state.clock.clone())?;
    let s = state.clone();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_secs(s.config.keys.reload_seconds.max(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            // One read serves both the scheduled rotation and this node's key ring, which
            // also picks up rotations made on other nodes.
            let loaded = ensure_keys(&s.config, &s.core.store, &s.master, s.now())
                .await
                .and_then(|records| load_keys(&s, &records));
            if let Err(e) = loaded {
                tracing::error!(error = %e, "key maintenance failed");
            }
        }
    });
    watch_client_changes(state);
    // The client table changes more often than keys and bounds how long a disabled client
    // keeps working (`client_cache`), so it has its own, shorter period.
    let s = state.clone();
    tokio::spawn(async move {
        let period = s.config.cache.clients_seconds;
        if period == 0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(period));
        tick.tick().await;
        loop {
            tick.tick().await;
            reload_clients(&s).await;
        }
    });
    let s = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(
            s.config.janitor.interval_seconds.max(1),
        ));
        loop {
            tick.tick().await;
            match janitor_pass(&s).await {
                Ok(total) if total > 0 => {
                    tracing::info!(deleted = total, "janitor purged expired rows");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "janitor failed"),
            }
        }
    });
    Ok(())
}

/// How long expired codes, refresh tokens and device codes are kept, so that presenting one
/// again is still recognised as reuse (RFC 6749 section 4.1.2, RFC 9700 section 4.14.2).
pub const REUSE_GRACE_SECONDS: i64 = 3600;

/// One janitor run: rows past expiry (`Store::purge_expired`), and audit events past
/// `[janitor] audit_retention_days`. Returns how many rows went.
pub async fn janitor_pass(state: &AppState) -> Result<u64, StoreError> {
    let now = state.now();
    let batch = state.config.janitor.batch_size;
    let c = state
        .core
        .store
        .purge_expired(now, batch, REUSE_GRACE_SECONDS)
        .await?;
    let mut total: u64 = c.deleted.iter().map(|(_, n)| n).sum();
    if let Some(keep) = state.config.janitor.audit_retention() {
        total += state.core.store.purge_audit(now - keep, batch).await?;
    }
    Ok(total)
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
