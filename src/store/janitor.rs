//! Purging expired rows in bounded batches, and the row counts `/metrics` reports.

use sqlx::Row;

use super::{DbResult, Store};

/// Whether expired rows of a table are kept for the reuse grace (`purge_expired`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterExpiry {
    /// Kept a while: presenting a just-expired code, refresh token or device code again
    /// is still recognised (reuse revokes the grant; a device is told `expired_token`).
    KeepForReuse,
    /// Deleted at expiry: nothing reads an expired interaction or session, and an
    /// interaction is stored for anyone who opens `/authorize`.
    Delete,
}

/// Tables the janitor keeps in check: the column that says a row is dead, and a condition a
/// row must also meet to go. Refresh tokens and grants linger for the family lifetime; codes
/// and interactions for minutes; revoked jtis only until the token would have expired
/// anyway. A back-channel logout goes when its session expires unended, or a while after
/// it was finished; never while it is still being delivered.
const PURGEABLE: &[(&str, &str, &str, AfterExpiry, &str)] = &[
    (
        "authorization_codes",
        "code_hash",
        "expires_at",
        AfterExpiry::KeepForReuse,
        "",
    ),
    (
        "interactions",
        "id_hash",
        "expires_at",
        AfterExpiry::Delete,
        "",
    ),
    (
        "refresh_tokens",
        "token_hash",
        "expires_at",
        AfterExpiry::KeepForReuse,
        "",
    ),
    ("grants", "id", "expires_at", AfterExpiry::KeepForReuse, ""),
    (
        "revoked_tokens",
        "jti",
        "expires_at",
        AfterExpiry::KeepForReuse,
        "",
    ),
    ("sessions", "id_hash", "expires_at", AfterExpiry::Delete, ""),
    (
        "device_authorizations",
        "device_code_hash",
        "expires_at",
        AfterExpiry::KeepForReuse,
        "",
    ),
    (
        "pending_logins",
        "id_hash",
        "expires_at",
        AfterExpiry::Delete,
        "",
    ),
    (
        "passkey_ceremonies",
        "id_hash",
        "expires_at",
        AfterExpiry::Delete,
        "",
    ),
    // Kept past expiry like codes: a node whose clock runs behind still finds it spent.
    (
        "passkey_spent",
        "id_hash",
        "expires_at",
        AfterExpiry::KeepForReuse,
        "",
    ),
    (
        "explorer_runs",
        "id_hash",
        "expires_at",
        AfterExpiry::Delete,
        "",
    ),
    // Enrolments never confirmed; a confirmed factor has no expiry.
    (
        "mfa_factors",
        "id",
        "expires_at",
        AfterExpiry::Delete,
        "AND confirmed_at IS NULL",
    ),
    (
        "backchannel_logouts",
        "jti",
        "expires_at",
        AfterExpiry::Delete,
        "AND next_attempt_at IS NULL",
    ),
];

#[derive(Debug, Clone, Default)]
pub struct PurgeCounts {
    pub deleted: Vec<(&'static str, u64)>,
}

impl Store {
    /// Delete up to `batch` dead rows per table per statement, looping until none are left.
    /// Codes, tokens and device codes stay a little past expiry (`grace`) so that reuse of
    /// a just-expired one is still recognised as reuse; interactions and sessions go at
    /// expiry.
    pub async fn purge_expired(&self, now: i64, batch: i64, grace: i64) -> DbResult<PurgeCounts> {
        let mut out = PurgeCounts::default();
        for (table, pk, col, after, only) in PURGEABLE {
            let before = match after {
                AfterExpiry::KeepForReuse => now - grace,
                // `expires_at > now` is what makes a row live, so `<=` is dead.
                AfterExpiry::Delete => now + 1,
            };
            let sql = format!(
                // The condition is repeated outside the subquery: on Postgres a row that
                // changed since the subquery read it is checked again only against the outer
                // WHERE (a back-channel delivery queued meanwhile must not be deleted).
                "DELETE FROM {table} WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {col} < $1 {only} LIMIT $2) AND {col} < $1 {only}"
            );
            let mut total = 0;
            loop {
                // Table, column names and conditions come from the PURGEABLE constant, never from input.
                let n = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(before)
                    .bind(batch)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                total += n;
                if n < batch as u64 {
                    break;
                }
            }
            out.deleted.push((table, total));
        }
        sqlx::query("DELETE FROM throttles WHERE key IN (SELECT key FROM throttles WHERE locked_until < $1 AND busy_until < $1 AND window_start < $2 LIMIT $3)")
            .bind(now)
            .bind(now - 86_400)
            .bind(batch)
            .execute(self.pool())
            .await?;
        Ok(out)
    }

    /// Row counts of the tables that grow with traffic.
    pub async fn table_counts(&self) -> DbResult<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for (table, _, _, _, _) in PURGEABLE {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM {table}"
            )))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
            out.push((*table, n));
        }
        Ok(out)
    }
}
