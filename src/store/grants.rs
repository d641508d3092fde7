//! Authorization codes, grant families, refresh tokens and access-token revocation.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::users::user_columns;
use super::{DbResult, Store, json_err};
use crate::model::{CodeData, CodeRedemption, CodeRow, GrantData, RefreshRow, User};

/// A grant family to record (any grant that can issue refresh tokens).
pub struct NewGrant<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub expires_at: i64,
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

/// Revoke every grant started in a browser session, inside the transaction that ends it.
pub(crate) async fn revoke_grants_of_session_in(
    conn: &mut AnyConnection,
    sid: &str,
    now: i64,
) -> DbResult<u64> {
    let r = sqlx::query("UPDATE grants SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL")
        .bind(sid)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

pub(crate) async fn insert_grant(
    conn: &mut AnyConnection,
    g: &NewGrant<'_>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO grants (id, client_id, user_id, sid, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(g.id)
    .bind(g.client_id)
    .bind(g.user_id)
    .bind(g.sid)
    .bind(now)
    .bind(g.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn insert_refresh(
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
    .bind(serde_json::to_string(r.data).map_err(json_err)?)
    .bind(now)
    .bind(r.expires_at)
    .bind(r.family_expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        .bind(serde_json::to_string(data).map_err(json_err)?)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Read a code without using it up. The token endpoint checks and mints first, then
    /// claims the code ([`Store::claim_code`]) in the transaction that records the grant.
    pub async fn peek_code(&self, code_hash: &str, now: i64) -> DbResult<CodeRedemption> {
        let row = sqlx::query(
            "SELECT grant_id, client_id, user_id, data, expires_at, consumed_at, failed_at
             FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(CodeRedemption::Unknown);
        };
        Ok(if row.try_get::<Option<i64>, _>("consumed_at")?.is_some() {
            CodeRedemption::Reused {
                grant_id: row.try_get("grant_id")?,
                issued: row.try_get::<Option<i64>, _>("failed_at")?.is_none(),
            }
        } else if row.try_get::<i64, _>("expires_at")? <= now {
            CodeRedemption::Expired
        } else {
            CodeRedemption::Valid(code_from_row(&row)?)
        })
    }

    /// Use a code up on a connection of its own, outside any transaction: for a code that
    /// failed a check and is burnt without issuing anything, which `failed_at` records (a
    /// later attempt is then told so). Like [`Store::claim_code`], true only for the one
    /// caller that used it up.
    pub async fn spend_code(&self, code_hash: &str, now: i64) -> DbResult<bool> {
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

    /// Use a code up inside `conn`'s transaction (`UPDATE … WHERE consumed_at IS NULL`):
    /// exactly one of any number of concurrent callers gets true; the rest must not issue
    /// anything.
    pub async fn claim_code(conn: &mut AnyConnection, code_hash: &str, now: i64) -> DbResult<bool> {
        let r = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2
             WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record a grant family and its first refresh token, inside the caller's transaction
    /// (so whatever made the grant valid, a code or an approval, is used up in the same one).
    pub async fn insert_grant_and_refresh(
        conn: &mut AnyConnection,
        g: &NewGrant<'_>,
        r: &NewRefresh<'_>,
        now: i64,
    ) -> DbResult<()> {
        insert_grant(conn, g, now).await?;
        insert_refresh(conn, r, now).await
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

    pub async fn begin(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        self.pool().begin().await
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

    /// Revoke every grant started in browser session `sid`.
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
