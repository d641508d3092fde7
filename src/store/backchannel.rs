//! Back-channel logout deliveries (OpenID Connect Back-Channel Logout 1.0), an outbox in the
//! store so that a crash or a restart loses none and two nodes never send one twice.
//!
//! A row is written when a browser session authorizes a client that has a
//! `backchannel_logout_uri` (section 2.3: the OP remembers which RPs it logged in). It is
//! armed while the session lives. The transaction that ends the session (logout, a new
//! login in the same browser, or the user's revocation in `users::revoke_user_in`) makes it
//! due; from then on a worker on any node claims it, POSTs the Logout Token and finishes it.
//!
//! States: armed (`due_at` NULL), pending (`next_attempt_at` set), finished (`finished_at`
//! set, `next_attempt_at` NULL).

use std::sync::Arc;

use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;

use super::{DbResult, Store};

/// One claimed delivery: what the Logout Token is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub jti: String,
    pub sid: String,
    pub client_id: String,
    /// The `sub` of the Logout Token.
    pub user_id: String,
    /// This claim's attempt number, from 1. Only the holder of the latest claim can
    /// finish or reschedule the row.
    pub attempt: i64,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The client answered 2xx (section 2.8).
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Nothing to send: the client is gone, disabled, or no longer has a
    /// `backchannel_logout_uri`.
    Dropped,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Delivered => "delivered",
            Finish::Failed => "failed",
            Finish::Dropped => "dropped",
        }
    }
}

/// Where one (session, client) pair stands, for tests and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub jti: String,
    pub user_id: String,
    pub due_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub attempts: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
}

/// Wakes this process's worker when a transaction here queued deliveries, so they go out at
/// once; deliveries queued by other processes are found by the worker's poll.
#[derive(Debug, Clone, Default)]
pub struct Queued(Arc<Notify>);

impl Queued {
    pub fn wake(&self) {
        // A permit is kept when the worker is busy, so a wake is never lost.
        self.0.notify_one();
    }

    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

/// Make the armed deliveries of session `sid` due, inside the transaction that ends it.
pub(crate) async fn queue_for_session(
    conn: &mut AnyConnection,
    sid: &str,
    now: i64,
) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE backchannel_logouts SET due_at = $2, next_attempt_at = $2
         WHERE sid = $1 AND due_at IS NULL AND expires_at > $2",
    )
    .bind(sid)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// Make due the armed deliveries of every session of `user_id` that this transaction has
/// just ended (`ended_at = now`), except those of sessions past their absolute lifetime:
/// nobody is signed in there to sign out. Runs after the sessions' UPDATE, whose row locks
/// make a concurrent [`Store::remember_logged_in_client`] either wait and see the session
/// ended, or commit first and be seen here.
pub(crate) async fn queue_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE backchannel_logouts SET due_at = $2, next_attempt_at = $2
         WHERE user_id = $1 AND due_at IS NULL AND expires_at > $2
           AND sid IN (SELECT sid FROM sessions WHERE user_id = $1 AND ended_at = $2)",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// Make due the armed deliveries to `client_id` of every live session of `user_id`, inside
