use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, DbResult, Store, flag, json_err};
use crate::crypto::secret::SecretHash;
use crate::model::{Client, ClientSettings};

fn client_from_row(row: &AnyRow) -> DbResult<Client> {
    let settings: String = row.try_get("settings")?;
    let secret: Option<String> = row.try_get("secret_hash")?;
    Ok(Client {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        secret_hash: secret.and_then(|s| SecretHash::parse(&s).ok()),
        settings: serde_json::from_str::<ClientSettings>(&settings).map_err(json_err)?,
    })
}

/// Postgres channel on which every change to the client table is announced, so that every
/// node's client cache (`client_cache`) reloads at once instead of at its next period.
pub const CLIENTS_CHANNEL: &str = "latchkey_clients";

macro_rules! columns {
    () => {
        "id, source, enabled, secret_hash, settings"
    };
}

impl Store {
    pub async fn get_client(&self, id: &str) -> DbResult<Option<Client>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub async fn list_clients(&self) -> DbResult<Vec<Client>> {
        let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM clients ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Insert or replace a client. Returns whether anything changed.
    pub async fn upsert_client(&self, c: &Client, now: i64) -> DbResult<bool> {
        let settings = serde_json::to_string(&c.settings).map_err(json_err)?;
        let secret = c.secret_hash.as_ref().map(SecretHash::encode);
        let existing =
            sqlx::query("SELECT source, enabled, secret_hash, settings FROM clients WHERE id = $1")
                .bind(&c.id)
                .fetch_optional(self.pool())
                .await?;
        if let Some(row) = &existing {
            let same = row.try_get::<String, _>("source")? == c.source
                && row.try_get::<i64, _>("enabled")? == flag(c.enabled)
                && row.try_get::<Option<String>, _>("secret_hash")? == secret
                && row.try_get::<String, _>("settings")? == settings;
            if same {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO clients (id, source, enabled, secret_hash, settings, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (id) DO UPDATE SET source = $2, enabled = $3, secret_hash = $4,
                 settings = $5, updated_at = $6",
        )
        .bind(&c.id)
        .bind(&c.source)
        .bind(flag(c.enabled))
        .bind(secret)
        .bind(settings)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.announce_client_change().await?;
        Ok(true)
    }

    /// Config is the source of truth for config clients: any not in `keep` is disabled.
    pub async fn disable_config_clients_except(
        &self,
        keep: &[String],
        now: i64,
    ) -> DbResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM clients WHERE source = 'config' AND enabled = 1")
            .fetch_all(self.pool())
            .await?;
        let mut disabled = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            if !keep.contains(&id) {
                sqlx::query("UPDATE clients SET enabled = 0, updated_at = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(now)
                    .execute(self.pool())
                    .await?;
                disabled.push(id);
            }
        }
        if !disabled.is_empty() {
            self.announce_client_change().await?;
        }
        Ok(disabled)
    }

    pub async fn set_client_secret(&self, id: &str, hash: &SecretHash, now: i64) -> DbResult<bool> {
        let r = sqlx::query("UPDATE clients SET secret_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(hash.encode())
            .bind(now)
            .execute(self.pool())
            .await?;
        self.announce_client_change().await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_client(&self, id: &str) -> DbResult<bool> {
        let r = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        self.announce_client_change().await?;
        Ok(r.rows_affected() == 1)
    }

    /// On Postgres, tell every listening node that the client table changed (after the
    /// change is committed: each write above is its own statement). SQLite has no such
    /// channel; there the nodes' periodic reload is the bound.
    async fn announce_client_change(&self) -> DbResult<()> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CLIENTS_CHANNEL)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }
}
