//! Signing keys: their states, rotation on demand, and re-sealing after a master key rotation.

use super::{Admin, AdminError, AdminResult};
use crate::app;
use crate::crypto::aead::{MasterKey, OpenedWith};
use crate::crypto::keys::{self, KeyState};
use crate::model::KeyRecord;
use crate::oauth::types::SigningAlg;

/// A stored key, its state now, and when it stops being published (retired keys).
#[derive(Debug)]
pub struct KeyStatus {
    pub record: KeyRecord,
    pub state: KeyState,
    pub unpublished_at: Option<i64>,
}

/// What `reseal_keys` did.
#[derive(Debug, Clone, Copy)]
pub struct Resealed {
    /// Keys that opened only with the previous master key, now sealed under the current one.
    pub resealed: usize,
    pub total: usize,
}

impl Admin<'_> {
    pub async fn keys(&self) -> AdminResult<Vec<KeyStatus>> {
        let records = self.store.list_keys().await?;
        let states = keys::classify(&records, self.now(), app::retire_after(self.config));
        Ok(records
            .into_iter()
            .zip(states)
            .map(|(record, (state, unpublished_at))| KeyStatus {
                record,
                state,
                unpublished_at,
            })
            .collect())
    }

    /// Publish a new key for `alg` now; it starts signing after `keys.prepublish_seconds`.
    /// Returns its kid.
    pub async fn rotate_key(&self, master: &MasterKey, alg: SigningAlg) -> AdminResult<String> {
        let now = self.now();
        Ok(app::insert_key(
            self.store,
            master,
            alg,
            now,
            now + self.config.keys.prepublish_seconds,
        )
        .await?)
    }

    /// Open every signing key (under the current or the previous master key) and store it
    /// sealed under the current one, in one transaction. A key neither opens stops it before
    /// anything is written.
    pub async fn reseal_keys(&self, master: &MasterKey) -> AdminResult<Resealed> {
        let records = self.store.list_keys().await?;
        let mut resealed = Vec::new();
        for r in &records {
            let (pkcs8, by) = master
                .decrypt_telling(&r.private_enc)
                .map_err(|_| AdminError::UnopenableKey(r.kid.clone()))?;
            if by == OpenedWith::Previous {
                resealed.push((r.kid.clone(), master.encrypt(&pkcs8)?));
            }
        }
        self.store.reseal_keys(&resealed).await?;
        Ok(Resealed {
            resealed: resealed.len(),
            total: records.len(),
        })
    }
}
