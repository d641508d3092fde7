use super::{DbResult, Store};
use crate::model::AuditEvent;

impl Store {
    /// Record an audit event in the store; the caller also logs it.
    pub async fn audit(&self, e: &AuditEvent<'_>, now: i64) -> DbResult<()> {
        sqlx::query("INSERT INTO audit_events (id, at, kind, user_id, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(now)
            .bind(e.kind)
            .bind(e.user_id)
            .bind(e.client_id)
            .bind(e.ip)
            .bind(e.detail.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Delete audit events recorded before `before`, `batch` rows per statement (so a purge
    /// never holds long locks), until none are left. Returns how many went.
    pub async fn purge_audit(&self, before: i64, batch: i64) -> DbResult<u64> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(batch)
            .execute(self.pool())
            .await?
            .rows_affected();
            total += n;
            if n < batch as u64 {
                return Ok(total);
            }
        }
    }

    /// Most recent first, for tests and admins.
    pub async fn audit_kinds(&self, limit: i64) -> DbResult<Vec<String>> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT kind FROM audit_events ORDER BY at DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("kind"))
            .collect::<Result<_, _>>()?)
    }
}
