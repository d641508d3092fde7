//! Authorization codes, grant families, refresh tokens and access-token revocation.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::model::{CodeData, CodeRedemption, CodeRow, GrantData, RefreshRow, User};
use super::{DbResult, Store, json_err};

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

/// What an attempt to rotate a refresh token found.
pub enum Rotation {
    /// This caller won the rotation; it must mint, then `finish_rotation`.
    Won(RefreshRow),
    /// Someone rotated it already.
    AlreadyRotated(RefreshRow),
    Unknown,
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

    /// Consume a code atomically (`UPDATE … WHERE consumed_at IS NULL … RETURNING`): of two
    /// concurrent redemptions only one sees `Valid`.
    pub async fn consume_code(&self, code_hash: &str, now: i64) -> DbResult<CodeRedemption> {
        let row = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2
             WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2
             RETURNING grant_id, client_id, user_id, data, expires_at",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            let data: String = row.try_get("data")?;
            return Ok(CodeRedemption::Valid(CodeRow {
                grant_id: row.try_get("grant_id")?,
                client_id: row.try_get("client_id")?,
                user_id: row.try_get("user_id")?,
                data: serde_json::from_str(&data).map_err(json_err)?,
                expires_at: row.try_get("expires_at")?,
            }));
        }
        let row = sqlx::query(
            "SELECT grant_id, consumed_at FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => CodeRedemption::Unknown,
            Some(r) if r.try_get::<Option<i64>, _>("consumed_at")?.is_some() => {
                CodeRedemption::Reused {
                    grant_id: r.try_get("grant_id")?,
                }
            }
            Some(_) => CodeRedemption::Expired,
        })
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

    /// Mark a refresh token rotated, atomically, inside `tx`. The caller then mints the new
    /// pair and calls [`finish_rotation`] in the same transaction, so a crash leaves either
    /// the old token valid or the new one issued, never neither.
    pub async fn begin_rotation(
        tx: &mut AnyConnection,
        token_hash: &str,
        now: i64,
    ) -> DbResult<Rotation> {
        let won = sqlx::query("UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL")
            .bind(token_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        let row = sqlx::query(REFRESH_SELECT)
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(match row {
            None => Rotation::Unknown,
            Some(r) if won => Rotation::Won(refresh_from_row(&r)?),
            Some(r) => Rotation::AlreadyRotated(refresh_from_row(&r)?),
        })
    }

    /// Insert the successor and keep the sealed response on the old row for the grace window.
    pub async fn finish_rotation(
        tx: &mut AnyConnection,
        old_hash: &str,
        sealed_response: &str,
        new: &NewRefresh<'_>,
        now: i64,
    ) -> DbResult<()> {
        insert_refresh(tx, new, now).await?;
        sqlx::query("UPDATE refresh_tokens SET successor = $2 WHERE token_hash = $1")
            .bind(old_hash)
            .bind(sealed_response)
            .execute(&mut *tx)
            .await?;
        Ok(())
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

    /// Revoke every grant started in a browser session (logout).
    pub async fn revoke_grants_of_session(&self, sid: &str, now: i64) -> DbResult<u64> {
        let r =
            sqlx::query("UPDATE grants SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL")
                .bind(sid)
                .bind(now)
                .execute(self.pool())
                .await?;
        Ok(r.rows_affected())
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
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1)
                  + (SELECT COUNT(*) FROM grants WHERE id = $2 AND revoked_at IS NOT NULL)
                    AS revoked_n,
                    u.id, u.username, u.password_hash, u.disabled, u.claims, u.updated_at
             FROM (SELECT 1 AS one) AS one LEFT JOIN users u ON u.id = $3",
        )
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
