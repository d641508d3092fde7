//! Registered clients, and the Postgres announcements that let every node's client cache
//! follow changes at once.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sqlx::any::AnyRow;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::{Backend, DbResult, Store, StoreError, encode_err, flag, json_err};
use crate::crypto::secret::SecretHash;
use crate::model::{Client, ClientSettings, Source};

fn client_from_row(row: &AnyRow) -> DbResult<Client> {
    let settings: String = row.try_get("settings")?;
    let secret: Option<String> = row.try_get("secret_hash")?;
    let source: String = row.try_get("source")?;
    Ok(Client {
        id: row.try_get("id")?,
        source: Source::parse(&source).ok_or_else(|| {
            StoreError::corrupt("client source", format!("unknown source `{source}`"))
        })?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        secret_hash: secret.and_then(|s| SecretHash::parse(&s).ok()),
        settings: serde_json::from_str::<ClientSettings>(&settings).map_err(json_err)?,
    })
}

/// Postgres channel on which every change to the client table is announced, so that every
/// node's client cache (`core::clients`) reloads at once instead of at its next period.
const CLIENTS_CHANNEL: &str = "latchkey_clients";

/// Reasons to reload a client cache, from [`Store::client_changes`]. Dropping it stops the
/// listener.
#[derive(Debug)]
pub struct ClientChanges {
    rx: mpsc::Receiver<()>,
}

impl ClientChanges {
    /// Wait for the next reason to reload every client: a change announced by any process,
    /// or a listener that has just (re)connected and so may have missed announcements while
    /// it was away. Announcements that arrive while the caller reloads are folded into one
    /// more reload. None only if the listener has stopped.
    pub async fn next(&mut self) -> Option<()> {
        self.rx.recv().await
    }
}

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
        let settings = serde_json::to_string(&c.settings).map_err(encode_err)?;
        let secret = c.secret_hash.as_ref().map(SecretHash::encode);
        let existing =
            sqlx::query("SELECT source, enabled, secret_hash, settings FROM clients WHERE id = $1")
                .bind(&c.id)
                .fetch_optional(self.pool())
                .await?;
        if let Some(row) = &existing {
            let same = row.try_get::<String, _>("source")? == c.source.as_str()
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
        .bind(c.source.as_str())
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
        let rows = sqlx::query("SELECT id FROM clients WHERE source = $1 AND enabled = 1")
            .bind(Source::Config.as_str())
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

    /// On Postgres, every announcement of a change to the client table
    /// (`announce_client_change`, made by every node and by the CLI), so a disabled client
    /// stops working on every node within milliseconds. None on SQLite, which has no such
    /// channel: there the periodic reload is the bound. The listener runs on its own task
    /// and connection, reconnects for as long as the returned value lives, and reports each
    /// reconnection as a change, since announcements sent meanwhile are lost.
    pub fn client_changes(&self) -> Option<ClientChanges> {
        let url = self.listen_url.clone()?;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(listen_for_client_changes(url, tx));
        Some(ClientChanges { rx })
    }

    /// Whether other processes hear of a client change at once ([`Store::client_changes`]),
    /// rather than at their next periodic reload.
    pub fn announces_client_changes(&self) -> bool {
        self.backend() == Backend::Postgres
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

/// Wake the reader, unless a wake-up it has not yet taken is already queued (that reload has
/// not started, so it reads this change too). False once the reader is gone.
fn wake(tx: &mpsc::Sender<()>) -> bool {
    !matches!(tx.try_send(()), Err(mpsc::error::TrySendError::Closed(())))
}

/// The LISTEN loop behind [`Store::client_changes`]; returns when the reader is dropped.
async fn listen_for_client_changes(url: Arc<str>, tx: mpsc::Sender<()>) {
    while !tx.is_closed() {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "client change listener: cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CLIENTS_CHANNEL).await {
            tracing::warn!(error = %e, "client change listener: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        // Changes made before LISTEN took effect were announced to nobody: read them now.
        // Anything after it is announced, so nothing falls between the two.
        if !wake(&tx) {
            return;
        }
        loop {
            tokio::select! {
                () = tx.closed() => return,
                received = listener.try_recv() => match received {
                    // A change, or (None) a lost connection that the next call re-opens,
                    // during which changes may have been missed: reload either way.
                    Ok(_) => {
                        if !wake(&tx) {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "client change listener failed; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                },
            }
        }
    }
}
