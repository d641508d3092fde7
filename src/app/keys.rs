//! The signing-key schedule: a key for every algorithm, scheduled rotation, and how long a
//! retired key stays published.

use crate::config::Config;
use crate::crypto::aead::MasterKey;
use crate::crypto::keys;
use crate::model::KeyRecord;
use crate::oauth::types::SigningAlg;
use crate::store::Store;

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
