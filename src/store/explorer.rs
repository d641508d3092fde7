//! The flow explorer's runs: one row per learner's run, its data kept as JSON by the
//! explorer. Writes are compare-and-swap on `version`, so two tabs of one run cannot lose
//! each other's steps.

use sqlx::Row;

use super::{DbResult, Store};

/// A stored run: its flow, its data and the version a write must name.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub flow: String,
    pub data: String,
    pub version: i64,
}

impl Store {
    /// Store a new run (replacing none: the key is a fresh random value's hash).
    pub async fn insert_explorer_run(
        &self,
        id_hash: &str,
        flow: &str,
        data: &str,
        now: i64,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO explorer_runs (id_hash, flow, data, version, created_at, expires_at)
             VALUES ($1, $2, $3, 1, $4, $5)",
        )
        .bind(id_hash)
        .bind(flow)
        .bind(data)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A live run.
    pub async fn explorer_run(&self, id_hash: &str, now: i64) -> DbResult<Option<StoredRun>> {
        let row = sqlx::query(
            "SELECT flow, data, version FROM explorer_runs WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(StoredRun {
                flow: r.try_get("flow")?,
                data: r.try_get("data")?,
                version: r.try_get("version")?,
            })
        })
        .transpose()
    }

    /// Replace a run's data if it is still at `version`: false when another write came
    /// first (or the run expired).
    pub async fn update_explorer_run(
        &self,
        id_hash: &str,
        version: i64,
        data: &str,
        now: i64,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE explorer_runs SET data = $3, version = version + 1
             WHERE id_hash = $1 AND version = $2 AND expires_at > $4",
        )
        .bind(id_hash)
        .bind(version)
        .bind(data)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forget a run (the learner starts another).
    pub async fn delete_explorer_run(&self, id_hash: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM explorer_runs WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every run's stored data, for tests that check what the store holds.
    #[doc(hidden)]
    pub async fn explorer_run_data_for_tests(&self) -> Vec<String> {
        sqlx::query("SELECT data FROM explorer_runs")
            .fetch_all(self.pool())
            .await
            .map(|rows| rows.iter().filter_map(|r| r.try_get("data").ok()).collect())
            .unwrap_or_default()
    }
}