/// the transaction that takes the client's access away: the grants behind the client's own
/// session for the user are gone, so it is told to end that session (the RP's action on a
/// Logout Token, section 2.7). Our sessions themselves go on. Like [`queue_for_user`],
/// nothing is sent for a session past its absolute lifetime.
pub(crate) async fn queue_for_client(
    conn: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE backchannel_logouts SET due_at = $3, next_attempt_at = $3
         WHERE user_id = $1 AND client_id = $2 AND due_at IS NULL AND expires_at > $3
           AND sid IN (SELECT sid FROM sessions
                       WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $3)",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

impl Store {
    /// This process's wake-up for the delivery worker.
    pub fn backchannel_queued(&self) -> &Queued {
        &self.backchannel_queued
    }

    /// Wake this process's worker once a transaction that queued deliveries has committed.
    pub(crate) fn woken_for(&self, queued: u64) {
        if queued > 0 {
            self.backchannel_queued.wake();
        }
    }

    /// Remember that session `sid` authorized `client_id` (section 2.3), before anything is
    /// issued to it, so the client is told when the session ends. Idempotent. Returns false,
    /// writing nothing, when the session is no longer live: the caller must not issue.
    ///
    /// The session row is updated (to itself) first: on Postgres that takes its row lock,
    /// which orders this against a transaction ending the session, so the pair is either
    /// armed before the session ends and queued by it, or sees the session ended.
    pub async fn remember_logged_in_client(
        &self,
        sid: &str,
        client_id: &str,
        now: i64,
    ) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE sessions SET last_seen_at = last_seen_at
             WHERE sid = $1 AND ended_at IS NULL AND expires_at > $2
             RETURNING user_id, expires_at",
        )
        .bind(sid)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let user_id: String = row.try_get("user_id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        sqlx::query(
            "INSERT INTO backchannel_logouts (jti, sid, client_id, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (sid, client_id) DO NOTHING",
        )
        .bind(crate::crypto::secret::random_token(16))
        .bind(sid)
        .bind(client_id)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Claim up to `limit` due deliveries for `lease` seconds, in one statement: a claim
    /// moves `next_attempt_at` past the lease and counts the attempt. On Postgres a
    /// concurrent claim of the same row waits for this one and then re-checks
    /// `next_attempt_at <= now` against the claimed row, so it skips it: of any number of
    /// nodes, exactly one gets each delivery. A holder that dies leaves the row to be
    /// claimed again when its lease has passed.
    pub async fn claim_backchannel_logouts(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> DbResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "UPDATE backchannel_logouts SET next_attempt_at = $2, attempts = attempts + 1
             WHERE jti IN (SELECT jti FROM backchannel_logouts WHERE next_attempt_at <= $1
                           ORDER BY next_attempt_at LIMIT $3)
               AND next_attempt_at <= $1
             RETURNING jti, sid, client_id, user_id, attempts",
        )
        .bind(now)
        .bind(now + lease.max(1))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    jti: r.try_get("jti")?,
                    sid: r.try_get("sid")?,
                    client_id: r.try_get("client_id")?,
                    user_id: r.try_get("user_id")?,
                    attempt: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Try a claimed delivery again at `at`. False when the claim was lost (its lease passed
    /// and another node claimed the row since): the other holder decides.
    pub async fn retry_backchannel_logout(&self, d: &Delivery, at: i64) -> DbResult<bool> {
        let r = sqlx::query(
            "UPDATE backchannel_logouts SET next_attempt_at = $3
             WHERE jti = $1 AND attempts = $2 AND finished_at IS NULL",
        )
        .bind(&d.jti)
        .bind(d.attempt)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Finish a claimed delivery; the row is kept `keep` seconds for operators, then purged.
    /// False when the claim was lost (see [`Store::retry_backchannel_logout`]).
    pub async fn finish_backchannel_logout(
        &self,
        d: &Delivery,
        outcome: Finish,
        now: i64,
        keep: i64,
    ) -> DbResult<bool> {
        let r = sqlx::query(
            "UPDATE backchannel_logouts
             SET next_attempt_at = NULL, finished_at = $3, outcome = $4, expires_at = $5
             WHERE jti = $1 AND attempts = $2 AND finished_at IS NULL",
        )
        .bind(&d.jti)
        .bind(d.attempt)
        .bind(now)
        .bind(outcome.as_str())
        .bind(now + keep)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The delivery for session `sid` and `client_id`, in whatever state.
    pub async fn backchannel_logout_state(
        &self,
        sid: &str,
        client_id: &str,
    ) -> DbResult<Option<DeliveryState>> {
        let row = sqlx::query(
            "SELECT jti, user_id, due_at, next_attempt_at, attempts, finished_at, outcome
             FROM backchannel_logouts WHERE sid = $1 AND client_id = $2",
        )
        .bind(sid)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(DeliveryState {
                jti: r.try_get("jti")?,
                user_id: r.try_get("user_id")?,
                due_at: r.try_get("due_at")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                attempts: r.try_get("attempts")?,
                finished_at: r.try_get("finished_at")?,
                outcome: r.try_get("outcome")?,
            })
        })
        .transpose()
    }
}
