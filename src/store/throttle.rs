//! Failure counters with growing lockouts, shared by every node through the store.

use sqlx::Row;

use super::{DbResult, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i64,
    pub locked_until: i64,
}

/// How a throttle counts: `max_failures` within `window` before locking for `lockout`
/// seconds, doubling with each further failure up to `max_lockout`.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window: i64,
    pub lockout: i64,
    pub max_lockout: i64,
}

impl ThrottlePolicy {
    fn lock_for(&self, failures: i64) -> i64 {
        if failures < self.max_failures {
            return 0;
        }
        let doublings = (failures - self.max_failures).clamp(0, 20) as u32;
        self.lockout
            .saturating_mul(1_i64 << doublings)
            .min(self.max_lockout)
    }
}

impl Store {
    /// The latest lock, if any, on any of `keys` at `now`: one query for all of them.
    pub async fn throttle_locked_until_any(
        &self,
        keys: &[&str],
        now: i64,
    ) -> DbResult<Option<i64>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT MAX(locked_until) AS until FROM throttles WHERE key IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for k in keys {
            q = q.bind(*k);
        }
        let until: Option<i64> = q.fetch_one(self.pool()).await?.try_get("until")?;
        Ok(until.filter(|u| *u > now))
    }

    /// Count a failure on each key under its own policy; the latest lock that results, if
    /// any.
    pub async fn throttle_fail_all(
        &self,
        keys: &[(&str, ThrottlePolicy)],
        now: i64,
    ) -> DbResult<Option<i64>> {
        let mut locked = None;
        for (key, policy) in keys {
            let st = self.throttle_fail(key, now, *policy).await?;
            if st.locked_until > now {
                locked = locked.max(Some(st.locked_until));
            }
        }
        Ok(locked)
    }

    /// Count a failure atomically and return the new state.
    pub async fn throttle_fail(
        &self,
        key: &str,
        now: i64,
        p: ThrottlePolicy,
    ) -> DbResult<ThrottleState> {
        let mut tx = self.pool().begin().await?;
        // Reset the counter when the window has passed; one statement, so concurrent
        // failures on several nodes all count.
        sqlx::query(
            "INSERT INTO throttles (key, failures, window_start, locked_until) VALUES ($1, 1, $2, 0)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN throttles.window_start <= $3 THEN 1 ELSE throttles.failures + 1 END,
               window_start = CASE WHEN throttles.window_start <= $3 THEN $2 ELSE throttles.window_start END",
        )
        .bind(key)
        .bind(now)
        .bind(now - p.window)
        .execute(&mut *tx)
        .await?;
        let failures: i64 = sqlx::query("SELECT failures FROM throttles WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
            .try_get("failures")?;
        let lock = p.lock_for(failures);
        let locked_until = if lock > 0 { now + lock } else { 0 };
        if lock > 0 {
            sqlx::query("UPDATE throttles SET locked_until = $2 WHERE key = $1")
                .bind(key)
                .bind(locked_until)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ThrottleState {
            failures,
            locked_until,
        })
    }

    pub async fn throttle_clear(&self, key: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM throttles WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// The login throttle policy from config, with the given failure limit.
pub fn throttle_policy(s: &crate::config::LoginSettings, max_failures: i64) -> ThrottlePolicy {
    ThrottlePolicy {
        max_failures,
        window: s.failure_window_seconds,
        lockout: s.lockout_seconds,
        max_lockout: s.max_lockout_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_grows_and_is_capped() {
        let p = ThrottlePolicy {
            max_failures: 3,
            window: 60,
            lockout: 10,
            max_lockout: 100,
        };
        assert_eq!(p.lock_for(2), 0);
        assert_eq!(p.lock_for(3), 10);
        assert_eq!(p.lock_for(4), 20);
        assert_eq!(p.lock_for(10), 100);
    }
}
