//! The periodic work of a node: key maintenance, client cache reloads, the janitor and the
//! back-channel logout worker. Each task is held by its handle; `Background::shutdown` stops
//! them and waits until they have.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::keys::ensure_keys;
use super::{load_keys, refresh_clients};
use crate::state::AppState;
use crate::store::StoreError;

/// `refresh_clients` for the background tasks: a failure is logged, and the next reload
/// (tick or notification) tries again.
async fn reload_clients(state: &AppState) {
    if let Err(e) = refresh_clients(state).await {
        tracing::error!(error = %e, "client cache refresh failed");
    }
}

/// On Postgres, reload the client cache as soon as any process (a node, the CLI) announces a
/// change to the client table (`Store::client_changes`), so a disabled client stops working on
/// every node within milliseconds rather than `cache.clients_seconds`. The periodic reload
/// stays as the backstop: notifications sent while the listener is reconnecting are lost, so
/// a reconnect also triggers a reload. None where the store announces nothing (SQLite), or
/// when the cache is off.
pub fn watch_client_changes(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    if state.config.cache.clients_seconds == 0 {
        return None;
    }
    let mut changes = state.core.store.client_changes()?;
    let s = state.clone();
    Some(tokio::spawn(async move {
        while changes.next().await.is_some() {
            reload_clients(&s).await;
        }
    }))
}

/// The running background tasks of this node.
pub struct Background {
    /// Dropping or sending on it tells every periodic task to stop after its current run.
    stop: watch::Sender<bool>,
    periodic: Vec<JoinHandle<()>>,
    /// Tasks that wait on something other than a timer, aborted rather than asked: the
    /// back-channel logout worker (a delivery it claimed and did not finish is tried again by
    /// any node once its claim lapses) and the Postgres change listener.
    aborted: Vec<JoinHandle<()>>,
}

impl Background {
    /// Stop every task and wait until each has. (The Postgres listener's own connection
    /// closes with its next notification or reconnect, or when the process exits.)
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in &self.aborted {
            task.abort();
        }
        for task in self.periodic.into_iter().chain(self.aborted) {
            // A task that was aborted, or that panicked, has stopped all the same.
            let _ = task.await;
        }
    }
}

/// A task that runs `work` every `period` until told to stop (never in the middle of a run).
fn every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, mut work: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => work().await,
                _ = stop.changed() => return,
            }
        }
    })
}

/// Background work: cache refresh and scheduled key rotation, the janitor, and the
/// back-channel logout worker.
pub fn spawn_background(state: &AppState) -> anyhow::Result<Background> {
    let logout_worker = crate::core::backchannel::spawn(state.core.clone(), state.clock.clone())?;
    let (stop, stopped) = watch::channel(false);
    let mut periodic = Vec::new();
    let s = state.clone();
    let mut first = true;
    periodic.push(every(
        Duration::from_secs(state.config.keys.reload_seconds.max(1)),
        stopped.clone(),
        move || {
            let s = s.clone();
            // Start-up has just loaded the keys: the first tick has nothing to do.
            let skip = std::mem::replace(&mut first, false);
            async move {
                if skip {
                    return;
                }
                // One read serves both the scheduled rotation and this node's key ring,
                // which also picks up rotations made on other nodes.
                let loaded = ensure_keys(&s.config, &s.core.store, &s.master, s.now())
                    .await
                    .and_then(|records| load_keys(&s, &records));
                if let Err(e) = loaded {
                    tracing::error!(error = %e, "key maintenance failed");
                }
            }
        },
    ));
    let mut aborted = vec![logout_worker];
    aborted.extend(watch_client_changes(state));
    // The client table changes more often than keys and bounds how long a disabled client
    // keeps working (`core::clients`), so it has its own, shorter period.
    let period = state.config.cache.clients_seconds;
    if period > 0 {
        let s = state.clone();
        let mut first = true;
        periodic.push(every(
            Duration::from_secs(period),
            stopped.clone(),
            move || {
                let s = s.clone();
                let skip = std::mem::replace(&mut first, false);
                async move {
                    if !skip {
                        reload_clients(&s).await;
                    }
                }
            },
        ));
    }
    let s = state.clone();
    periodic.push(every(
        Duration::from_secs(state.config.janitor.interval_seconds.max(1)),
        stopped,
        move || {
            let s = s.clone();
            async move {
                match janitor_pass(&s).await {
                    Ok(total) if total > 0 => {
                        tracing::info!(deleted = total, "janitor purged expired rows");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "janitor failed"),
                }
            }
        },
    ));
    Ok(Background {
        stop,
        periodic,
        aborted,
    })
}

/// How long expired codes, refresh tokens and device codes are kept, so that presenting one
/// again is still recognised as reuse (RFC 6749 section 4.1.2, RFC 9700 section 4.14.2).
pub const REUSE_GRACE_SECONDS: i64 = 3600;

/// One janitor run: rows past expiry (`Store::purge_expired`), and audit events past
/// `[janitor] audit_retention_days`. Returns how many rows went.
pub async fn janitor_pass(state: &AppState) -> Result<u64, StoreError> {
    let now = state.now();
    let batch = state.config.janitor.batch_size;
    let c = state
        .core
        .store
        .purge_expired(now, batch, REUSE_GRACE_SECONDS)
        .await?;
    let mut total: u64 = c.deleted.iter().map(|(_, n)| n).sum();
    if let Some(keep) = state.config.janitor.audit_retention() {
        total += state.core.store.purge_audit(now - keep, batch).await?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    /// Shutdown stops every task, the ones that wait on a timer and the ones that wait on
    /// the store alike, and returns once they have stopped.
    #[tokio::test]
    async fn shutdown_stops_and_joins_every_task() {
        let f = Fixture::new().await;
        let background = spawn_background(&f.state).unwrap_or_else(|e| panic!("{e}"));
        assert!(background.periodic.len() >= 2 && !background.aborted.is_empty());
        let handles: Vec<_> = background
            .periodic
            .iter()
            .chain(&background.aborted)
            .map(JoinHandle::abort_handle)
            .collect();
        tokio::time::timeout(Duration::from_secs(10), background.shutdown())
            .await
            .unwrap_or_else(|_| panic!("a background task did not stop"));
        assert!(handles.iter().all(tokio::task::AbortHandle::is_finished));
    }
}
