//! Signing keys: their states, rotation on demand, and re-sealing after a master key rotation.

use super::{Admin, AdminError, AdminResult};
use crate::app;
use crate::crypto::aead::{MasterKey, OpenedWith};
use crate::crypto::keys::{self, KeyState};
use crate::model::KeyRecord;
use crate::oauth::types::SigningAlg;
use crate::store::keys::Reseal;

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
    /// Likewise for the authenticator-app secrets of second factors.
    pub secrets_resealed: usize,
    pub secrets_total: usize,
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
    /// anything is written. A key another node adds meanwhile (a scheduled rotation on a node
    /// still on the old key) is caught by reading the keys again after the write, and
    /// re-sealed in another pass: the command ends only when every key opens with the
    /// current key alone, so removing the previous key afterwards loses none.
    pub async fn reseal_keys(&self, master: &MasterKey) -> AdminResult<Resealed> {
        let mut resealed = 0;
        for _ in 0..RESEAL_PASSES {
            let records = self.store.list_keys().await?;
            let mut batch = Vec::new();
            for r in &records {
                let (pkcs8, by) = master.decrypt_telling(&r.private_enc).map_err(|_| {
                    AdminError::UnopenableKey {
                        kid: r.kid.clone(),
                        resealed,
                    }
                })?;
                if by == OpenedWith::Previous {
                    batch.push(Reseal {
                        id: r.kid.clone(),
                        was: r.private_enc.clone(),
                        now: master.encrypt(&pkcs8)?,
                    });
                }
            }
            if batch.is_empty() {
                let (secrets_resealed, secrets_total) = self.reseal_factor_secrets(master).await?;
                return Ok(Resealed {
                    resealed,
                    total: records.len(),
                    secrets_resealed,
                    secrets_total,
                });
            }
            resealed += self.store.reseal_keys(&batch).await?;
        }
        Err(AdminError::KeysKeepChanging(RESEAL_PASSES))
    }

    /// The same for the sealed TOTP secrets (users enrol on nodes still on the old key, so
    /// they too are read again until none opens only with it): (re-sealed, total).
    async fn reseal_factor_secrets(&self, master: &MasterKey) -> AdminResult<(usize, usize)> {
        let mut resealed = 0;
        for _ in 0..RESEAL_PASSES {
            let sealed = self.store.sealed_factor_secrets().await?;
            let mut batch = Vec::new();
            for (id, user_id, was) in &sealed {
                let (plain, by) =
                    master
                        .decrypt_bound_telling(was, id.as_bytes())
                        .map_err(|_| AdminError::UnopenableSecret {
                            factor: id.clone(),
                            user_id: user_id.clone(),
                            resealed,
                        })?;
                if by == OpenedWith::Previous {
                    batch.push(Reseal {
                        id: id.clone(),
                        was: was.clone(),
                        now: master.encrypt_bound(&plain, id.as_bytes())?,
                    });
                }
            }
            if batch.is_empty() {
                return Ok((resealed, sealed.len()));
            }
            resealed += self.store.reseal_factor_secrets(&batch).await?;
        }
        Err(AdminError::KeysKeepChanging(RESEAL_PASSES))
    }
}

/// How many times `reseal_keys` reads and re-seals before it gives up on keys that keep
/// being added under the previous master key.
const RESEAL_PASSES: usize = 5;
