//! argon2id for passwords and human-chosen client secrets, on a bounded blocking pool.
//!
//! Each hash costs `argon2_memory_kib` of memory and tens of milliseconds of CPU, so the
//! number running at once is capped by a semaphore: a login burst queues here instead of
//! starving the token endpoint's async workers or exhausting memory.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::LoginSettings;

#[derive(Clone)]
pub struct PasswordHasherPool {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against when the user does not exist, so that an unknown username costs
    /// the same time as a wrong password (no user enumeration by timing).
    dummy_hash: Arc<str>,
}

impl PasswordHasherPool {
    pub fn new(settings: &LoginSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            1,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy = hash_with(&params, "latchkey-dummy-password")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(settings.max_concurrent_hashes.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, &password)).await?
    }

    /// Verify `password` against `hash`, or against the dummy hash when there is no user.
    /// Returns false for a malformed stored hash rather than failing the request.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.dummy_hash.to_string(), false),
        };
        let ok = tokio::task::spawn_blocking(move || verify_sync(&password, &hash)).await?;
        Ok(ok && real)
    }
}

pub fn hash_with(params: &Params, password: &str) -> anyhow::Result<String> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let hash = argon
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Verification reads the parameters from the PHC string itself.
pub fn verify_sync(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// argon2id at the OWASP parameters, for CLI use (`hash-secret`, `user add`).
pub fn hash_default(password: &str) -> anyhow::Result<String> {
    let s = LoginSettings::default();
    let params = Params::new(s.argon2_memory_kib, s.argon2_iterations, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    hash_with(&params, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_right_and_rejects_wrong_and_missing() {
        let pool = PasswordHasherPool::new(&LoginSettings::default()).expect("params");
        let h = pool.hash("correct horse".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            pool.verify("correct horse".into(), Some(h.clone()))
                .await
                .expect("verify")
        );
        assert!(!pool.verify("wrong".into(), Some(h)).await.expect("verify"));
        assert!(!pool.verify("x".into(), None).await.expect("verify"));
        assert!(
            !pool
                .verify("x".into(), Some("garbage".into()))
                .await
                .expect("verify")
        );
    }
}
