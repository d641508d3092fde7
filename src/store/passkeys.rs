//! Passkeys (WebAuthn credentials) and the ceremonies that register and use them.
//!
//! A ceremony of an account (adding a passkey, a passkey as the second factor) keeps its
//! challenge state here, never in the browser, and is taken by the one `DELETE ... RETURNING`
//! that answers it: an answer replayed, or raced from two tabs, finds nothing the second
//! time. A sign-in with a passkey alone, which anyone can start, stores nothing until it
//! succeeds, and is then spent by the `INSERT` that a second use of it fails.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, Store, StoreError};
use crate::model::PasskeyRow;

/// How many ceremonies of one kind may wait for one account at once; the oldest beyond
/// that go, so pages opened over and over cannot grow the table.
pub const MAX_CEREMONIES_PER_USER: i64 = 5;

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Adding a passkey to a signed-in account.
    Register,
    /// A passkey as the second factor of a sign-in whose password was right.
    SecondFactor,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::SecondFactor => "second_factor",
        }
    }
}

/// A ceremony waiting for the browser's answer.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub kind: CeremonyKind,
    pub user_id: String,
    /// SHA-256 of what it belongs to (the session adding a passkey, a pending sign-in).
    pub bound: String,
    /// A registration: the passkey's name.
    pub name: Option<String>,
    /// webauthn-rs's ceremony state, as JSON.
    pub state: String,
    pub expires_at: i64,
}

/// A passkey just registered.
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    /// base64url of the credential id.
    pub credential_id: &'a str,
    pub credential: &'a str,
    pub discoverable: bool,
    pub now: i64,
}

fn passkey_from_row(r: &AnyRow) -> DbResult<PasskeyRow> {
    Ok(PasskeyRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        credential: r
            .try_get::<Option<String>, _>("credential")?
            .ok_or_else(|| StoreError::corrupt("passkey", "no credential"))?,
    })
}

impl Store {
    /// Store a registered passkey, active at once (the registration proved it). False when
    /// the credential is registered already, to this account or another.
    pub async fn insert_passkey(&self, p: &NewPasskey<'_>) -> DbResult<bool> {
        let done = sqlx::query(
            "INSERT INTO mfa_factors (id, user_id, kind, name, credential_id, credential, discoverable,
                                      created_at, confirmed_at, last_used_at)
             VALUES ($1, $2, 'passkey', $3, $4, $5, $6, $7, $7, $7)
             ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(p.id)
        .bind(p.user_id)
        .bind(p.name)
        .bind(p.credential_id)
        .bind(p.credential)
        .bind(i64::from(p.discoverable))
        .bind(p.now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user's passkeys.
    pub async fn passkeys(&self, user_id: &str) -> DbResult<Vec<PasskeyRow>> {
        let rows = sqlx::query(
            "SELECT id, user_id, credential FROM mfa_factors
             WHERE user_id = $1 AND kind = 'passkey' AND confirmed_at IS NOT NULL ORDER BY confirmed_at, id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(passkey_from_row).collect()
    }

    /// The passkey with this credential id (base64url), whoever's it is.
    pub async fn passkey_by_credential(&self, credential_id: &str) -> DbResult<Option<PasskeyRow>> {
        let row = sqlx::query(
            "SELECT id, user_id, credential FROM mfa_factors
             WHERE credential_id = $1 AND kind = 'passkey' AND confirmed_at IS NOT NULL",
        )
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    /// Record a use of a passkey, and its credential as updated by the use (signature counter,
    /// backup state) when that changed: only if the stored credential is still `was`, the one
    /// the use was checked against. False when another use changed it meanwhile.
    pub async fn passkey_used(
        &self,
        id: &str,
        was: &str,
        credential: Option<&str>,
        now: i64,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET last_used_at = $3, credential = COALESCE($4, credential)
             WHERE id = $1 AND credential = $2",
        )
        .bind(id)
        .bind(was)
        .bind(now)
        .bind(credential)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Spend a sign-in ceremony (the hash of its sealed value): true for the first use only.
    pub async fn spend_sign_in(&self, id_hash: &str, expires_at: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "INSERT INTO passkey_spent (id_hash, expires_at) VALUES ($1, $2)
             ON CONFLICT (id_hash) DO NOTHING",
        )
        .bind(id_hash)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Store a ceremony under the hash of the value its page carries. An account keeps at
    /// most `MAX_CEREMONIES_PER_USER` of each kind: the oldest go.
    pub async fn insert_ceremony(&self, id_hash: &str, c: &Ceremony, now: i64) -> DbResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM passkey_ceremonies WHERE user_id = $1 AND kind = $2 AND id_hash NOT IN
               (SELECT id_hash FROM passkey_ceremonies WHERE user_id = $1 AND kind = $2
                ORDER BY created_at DESC, id_hash LIMIT $3)",
        )
        .bind(&c.user_id)
        .bind(c.kind.as_str())
        .bind(MAX_CEREMONIES_PER_USER - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id_hash, kind, user_id, bound, name, state, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id_hash)
        .bind(c.kind.as_str())
        .bind(&c.user_id)
        .bind(&c.bound)
        .bind(c.name.as_deref())
        .bind(&c.state)
        .bind(now)
        .bind(c.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Take a live ceremony of `kind`: only the first caller gets it.
    pub async fn take_ceremony(
        &self,
        id_hash: &str,
        kind: CeremonyKind,
        now: i64,
    ) -> DbResult<Option<Ceremony>> {
        let row = sqlx::query(
            "DELETE FROM passkey_ceremonies WHERE id_hash = $1 AND kind = $2 AND expires_at > $3
             RETURNING user_id, bound, name, state, expires_at",
        )
        .bind(id_hash)
        .bind(kind.as_str())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(Ceremony {
            kind,
            user_id: r.try_get("user_id")?,
            bound: r.try_get("bound")?,
            name: r.try_get("name")?,
            state: r.try_get("state")?,
            expires_at: r.try_get("expires_at")?,
        }))
    }
}
