//! The in-process cache of the store's signing keys, parsed once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

use super::rotation::{KeyState, classify};
use super::{KeyRecord, SigningKey};
use crate::crypto::aead::MasterKey;
use crate::oauth::types::SigningAlg;

#[derive(Default)]
struct Snapshot {
    /// Published keys (next, active, retired), newest first.
    keys: Vec<Arc<SigningKey>>,
    by_kid: HashMap<String, Arc<SigningKey>>,
    jwks: Arc<Value>,
}

/// The in-process cache of the store's key set. Truth stays in the store.
#[derive(Clone, Default)]
pub struct KeyRing {
    inner: Arc<RwLock<Arc<Snapshot>>>,
}

impl KeyRing {
    /// Replace the cache with a fresh snapshot (parsed keys are reused by kid).
    pub fn load(
        &self,
        master: &MasterKey,
        records: &[KeyRecord],
        now: i64,
        retire_after: i64,
    ) -> anyhow::Result<()> {
        let states = classify(records, now, retire_after);
        let old = self.snapshot();
        let mut keys = Vec::new();
        for (r, (state, _)) in records.iter().zip(states) {
            if state == KeyState::Expired {
                continue;
            }
            let key = match old.by_kid.get(&r.kid) {
                Some(k) => k.clone(),
                None => {
                    let pkcs8 = master.decrypt(&r.private_enc)?;
                    Arc::new(SigningKey::from_pkcs8(
                        r.kid.clone(),
                        r.alg,
                        &pkcs8,
                        r.activates_at,
                        r.created_at,
                    )?)
                }
            };
            keys.push(key);
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.activates_at));
        let by_kid = keys.iter().map(|k| (k.kid.clone(), k.clone())).collect();
        let jwks =
            Arc::new(json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}));
        let snap = Arc::new(Snapshot { keys, by_kid, jwks });
        match self.inner.write() {
            Ok(mut g) => *g = snap,
            Err(p) => *p.into_inner() = snap,
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The key that signs for `alg` at `now`: the newest one already activated.
    pub fn active(&self, alg: SigningAlg, now: i64) -> Option<Arc<SigningKey>> {
        self.snapshot()
            .keys
            .iter()
            .find(|k| k.alg == alg && k.activates_at <= now)
            .cloned()
    }

    pub fn get(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.snapshot().by_kid.get(kid).cloned()
    }

    pub fn jwks(&self) -> Arc<Value> {
        self.snapshot().jwks.clone()
    }
}
