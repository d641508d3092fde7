//! Browser sessions, pending interactions and remembered consents.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::user_columns;
use super::{DbResult, Store, backchannel};
use crate::model::{Consent, Session, User};
use crate::oauth::types::ScopeSet;

/// The columns `session_from_row` reads, from a `sessions` table aliased `s`.
const SESSION_COLUMNS: &str = "s.id_hash, s.sid, s.user_id, s.auth_time, s.amr, s.created_at, \
     s.last_seen_at, s.expires_at, s.mfa_at, s.ip, s.user_agent";

fn session_from_row(row: &AnyRow) -> DbResult<Session> {
    Ok(Session {
        id_hash: row.try_get("id_hash")?,
        sid: row.try_get("sid")?,
        user_id: row.try_get("user_id")?,
        auth_time: row.try_get("auth_time")?,
        amr: row
            .try_get::<String, _>("amr")?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        mfa_at: row.try_get("mfa_at")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
    })
}

/// What removing an app's access came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppRemoval {
    /// A remembered consent was deleted.
    pub consent: bool,
    /// Grant families revoked (each with its refresh tokens).
    pub grants: u64,
}

/// How many sessions or apps the account page lists: a page stays small however many a
/// user has (the rest are still signed out by "all other sessions").
pub const MAX_LISTED: i64 = 50;

