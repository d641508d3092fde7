//! What start-up writes before serving: the master key (generated for the embedded store),
//! and the clients and users the config file owns.

use crate::config::{ClientConfig, Config};
use crate::crypto::aead::MasterKey;
use crate::crypto::secret::SecretHash;
use crate::files;
use crate::model::{Client, ClientSettings, Source};
use crate::store::Store;
use crate::store::users::NewUser;

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
pub fn client_from_config(c: &ClientConfig, source: Source) -> anyhow::Result<Client> {
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
            require_mfa: c.require_mfa,
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
        let mut client = client_from_config(c, Source::Config)?;
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
                    source: Source::Config,
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
