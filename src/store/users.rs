use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, Store, StoreError, backchannel, encode_err, flag, json_err};
use crate::model::{Source, User, UserClaims};

pub(super) fn user_from_row(row: &AnyRow) -> DbResult<User> {
    let claims: String = row.try_get("claims")?;
    let source: String = row.try_get("source")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        claims: serde_json::from_str::<UserClaims>(&claims).map_err(json_err)?,
        updated_at: row.try_get("updated_at")?,
        source: Source::parse(&source).ok_or_else(|| {
            StoreError::corrupt("user source", format!("unknown source `{source}`"))
        })?,
        tokens_revoked_at: row.try_get("tokens_revoked_at")?,
        has_factor: row.try_get::<i64, _>("factors")? > 0,
    })
}

/// The columns `user_from_row` reads, from a `users` table aliased `u`: the one list for
/// every query that returns users, including the joins in `sessions` and `grants`.
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.password_hash, u.disabled, u.claims, u.updated_at, u.source, \
         u.tokens_revoked_at, (SELECT COUNT(*) FROM mfa_factors f \
         WHERE f.user_id = u.id AND f.confirmed_at IS NOT NULL) AS factors"
    };
}
pub(super) use user_columns;

/// A new user for `insert_user`.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub claims: &'a UserClaims,
    pub source: Source,
}

impl Store {
    /// Returns the new user's id (`sub`), or `None` when the username is taken.
    pub async fn insert_user(&self, u: NewUser<'_>, now: i64) -> DbResult<Option<String>> {
        let id = uuid::Uuid::new_v4().to_string();
        let claims = serde_json::to_string(u.claims).map_err(encode_err)?;
        let r = sqlx::query(
            "INSERT INTO users (id, username, username_lower, email_lower, password_hash, disabled, claims, source, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $8)
             ON CONFLICT (username_lower) DO NOTHING",
        )
        .bind(&id)
        .bind(u.username)
        .bind(u.username.to_lowercase())
        .bind(u.claims.email.as_ref().map(|e| e.to_lowercase()))
        .bind(u.password_hash)
        .bind(claims)
        .bind(u.source.as_str())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok((r.rows_affected() == 1).then_some(id))
    }

    /// Config users: created once, then their hash, claims and state follow the config.
    /// A changed password or a newly disabled account revokes what the user held, as the
    /// CLI's changes do. Returns whether that happened.
    pub async fn upsert_config_user(
        &self,
        u: NewUser<'_>,
        disabled: bool,
        now: i64,
    ) -> DbResult<bool> {
        if let Some(id) = self.insert_user(NewUser { ..u }, now).await? {
            if disabled {
                self.set_user_disabled(&id, true, now).await?;
            }
            return Ok(false);
        }
        let claims = serde_json::to_string(u.claims).map_err(encode_err)?;
        let mut tx = self.pool().begin().await?;
        let row =
            sqlx::query("SELECT id, password_hash, disabled FROM users WHERE username_lower = $1")
                .bind(u.username.to_lowercase())
                .fetch_one(&mut *tx)
                .await?;
        let id: String = row.try_get("id")?;
        let evict = row.try_get::<String, _>("password_hash")? != u.password_hash
            || (disabled && row.try_get::<i64, _>("disabled")? == 0);
        sqlx::query(
            "UPDATE users SET password_hash = $2, claims = $3, email_lower = $4, disabled = $5,
                    source = 'config', updated_at = $6
             WHERE id = $1 AND (password_hash <> $2 OR claims <> $3 OR disabled <> $5 OR source <> 'config')",
        )
        .bind(&id)
        .bind(u.password_hash)
        .bind(claims)
        .bind(u.claims.email.as_ref().map(|e| e.to_lowercase()))
        .bind(flag(disabled))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let queued = if evict {
            revoke_user_in(&mut tx, &id, now).await?
        } else {
            0
        };
        tx.commit().await?;
        self.woken_for(queued);
        Ok(evict)
    }

    /// Disable every config-defined user not in `keep` (they were removed from the config),
    /// revoking what they held. Returns their usernames.
    pub async fn disable_config_users_except(
        &self,
        keep: &[String],
        now: i64,
    ) -> DbResult<Vec<String>> {
        let keep: Vec<String> = keep.iter().map(|k| k.to_lowercase()).collect();
        let mut out = Vec::new();
        for u in self.list_users().await? {
            if u.source == Source::Config
                && !u.disabled
                && !keep.contains(&u.username.to_lowercase())
            {
                self.set_user_disabled(&u.id, true, now).await?;
                out.push(u.username);
            }
        }
        Ok(out)
    }