impl Store {
    pub async fn insert_session(&self, s: &Session) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, sid, user_id, auth_time, amr, created_at, last_seen_at, expires_at, mfa_at, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&s.id_hash)
        .bind(&s.sid)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(s.amr.join(" "))
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.mfa_at)
        .bind(s.ip.as_deref())
        .bind(s.user_agent.as_deref())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A live session: not ended, within its absolute lifetime and not idle longer than
    /// `idle_ttl`. Touches `last_seen_at` (at most once a minute, to spare writes).
    pub async fn get_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_ttl: i64,
    ) -> DbResult<Option<(Session, User)>> {
        // The user comes in the same round trip: every caller needs both.
        let row = sqlx::query(concat!(
            "SELECT s.id_hash, s.sid, s.user_id, s.auth_time, s.amr, s.created_at, s.last_seen_at,
                    s.expires_at, s.mfa_at, s.ip, s.user_agent, ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2
               AND s.last_seen_at > $3 AND s.auth_time > u.tokens_revoked_at"
        ))
        .bind(id_hash)
        .bind(now)
        .bind(now - idle_ttl)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let s = session_from_row(&row)?;
        if now - s.last_seen_at >= 60 {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(now)
                .execute(self.pool())
                .await?;
        }
        Ok(Some((s, super::users::user_from_row(&row)?)))
    }

    /// Add a second factor to a live session in place (a step-up): the same `sid`, so the
    /// clients it signed in to and their back-channel logouts still match, under a new id,
    /// since a session that gains privilege gets a new cookie. False when the session ended
    /// or expired meanwhile.
    pub async fn elevate_session(
        &self,
        id_hash: &str,
        new_id_hash: &str,
        amr: &[String],
        now: i64,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET id_hash = $2, amr = $3, mfa_at = $4, last_seen_at = $4
             WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $4",
        )
        .bind(id_hash)
        .bind(new_id_hash)
        .bind(amr.join(" "))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// End a session; returns its public `sid` when it was live. In the same transaction:
    /// with `revoke_grants`, the grants issued in it are revoked (so a client is never told
    /// of the logout while its refresh token still works), and the back-channel logouts of
    /// the clients it signed in to are queued.
    pub async fn end_session(
        &self,
        id_hash: &str,
        now: i64,
        revoke_grants: bool,
    ) -> DbResult<Option<String>> {
        let end = sqlx::query(
            "UPDATE sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL RETURNING sid",
        )
        .bind(id_hash)
        .bind(now);
        self.end_session_where(end, now, revoke_grants).await
    }

    /// [`Store::end_session`] for the session of `user_id` whose public `sid` is `sid`: by
    /// its sid, which a step-up (`elevate_session`) does not change, where its id does.
    pub async fn end_session_of_user(
        &self,
        user_id: &str,
        sid: &str,
        now: i64,
    ) -> DbResult<Option<String>> {
        let end = sqlx::query(
            "UPDATE sessions SET ended_at = $3 WHERE sid = $1 AND user_id = $2 AND ended_at IS NULL RETURNING sid",
        )
        .bind(sid)
        .bind(user_id)
        .bind(now);
        self.end_session_where(end, now, true).await
    }

    async fn end_session_where(
        &self,
        end: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        now: i64,
        revoke_grants: bool,
    ) -> DbResult<Option<String>> {
        let mut tx = self.begin().await?;
        let row = end.fetch_optional(&mut *tx).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sid: String = row.try_get("sid")?;
        if revoke_grants {
            super::grants::revoke_grants_of_session_in(&mut tx, &sid, now).await?;
        }
        let queued = backchannel::queue_for_session(&mut tx, &sid, now).await?;
        tx.commit().await?;
        self.woken_for(queued);
        Ok(Some(sid))
    }

    /// Every live session of `user_id` (the `MAX_LISTED` most recently seen), by the rule
    /// of [`Store::get_session`]: not ended,
    /// within its absolute lifetime, not idle longer than `idle_ttl`, and begun after the
    /// user's last revocation. Most recently seen first. Reads only: nothing is touched.
    pub async fn live_sessions(
        &self,
        user_id: &str,
        now: i64,
        idle_ttl: i64,
    ) -> DbResult<Vec<Session>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.user_id = $1 AND s.ended_at IS NULL AND s.expires_at > $2
               AND s.last_seen_at > $3 AND s.auth_time > u.tokens_revoked_at
             ORDER BY s.last_seen_at DESC, s.created_at DESC, s.sid LIMIT $4"
        )))
        .bind(user_id)
        .bind(now)
        .bind(now - idle_ttl)
        .bind(MAX_LISTED)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// The sids of every session of `user_id` not yet ended, but `keep_sid`.
    pub async fn other_sessions(&self, user_id: &str, keep_sid: &str) -> DbResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT sid FROM sessions WHERE user_id = $1 AND sid <> $2 AND ended_at IS NULL",
        )
        .bind(user_id)
        .bind(keep_sid)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("sid"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn insert_interaction(
        &self,
        id_hash: &str,
        client_id: &str,
        request: &str,
        now: i64,
        ttl: i64,
    ) -> DbResult<()> {
        sqlx::query("INSERT INTO interactions (id_hash, client_id, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id_hash)
            .bind(client_id)
            .bind(request)
            .bind(now)
            .bind(now + ttl)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn get_interaction(&self, id_hash: &str, now: i64) -> DbResult<Option<String>> {
        let row =
            sqlx::query("SELECT request FROM interactions WHERE id_hash = $1 AND expires_at > $2")
                .bind(id_hash)
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|r| r.try_get("request")).transpose()?)
    }

    /// Single use: returns the request only to the first caller.
    pub async fn take_interaction(&self, id_hash: &str, now: i64) -> DbResult<Option<String>> {
        let row = sqlx::query(
            "DELETE FROM interactions WHERE id_hash = $1 AND expires_at > $2 RETURNING request",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("request")).transpose()?)
    }

    pub async fn get_consent(&self, user_id: &str, client_id: &str) -> DbResult<ScopeSet> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => ScopeSet::parse(&r.try_get::<String, _>("scopes")?).unwrap_or_default(),
            None => ScopeSet::default(),
        })
    }

    /// Adds to what was granted before.
    pub async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &ScopeSet,
        now: i64,
    ) -> DbResult<()> {
        let all = self.get_consent(user_id, client_id).await?.union(scopes);
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = $3, updated_at = $4",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(all.to_wire())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
    /// The clients `user_id` holds a live grant with (refresh tokens), each with when its
    /// latest grant was made, most recent first: `skip_consent` apps and devices hold grants
    /// without a remembered consent. At most `MAX_LISTED`.
    pub async fn clients_with_live_grants(
        &self,
        user_id: &str,
        now: i64,
    ) -> DbResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT client_id, MAX(created_at) AS since FROM grants
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
             GROUP BY client_id ORDER BY since DESC, client_id LIMIT $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(MAX_LISTED)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("client_id")?, r.try_get("since")?)))
            .collect()
    }

    /// The clients `user_id` has consented to (the `MAX_LISTED` most recent), most recently
    /// updated first.
    pub async fn consents(&self, user_id: &str) -> DbResult<Vec<Consent>> {
        let rows = sqlx::query(
            "SELECT client_id, scopes, updated_at FROM consents WHERE user_id = $1
             ORDER BY updated_at DESC, client_id LIMIT $2",
        )
        .bind(user_id)
        .bind(MAX_LISTED)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Consent {
                    client_id: r.try_get("client_id")?,
                    scopes: ScopeSet::parse(&r.try_get::<String, _>("scopes")?).unwrap_or_default(),
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Take away everything `user_id` gave `client_id`, in one transaction: the remembered
    /// consent (so the next request asks again), its unredeemed codes and approved device
    /// codes, and every grant family (so its refresh tokens, offline ones too, and the access
    /// tokens that introspect through them), and the back-channel logouts of the client in
    /// the user's live sessions are queued. As in `users::revoke_user_in`, codes go before
    /// grants: on Postgres a code being exchanged right now either is deleted here or has
    /// committed its grant by the time the grants are revoked.
    pub async fn remove_app(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> DbResult<AppRemoval> {
        let mut tx = self.begin().await?;
        let consent = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        for sql in [
            "DELETE FROM authorization_codes WHERE user_id = $1 AND client_id = $2 AND consumed_at IS NULL",
            "UPDATE device_authorizations SET status = 'denied' WHERE user_id = $1 AND client_id = $2 AND status = 'approved'",
        ] {
            sqlx::query(sql)
                .bind(user_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        let grants =
            super::grants::revoke_client_grants_of_user_in(&mut tx, user_id, client_id, now)
                .await?;
        let queued = backchannel::queue_for_client(&mut tx, user_id, client_id, now).await?;
        tx.commit().await?;
        self.woken_for(queued);
        Ok(AppRemoval { consent, grants })
    }
}
