//! Authorization codes, grant families, refresh tokens and access-token revocation.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::users::user_columns;
use super::{DbResult, Store, encode_err, json_err};
use crate::model::{
    CodeData, CodeLookup, CodeRedemption, CodeRefusal, CodeRow, GrantData, RefreshRow, User,
};

/// A grant family to record (any grant that can issue refresh tokens).
pub struct NewGrant<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub expires_at: i64,
    /// Made with `offline_access`: outlives the end of its browser session.
    pub offline_access: bool,
}

/// A grant family and its first refresh token, recorded together (`record_grant`, and the
/// redemptions that start a family: `redeem_code`, `redeem_device`).
pub struct NewFamily<'a> {
    pub grant: NewGrant<'a>,
    pub refresh: NewRefresh<'a>,
}

/// A refresh token to record.
pub struct NewRefresh<'a> {
    pub token_hash: &'a str,
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub user_id: Option<&'a str>,
    pub data: &'a GrantData,
    pub expires_at: i64,
    pub family_expires_at: i64,
}

fn code_from_row(row: &AnyRow) -> DbResult<CodeRow> {
    let data: String = row.try_get("data")?;
    Ok(CodeRow {
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        data: serde_json::from_str(&data).map_err(json_err)?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn refresh_from_row(row: &AnyRow) -> DbResult<RefreshRow> {
    let data: String = row.try_get("data")?;
    Ok(RefreshRow {
        token_hash: row.try_get("token_hash")?,
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        data: serde_json::from_str(&data).map_err(json_err)?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        family_expires_at: row.try_get("family_expires_at")?,
        rotated_at: row.try_get("rotated_at")?,
        successor: row.try_get("successor")?,
        grant_revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    })
}

const REFRESH_SELECT: &str =
    "SELECT r.token_hash, r.grant_id, r.client_id, r.user_id, r.data, r.created_at,
        r.expires_at, r.family_expires_at, r.rotated_at, r.successor, g.revoked_at
     FROM refresh_tokens r LEFT JOIN grants g ON g.id = r.grant_id WHERE r.token_hash = $1";

/// Revoke the grants started in a browser session, inside the transaction that ends it:
/// every one but those made with `offline_access`, which is access for when the user is not
/// signed in (OpenID Connect Core section 11; Back-Channel Logout 1.0 section 2.7: such
/// refresh tokens "normally SHOULD NOT be revoked").
pub(super) async fn revoke_grants_of_session_in(
    conn: &mut AnyConnection,
    sid: &str,
    now: i64,
) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE grants SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL AND offline_access = 0",
    )
        .bind(sid)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// Revoke every grant family of `user_id` at `client_id`, offline ones too, inside the
/// caller's transaction: the user took the app's access away (the account page), which
/// `offline_access` does not outlive.
pub(super) async fn revoke_client_grants_of_user_in(
    conn: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE grants SET revoked_at = $3 WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

pub(super) async fn insert_grant(
    conn: &mut AnyConnection,
    g: &NewGrant<'_>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO grants (id, client_id, user_id, sid, created_at, expires_at, offline_access)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(g.id)
    .bind(g.client_id)
    .bind(g.user_id)
    .bind(g.sid)
    .bind(now)
    .bind(g.expires_at)
    .bind(super::flag(g.offline_access))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_refresh(
    conn: &mut AnyConnection,
    r: &NewRefresh<'_>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, data, created_at, expires_at, family_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.token_hash)
    .bind(r.grant_id)
    .bind(r.client_id)
    .bind(r.user_id)
    .bind(serde_json::to_string(r.data).map_err(encode_err)?)
    .bind(now)
    .bind(r.expires_at)
    .bind(r.family_expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A grant family and its first refresh token, inside the caller's transaction.
pub(super) async fn insert_family(
    conn: &mut AnyConnection,
    f: &NewFamily<'_>,
    now: i64,
) -> DbResult<()> {
    insert_grant(conn, &f.grant, now).await?;
    insert_refresh(conn, &f.refresh, now).await
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_code(
        &self,
        code_hash: &str,
        grant_id: &str,
        client_id: &str,
        user_id: &str,
        data: &CodeData,
        now: i64,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, user_id, data, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(code_hash)
        .bind(grant_id)
        .bind(client_id)
        .bind(user_id)
        .bind(serde_json::to_string(data).map_err(encode_err)?)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Read a code without using it up: the token endpoint checks the request against it
    /// and mints first, then either redeems it ([`Store::redeem_code`]) or burns it
    /// ([`Store::burn_code`]). Expiry is judged by `now`, never the database clock.
    pub async fn peek_code(&self, code_hash: &str, now: i64) -> DbResult<CodeLookup> {
        let row = sqlx::query(
            "SELECT grant_id, client_id, user_id, data, expires_at, consumed_at, failed_at
             FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(CodeLookup::Refused(CodeRefusal::Unknown));
        };
        Ok(if row.try_get::<Option<i64>, _>("consumed_at")?.is_some() {
            CodeLookup::Refused(CodeRefusal::AlreadyUsed {
                grant_id: row.try_get("grant_id")?,
                issued: row.try_get::<Option<i64>, _>("failed_at")?.is_none(),
            })
        } else if row.try_get::<i64, _>("expires_at")? <= now {
            CodeLookup::Refused(CodeRefusal::Expired)
        } else {
            CodeLookup::Redeemable(code_from_row(&row)?)
        })
    }

    /// Burn a code that failed a check: use it up without issuing anything, and record that
    /// (`failed_at`), so a later attempt is told nothing came of it rather than having its
    /// grant revoked. One statement, no transaction. Like [`Store::redeem_code`], true only
    /// for the one caller that used it up; false, having written nothing, if it was already
    /// used or has expired by `now`.
    pub async fn burn_code(&self, code_hash: &str, now: i64) -> DbResult<bool> {
        let r = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2, failed_at = $2
             WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Redeem a code: use it up (`UPDATE … WHERE consumed_at IS NULL AND expires_at > now`)
    /// and record `family`, if any (a grant with a refresh token), in one transaction that
    /// this call opens and commits. Either the code is spent and the family exists, or
    /// neither. Of any number of concurrent callers exactly one gets `Redeemed`.
    ///
    /// Every other caller gets `Refused`, having written nothing, with the code's state read
    /// after the attempt: `AlreadyUsed` (with the grant, so a second redemption can revoke
    /// it, RFC 6749 §4.1.2), `Expired` by `now`, or `Unknown`.
    ///
    /// The caller signs its tokens *before* this, so no transaction (on SQLite, no write
    /// lock) is held across RSA signatures; a lost race only wastes what it minted.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
        family: Option<&NewFamily<'_>>,
    ) -> DbResult<CodeRedemption> {
        let mut tx = self.begin().await?;
        let won = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2
             WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !won {
            // Let go of the transaction (and on SQLite the write lock) before reading why.
            drop(tx);
            return Ok(CodeRedemption::Refused(
                match self.peek_code(code_hash, now).await? {
                    CodeLookup::Refused(why) => why,
                    // Not possible (a used code stays used, and expiry is judged by the
                    // same `now`), but never an answer that could be taken for success.
                    CodeLookup::Redeemable(_) => CodeRefusal::Unknown,
                },
            ));
        }
        if let Some(f) = family {
            insert_family(&mut tx, f, now).await?;
        }
        tx.commit().await?;
        Ok(CodeRedemption::Redeemed)
    }

    /// Record a grant family and its first refresh token, in one transaction of its own: for
    /// a grant that used nothing up (the password grant).
    pub async fn record_grant(&self, family: &NewFamily<'_>, now: i64) -> DbResult<()> {
        let mut tx = self.begin().await?;
        insert_family(&mut tx, family, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_refresh(&self, token_hash: &str) -> DbResult<Option<RefreshRow>> {
        let row = sqlx::query(REFRESH_SELECT)
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    /// Rotate a refresh token whose successor is already minted: claim the old token (still
    /// unrotated, unexpired, its grant unrevoked), keep the sealed response on it for the
    /// grace window, and insert the successor, all in one transaction. Returns false, having
    /// written nothing, when the claim fails: another request rotated it first, or it expired
    /// or was revoked since the caller read it.
    ///
    /// The caller signs *before* this, so no transaction (and on SQLite, no write lock) is
    /// held across RSA signatures; a lost race only wastes the minted pair.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        sealed_response: &str,
        new: &NewRefresh<'_>,
        now: i64,
    ) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        let won = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $2, successor = $3
             WHERE token_hash = $1 AND rotated_at IS NULL AND expires_at > $2
               AND NOT EXISTS (SELECT 1 FROM grants g
                               WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NOT NULL)",
        )
        .bind(old_hash)
        .bind(now)
        .bind(sealed_response)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !won {
            return Ok(false);
        }
        insert_refresh(&mut tx, new, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A transaction for one of the store's own operations; never handed out.
    pub(super) async fn begin(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool().begin().await?)
    }

    /// Revoke a grant family: its refresh tokens stop working and its access tokens
    /// introspect as inactive. Idempotent; works for grants never recorded before.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        client_id: &str,
        now: i64,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO grants (id, client_id, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $3)
             ON CONFLICT (id) DO UPDATE SET revoked_at = $3 WHERE grants.revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(client_id)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Revoke the grants started in browser session `sid`, but not its offline ones.
    pub async fn revoke_grants_of_session(&self, sid: &str, now: i64) -> DbResult<u64> {
        let mut conn = self.pool().acquire().await?;
        revoke_grants_of_session_in(&mut conn, sid, now).await
    }

    /// Revoke one access token by its `jti` until it would have expired anyway.
    pub async fn revoke_jti(&self, jti: &str, expires_at: i64) -> DbResult<()> {
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// One round trip for what introspection and userinfo need: whether the token is revoked
    /// (by jti or through its grant) and, for a user's token, the user.
    pub async fn access_token_state(
        &self,
        jti: &str,
        grant_id: &str,
        user_id: Option<&str>,
    ) -> DbResult<(bool, Option<User>)> {
        // The LEFT JOIN against a one-row table keeps the row when there is no such user.
        let row = sqlx::query(concat!(
            "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1)
                  + (SELECT COUNT(*) FROM grants WHERE id = $2 AND revoked_at IS NOT NULL)
                    AS revoked_n, ",
            user_columns!(),
            " FROM (SELECT 1 AS one) AS one LEFT JOIN users u ON u.id = $3"
        ))
        .bind(jti)
        .bind(grant_id)
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        let revoked = row.try_get::<i64, _>("revoked_n")? > 0;
        let user = match row.try_get::<Option<String>, _>("id")? {
            Some(_) => Some(super::users::user_from_row(&row)?),
            None => None,
        };
        Ok((revoked, user))
    }
}