    /// Find by username or, failing that, by email (both case-insensitive).
    pub async fn find_user_by_login(&self, login: &str) -> DbResult<Option<User>> {
        let l = login.trim().to_lowercase();
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE username_lower = $1 UNION ALL SELECT ",
            user_columns!(),
            " FROM users u WHERE email_lower = $1 AND username_lower <> $1 LIMIT 1"
        ))
        .bind(l)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn get_user(&self, id: &str) -> DbResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user of a grant being redeemed and whether the browser session `sid` that
    /// authorized it has ended, in one round trip (code exchange and device polling).
    pub async fn grant_user(&self, id: &str, sid: Option<&str>) -> DbResult<Option<(User, bool)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", (SELECT COUNT(*) FROM sessions WHERE sid = $2 AND ended_at IS NOT NULL) AS ended
             FROM users u WHERE id = $1"
        ))
        .bind(id)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get::<i64, _>("ended")? > 0)))
            .transpose()
    }

    /// When user `id` was created (for `user show`).
    pub async fn user_created_at(&self, id: &str) -> DbResult<Option<i64>> {
        let row = sqlx::query("SELECT created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("created_at")).transpose()?)
    }

    pub async fn list_users(&self) -> DbResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u ORDER BY username_lower"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Set the password of user `id`; with `revoke`, everything the user held ends with it
    /// (in the same transaction).
    pub async fn set_user_password(
        &self,
        id: &str,
        hash: &str,
        revoke: bool,
        now: i64,
    ) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let queued = if revoke {
            revoke_user_in(&mut tx, id, now).await?
        } else {
            0
        };
        tx.commit().await?;
        self.woken_for(queued);
        Ok(())
    }

    /// Replace the claims of user `id` (a person editing their own profile). Only CLI users:
    /// a config user's claims follow the file.
    pub async fn set_user_claims(&self, id: &str, claims: &UserClaims, now: i64) -> DbResult<bool> {
        let json = serde_json::to_string(claims).map_err(encode_err)?;
        let done = sqlx::query(
            "UPDATE users SET claims = $2, updated_at = $3 WHERE id = $1 AND source = 'cli'",
        )
        .bind(id)
        .bind(json)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Disable (revoking everything the user held, in the same transaction) or enable user
    /// `id`. Enabling brings nothing back: what was revoked stays revoked.
    pub async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(flag(disabled))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let queued = if disabled {
            revoke_user_in(&mut tx, id, now).await?
        } else {
            0
        };
        tx.commit().await?;
        self.woken_for(queued);
        Ok(())
    }

    /// Sign user `id` out everywhere and revoke every grant and token they hold.
    pub async fn revoke_user(&self, id: &str, now: i64) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        let queued = revoke_user_in(&mut tx, id, now).await?;
        tx.commit().await?;
        self.woken_for(queued);
        Ok(())
    }

    /// Remove user `id`: revoke everything, then delete the account and its consents. Its
    /// `sub` is never reused (ids are random).
    pub async fn remove_user(&self, id: &str, now: i64) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        let queued = revoke_user_in(&mut tx, id, now).await?;
        sqlx::query("DELETE FROM consents WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // The user's second factors go with the account: a sealed secret nobody can use
        // would still have to be re-sealed at every master key rotation.
        super::factors::delete_factors_in(&mut tx, id).await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.woken_for(queued);
        Ok(())
    }
}

/// Everything user `id` holds ends at `now`: unredeemed codes, approved device codes not
/// yet collected, grant families (so refresh tokens), browser sessions, and (through
/// `tokens_revoked_at`, which every use checks against the time the user authenticated)
/// self-contained access tokens and anything a login still being checked creates.
///
/// Codes and device codes go first: on Postgres each statement sees what committed before
/// it started, so a code being exchanged right now either is deleted here, or has committed
/// its grant by the time the grants are revoked below.
///
/// The back-channel logouts of every session ended here are queued in the same transaction;
/// returns how many, for the caller to wake the worker after committing.
async fn revoke_user_in(conn: &mut AnyConnection, id: &str, now: i64) -> DbResult<u64> {
    for sql in [
        "DELETE FROM authorization_codes WHERE user_id = $1 AND consumed_at IS NULL",
        "UPDATE device_authorizations SET status = 'denied' WHERE user_id = $1 AND status = 'approved'",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *conn).await?;
    }
    for sql in [
        "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL",
        "UPDATE users SET tokens_revoked_at = $2 WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    backchannel::queue_for_user(conn, id, now).await
}
