//! Second factors, recovery codes, and sign-ins waiting for their second factor.
//!
//! Every check that guards a use is in the statement that records it: a TOTP step is
//! accepted by the `UPDATE` that moves `last_step` past it, a recovery code by the `UPDATE`
//! that marks it used, a pending sign-in by the `DELETE` that takes it. Two concurrent uses of
//! one code get one success.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::keys::Reseal;
use super::{DbResult, Store, StoreError};
use crate::model::{Factor, FactorKind, PendingLogin, PendingPurpose, TotpRow};

/// How many sign-ins may wait for one user's second factor at once.
pub const MAX_PENDING_PER_USER: i64 = 5;

/// What came of removing a factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// The user has no such factor.
    Gone,
    /// It is the last one, and the server requires one.
    LastOne,
}

/// A factor being enrolled: stored unconfirmed until the user proves they hold it.
pub struct NewFactor<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub kind: FactorKind,
    pub name: &'a str,
    pub secret_enc: Option<&'a str>,
    pub created_at: i64,
    /// When the enrolment lapses if not confirmed.
    pub expires_at: i64,
}

fn factor_from_row(r: &AnyRow) -> DbResult<Factor> {
    let kind: String = r.try_get("kind")?;
    Ok(Factor {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        kind: FactorKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt("factor kind", format!("unknown kind `{kind}`")))?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
        last_used_at: r.try_get("last_used_at")?,
        discoverable: r.try_get::<i64, _>("discoverable")? != 0,
    })
}

fn totp_from_row(r: &AnyRow) -> DbResult<TotpRow> {
    Ok(TotpRow {
        id: r.try_get("id")?,
        secret_enc: r
            .try_get::<Option<String>, _>("secret_enc")?
            .ok_or_else(|| StoreError::corrupt("TOTP factor", "no sealed secret"))?,
        last_step: r.try_get("last_step")?,
    })
}

