//! Attempt counters with growing lockouts, shared by every node through the store.
//!
//! An attempt is counted before the secret is checked, in the same statement that decides
//! whether it may go ahead: a thousand parallel guesses get exactly as many verifications as
//! the policy allows, never one more, on any number of nodes. The statement also bounds how
//! many verifications of one key are in flight at once.

use sqlx::Row;

use super::{DbResult, Store};

/// How a throttle counts: `max_failures` admitted attempts within `window` before locking
/// for `lockout` seconds; each further lockout in the window doubles, up to `max_lockout`.
/// At most `max_in_flight` attempts of one key are being verified at once.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window: i64,
    pub lockout: i64,
    pub max_lockout: i64,
    pub max_in_flight: i64,
}

impl ThrottlePolicy {
    /// The lockout after the `strikes`-th one in this window (0 = the first).
    pub fn lock_for(&self, strikes: i64) -> i64 {
        let doublings = strikes.clamp(0, 20) as u32;
        self.lockout
            .saturating_mul(1_i64 << doublings)
            .min(self.max_lockout)
            .max(1)
    }
}

/// What the store said to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead and verify: this is the `attempt`-th admitted attempt in the window, after
    /// `strikes` lockouts. It must be ended with `throttle_end`.
    Admitted { attempt: i64, strikes: i64 },
    /// Locked out until then.
    Locked { until: i64 },
    /// Not locked, but as many attempts as allowed are being verified right now; the limit
    /// may be reached when they fail. Nothing was counted.
    Busy,
}

/// How an admitted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded, and the key forgets every failure (an account after its password).
    Clear,
    /// It succeeded: it no longer counts, but the others do (an address after one good login).
    Credit,
    /// It was never checked (another key refused, or no hashing slot): it does not count.
    Withdraw,
    /// It failed, or its caller gave up before it was checked.
    Failed { attempt: i64, strikes: i64 },
}

