use sqlx::Row;

use super::{DbResult, Store, StoreError};
use crate::model::KeyRecord;
use crate::oauth::types::SigningAlg;

/// One sealed value to re-seal (a signing key by kid, a TOTP secret by factor id): its
/// sealed form as read, and its new one.
pub struct Reseal {
    pub id: String,
    pub was: String,
    pub now: String,
}

impl Store {
    pub async fn list_keys(&self) -> DbResult<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT kid, alg, private_enc, created_at, activates_at FROM signing_keys ORDER BY activates_at")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let alg: String = r.try_get("alg")?;
                Ok(KeyRecord {
                    kid: r.try_get("kid")?,
                    // A key of an alg this build does not know cannot sign or be published.
                    alg: alg.parse::<SigningAlg>().map_err(|()| {
                        StoreError::corrupt("signing key alg", format!("unknown alg `{alg}`"))
                    })?,
                    private_enc: r.try_get("private_enc")?,
                    created_at: r.try_get("created_at")?,
                    activates_at: r.try_get("activates_at")?,
                })
            })
            .collect()
    }

    pub async fn insert_key(&self, k: &KeyRecord) -> DbResult<()> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_enc, created_at, activates_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.private_enc)
            .bind(k.created_at)
            .bind(k.activates_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Replace sealed private keys in one transaction: after a master key rotation every key
    /// is readable under the new key, or (on any failure) every key is as it was. A key
    /// changed or deleted since it was read (the janitor, another reseal) is left alone.
    /// Returns how many were replaced.
    pub async fn reseal_keys(&self, batch: &[Reseal]) -> DbResult<usize> {
        let mut tx = self.begin().await?;
        let mut replaced = 0;
        for r in batch {
            let done = sqlx::query(
                "UPDATE signing_keys SET private_enc = $1 WHERE kid = $2 AND private_enc = $3",
            )
            .bind(&r.now)
            .bind(&r.id)
            .bind(&r.was)
            .execute(&mut *tx)
            .await?;
            replaced += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        tx.commit().await?;
        Ok(replaced)
    }

    pub async fn delete_key(&self, kid: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