impl Store {
    /// Store an enrolment, replacing the user's unfinished ones of the same kind: however
    /// often setup is started, one row per user waits for its first code.
    pub async fn insert_factor(&self, f: &NewFactor<'_>) -> DbResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM mfa_factors WHERE user_id = $1 AND kind = $2 AND confirmed_at IS NULL",
        )
        .bind(f.user_id)
        .bind(f.kind.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO mfa_factors (id, user_id, kind, name, secret_enc, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(f.id)
        .bind(f.user_id)
        .bind(f.kind.as_str())
        .bind(f.name)
        .bind(f.secret_enc)
        .bind(f.created_at)
        .bind(f.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user's confirmed factors, oldest first.
    pub async fn factors(&self, user_id: &str) -> DbResult<Vec<Factor>> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, name, created_at, confirmed_at, last_used_at, discoverable FROM mfa_factors
             WHERE user_id = $1 AND confirmed_at IS NOT NULL ORDER BY confirmed_at, id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(factor_from_row).collect()
    }

    /// Whether the user has a confirmed second factor.
    pub async fn has_factor(&self, user_id: &str) -> DbResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// The user's confirmed authenticator app, for checking a code.
    pub async fn confirmed_totp(&self, user_id: &str) -> DbResult<Option<TotpRow>> {
        let row = sqlx::query(
            "SELECT id, secret_enc, last_step FROM mfa_factors
             WHERE user_id = $1 AND kind = 'totp' AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(totp_from_row).transpose()
    }

    /// An enrolment of this user's, still waiting for its first code.
    pub async fn unconfirmed_totp(
        &self,
        id: &str,
        user_id: &str,
        now: i64,
    ) -> DbResult<Option<TotpRow>> {
        let row = sqlx::query(
            "SELECT id, secret_enc, last_step FROM mfa_factors
             WHERE id = $1 AND user_id = $2 AND kind = 'totp' AND confirmed_at IS NULL AND expires_at > $3",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(totp_from_row).transpose()
    }

    /// Make an enrolment active with the step of the code that confirmed it (so that code
    /// cannot sign in again, RFC 6238 section 5.2). False when it lapsed, was confirmed
    /// already, the user has an active authenticator app already, or a factor was added
    /// since it started (an enrolment started with the password alone does not finish once
    /// the account has a factor, whose proof adding one then needs).
    pub async fn confirm_totp(
        &self,
        id: &str,
        user_id: &str,
        step: i64,
        now: i64,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET confirmed_at = $4, expires_at = NULL, last_step = $3, last_used_at = $4
             WHERE id = $1 AND user_id = $2 AND confirmed_at IS NULL AND expires_at > $4
               AND NOT EXISTS (SELECT 1 FROM mfa_factors o
                               WHERE o.user_id = $2 AND o.confirmed_at IS NOT NULL
                                 AND (o.kind = 'totp' OR o.confirmed_at >= mfa_factors.created_at))",
        )
        .bind(id)
        .bind(user_id)
        .bind(step)
        .bind(now)
        .execute(self.pool())
        .await;
        match done {
            Ok(d) => Ok(d.rows_affected() == 1),
            // Two confirmations raced past the NOT EXISTS: the unique index refused the
            // second, which lost.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Accept a TOTP code's time step: true only if it is later than every step accepted
    /// before (RFC 6238 section 5.2: a code is accepted once; an older one never again).
    pub async fn accept_totp_step(&self, id: &str, step: i64, now: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET last_step = $2, last_used_at = $3
             WHERE id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
        )
        .bind(id)
        .bind(step)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Rename one of the user's confirmed factors. False when the user has no such factor.
    pub async fn rename_factor(&self, user_id: &str, id: &str, name: &str) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET name = $3 WHERE id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL",
        )
        .bind(id)
        .bind(user_id)
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Remove one of the user's factors; with the last one go the recovery codes, which
    /// would otherwise be a second factor for an account that has none. With `keep_one`
    /// (the server requires a second factor) the last one stays.
    pub async fn remove_factor(
        &self,
        user_id: &str,
        id: &str,
        keep_one: bool,
    ) -> DbResult<Removal> {
        let mut tx = self.begin().await?;
        // Takes the user's row lock on Postgres (SQLite has one writer at a time): two
        // removals of an account's last two factors run one after the other, so the second
        // sees that it would remove the last.
        sqlx::query("UPDATE users SET id = id WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM mfa_factors WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(Removal::Gone);
        }
        let left: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if left == 0 {
            if keep_one {
                // Dropping the transaction rolls the delete back.
                return Ok(Removal::LastOne);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Removal::Removed)
    }

    /// Remove every factor and recovery code of the user (an admin's reset). How many
    /// confirmed factors there were.
    pub async fn reset_factors(&self, user_id: &str) -> DbResult<u64> {
        let mut tx = self.begin().await?;
        let confirmed: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        delete_factors_in(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(u64::try_from(confirmed).unwrap_or(0))
    }

    /// Every sealed TOTP secret, for re-sealing after a master key rotation: (id, user id,
    /// sealed). Unfinished enrolments are few (one per user, replaced at each start).
    pub async fn sealed_factor_secrets(&self) -> DbResult<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT id, user_id, secret_enc FROM mfa_factors WHERE secret_enc IS NOT NULL ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("user_id")?,
                    r.try_get("secret_enc")?,
                ))
            })
            .collect()
    }

    /// Replace sealed TOTP secrets in one transaction, each only if it still holds what was
    /// read (`keys::reseal_keys` explains why). How many were replaced.
    pub async fn reseal_factor_secrets(&self, batch: &[Reseal]) -> DbResult<usize> {
        let mut tx = self.begin().await?;
        let mut replaced = 0;
        for r in batch {
            let done = sqlx::query(
                "UPDATE mfa_factors SET secret_enc = $1 WHERE id = $2 AND secret_enc = $3",
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

    /// Replace the user's recovery codes with a new set (their hashes), in one transaction:
    /// the old set stops working as the new one starts.
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: i64,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for h in hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(user_id)
            .bind(h)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Use a recovery code: true for the first use only.
    pub async fn use_recovery_code(&self, user_id: &str, hash: &str, now: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many of the user's recovery codes are still unused.
    pub async fn recovery_codes_left(&self, user_id: &str) -> DbResult<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?)
    }

    /// Store a sign-in waiting for its second factor. A user has at most
    /// `MAX_PENDING_PER_USER` of them: the oldest beyond that goes, so right passwords typed
    /// over and over (by the user in several browsers, or by someone who knows it) cannot
    /// grow the table.
    pub async fn insert_pending_login(
        &self,
        id_hash: &str,
        p: &PendingLogin,
        now: i64,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM pending_logins WHERE user_id = $1 AND id_hash NOT IN
               (SELECT id_hash FROM pending_logins WHERE user_id = $1
                ORDER BY created_at DESC, id_hash LIMIT $2)",
        )
        .bind(&p.user_id)
        .bind(MAX_PENDING_PER_USER - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO pending_logins (id_hash, user_id, purpose, interaction, amr, auth_time, created_at, expires_at, sid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id_hash)
        .bind(&p.user_id)
        .bind(p.purpose.as_str())
        .bind(p.interaction.as_deref())
        .bind(p.amr.join(" "))
        .bind(p.auth_time)
        .bind(now)
        .bind(p.expires_at)
        .bind(p.sid.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live pending sign-in, left in place (a wrong code may be typed again).
    pub async fn get_pending_login(
        &self,
        id_hash: &str,
        now: i64,
    ) -> DbResult<Option<PendingLogin>> {
        let row = sqlx::query(
            "SELECT user_id, purpose, interaction, sid, amr, auth_time, expires_at FROM pending_logins
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(pending_from_row).transpose()
    }

    /// Take a pending sign-in once its factor is accepted: only the first caller gets it.
    pub async fn take_pending_login(
        &self,
        id_hash: &str,
        now: i64,
    ) -> DbResult<Option<PendingLogin>> {
        let row = sqlx::query(
            "DELETE FROM pending_logins WHERE id_hash = $1 AND expires_at > $2
             RETURNING user_id, purpose, interaction, sid, amr, auth_time, expires_at",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(pending_from_row).transpose()
    }
}

/// Delete every factor, recovery code and pending sign-in of `user_id` (an admin's reset, a
/// removed account), in the caller's transaction.
pub(super) async fn delete_factors_in(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
) -> DbResult<()> {
    for sql in [
        "DELETE FROM mfa_factors WHERE user_id = $1",
        "DELETE FROM recovery_codes WHERE user_id = $1",
        "DELETE FROM pending_logins WHERE user_id = $1",
        "DELETE FROM passkey_ceremonies WHERE user_id = $1",
    ] {
        sqlx::query(sql).bind(user_id).execute(&mut *conn).await?;
    }
    Ok(())
}

fn pending_from_row(r: &AnyRow) -> DbResult<PendingLogin> {
    let purpose: String = r.try_get("purpose")?;
    Ok(PendingLogin {
        user_id: r.try_get("user_id")?,
        purpose: PendingPurpose::parse(&purpose).ok_or_else(|| {
            StoreError::corrupt("pending sign-in", format!("unknown purpose `{purpose}`"))
        })?,
        interaction: r.try_get("interaction")?,
        sid: r.try_get("sid")?,
        amr: r
            .try_get::<String, _>("amr")?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        auth_time: r.try_get("auth_time")?,
        expires_at: r.try_get("expires_at")?,
    })
}