impl Store {
    /// Count an attempt on `key` and decide, in one statement, whether it may be verified.
    ///
    /// An attempt is admitted when the key is not locked, fewer than `max_failures` attempts
    /// were admitted in the window (or the window has passed), and fewer than `max_in_flight`
    /// are being verified. Only an admitted attempt changes the row: it writes its random
    /// `ticket`, which is how it learns from the returned row that it was the one admitted.
    /// `lease` bounds how long an attempt counts as in flight if its node dies before ending it.
    pub async fn throttle_begin(
        &self,
        key: &str,
        now: i64,
        p: &ThrottlePolicy,
        lease: i64,
    ) -> DbResult<Admission> {
        let ticket = i64::from_ne_bytes(rand::random::<[u8; 8]>());
        // $2 now, $3 now - window, $4 max_failures, $5 max_in_flight, $6 busy_until, $7 ticket.
        // `fresh`: the window has passed and no lockout runs, so counting starts again.
        let fresh = "(throttles.window_start <= $3 AND throttles.locked_until <= $2)";
        // Admitted: not locked; under the limit, or the window has passed, or nothing is in
        // flight (an attempt that reached the limit never ended: its node died, so its lock
        // was never set; admitting one more lets its failure set it); and a free slot.
        let admit = format!(
            "(throttles.locked_until <= $2 \
             AND ({fresh} OR throttles.failures < $4 OR throttles.busy_until <= $2) \
             AND (throttles.busy_until <= $2 OR throttles.in_flight < $5))"
        );
        let sql = format!(
            "INSERT INTO throttles (key, failures, window_start, locked_until, in_flight, busy_until, strikes, ticket)
             VALUES ($1, 1, $2, 0, 1, $6, 0, $7)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN NOT {admit} THEN throttles.failures
                               WHEN {fresh} THEN 1 ELSE throttles.failures + 1 END,
               strikes = CASE WHEN {admit} AND {fresh} THEN 0 ELSE throttles.strikes END,
               window_start = CASE WHEN {admit} AND {fresh} THEN $2 ELSE throttles.window_start END,
               in_flight = CASE WHEN NOT {admit} THEN throttles.in_flight
                                WHEN throttles.busy_until <= $2 THEN 1 ELSE throttles.in_flight + 1 END,
               busy_until = CASE WHEN {admit} THEN $6 ELSE throttles.busy_until END,
               ticket = CASE WHEN {admit} THEN $7 ELSE throttles.ticket END
             RETURNING failures, locked_until, strikes, ticket"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(now)
            .bind(now - p.window)
            .bind(p.max_failures)
            .bind(p.max_in_flight)
            .bind(now + lease)
            .bind(ticket)
            .fetch_one(self.pool())
            .await?;
        let locked_until: i64 = row.try_get("locked_until")?;
        if row.try_get::<i64, _>("ticket")? == ticket {
            return Ok(Admission::Admitted {
                attempt: row.try_get("failures")?,
                strikes: row.try_get("strikes")?,
            });
        }
        Ok(if locked_until > now {
            Admission::Locked {
                until: locked_until,
            }
        } else {
            Admission::Busy
        })
    }

    /// End an admitted attempt; the lockout it started, if any.
    pub async fn throttle_end(
        &self,
        key: &str,
        now: i64,
        p: &ThrottlePolicy,
        outcome: Outcome,
    ) -> DbResult<Option<i64>> {
        const RELEASE: &str = "in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END";
        let q = match outcome {
            Outcome::Clear => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE throttles SET {RELEASE}, failures = 0, strikes = 0, locked_until = 0 WHERE key = $1"
            ))),
            Outcome::Credit | Outcome::Withdraw => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE throttles SET {RELEASE}, failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE key = $1"
            ))),
            Outcome::Failed { attempt, .. } if attempt < p.max_failures => sqlx::query(
                sqlx::AssertSqlSafe(format!("UPDATE throttles SET {RELEASE} WHERE key = $1")),
            ),
            // The attempt that reaches the limit starts a lockout and leaves one attempt for
            // when it ends: the next failure then locks for twice as long. The window starts
            // again when the lockout ends, so lockouts keep doubling up to `max_lockout`
            // until a whole quiet window has passed.
            Outcome::Failed { strikes, .. } => {
                let until = now + p.lock_for(strikes);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE throttles SET {RELEASE}, failures = $3, strikes = $4,
                       locked_until = CASE WHEN locked_until < $2 THEN $2 ELSE locked_until END,
                       window_start = CASE WHEN window_start < $2 THEN $2 ELSE window_start END
                     WHERE key = $1"
                )))
                .bind(key)
                .bind(until)
                .bind(p.max_failures - 1)
                .bind(strikes + 1)
                .execute(self.pool())
                .await?;
                return Ok(Some(until));
            }
        };
        q.bind(key).execute(self.pool()).await?;
        Ok(None)
    }

    /// Count one event on `key` in its window and return the count, in one statement: for
    /// limits that slow down rather than refuse.
    pub async fn throttle_count(&self, key: &str, now: i64, window: i64) -> DbResult<i64> {
        let row = sqlx::query(
            "INSERT INTO throttles (key, failures, window_start, locked_until) VALUES ($1, 1, $2, 0)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN throttles.window_start <= $3 THEN 1 ELSE throttles.failures + 1 END,
               window_start = CASE WHEN throttles.window_start <= $3 THEN $2 ELSE throttles.window_start END
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - window)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("failures")?)
    }

    /// The count on `key` within its window (0 when the window has passed).
    pub async fn throttle_peek(&self, key: &str, now: i64, window: i64) -> DbResult<i64> {
        let row =
            sqlx::query("SELECT failures FROM throttles WHERE key = $1 AND window_start > $2")
                .bind(key)
                .bind(now - window)
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some(r) => r.try_get("failures")?,
            None => 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_and_is_capped() {
        let p = ThrottlePolicy {
            max_failures: 3,
            window: 60,
            lockout: 10,
            max_lockout: 100,
            max_in_flight: 1,
        };
        assert_eq!(p.lock_for(0), 10);
        assert_eq!(p.lock_for(1), 20);
        assert_eq!(p.lock_for(3), 80);
        assert_eq!(p.lock_for(4), 100);
        assert_eq!(p.lock_for(1000), 100);
    }
}
