//! OpenID Connect Back-Channel Logout 1.0: the worker that delivers Logout Tokens.
//!
//! The transaction that ends a session queues one delivery per client the session signed in
//! to that has a `backchannel_logout_uri` (`store::backchannel`). Every node runs this
//! worker. It claims due deliveries (a claim is exclusive across nodes and lapses after a
//! lease, so a node that dies mid-delivery loses nothing), signs a Logout Token for each
//! (section 2.4) and POSTs it (section 2.5). A 2xx answer finishes the delivery: section 2.8
//! asks for 200 and warns that frameworks turn an empty 200 into 204, and no other 2xx says
//! anything different. Anything else (another status, a redirect, which is never followed,
//! a timeout, a refused connection) is tried again after an exponential backoff, and after
//! `max_attempts` given up: logged at warn with the client id and counted in metrics.
//!
//! Each attempt signs a new token (new `iat` and `exp`, the same `jti`): a retry an hour
//! later still carries a token the client accepts as fresh, and the `jti` tells it that it
//! has seen this logout before. The token itself is never logged.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use crate::clock::Clock;
use crate::config::BackchannelLogoutSettings;
use crate::core::Core;
use crate::core::tokens::LogoutSubject;
use crate::store::DbResult;
use crate::store::backchannel::{Delivery, Finish};

/// The worker's HTTP client, built once: bounded in time, never following redirects.
fn http_client(cfg: &BackchannelLogoutSettings) -> anyhow::Result<reqwest::Client> {
    let timeout = Duration::from_secs(cfg.timeout_seconds);
    Ok(reqwest::Client::builder()
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()?)
}

/// Start this node's worker. The worker is a driver, like an HTTP handler: it reads the
/// clock and passes `now` into the protocol.
pub fn spawn(core: Arc<Core>, clock: Clock) -> anyhow::Result<JoinHandle<()>> {
    let http = http_client(&core.config.backchannel_logout)?;
    Ok(tokio::spawn(async move { run(core, clock, http).await }))
}

async fn run(core: Arc<Core>, clock: Clock, http: reqwest::Client) {
    let poll = Duration::from_secs(core.config.backchannel_logout.poll_interval_seconds.max(1));
    loop {
        match pass(&core, &clock, &http).await {
            // A full or partial batch: more may be due already.
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "back-channel logout: store unavailable"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = core.store.backchannel_queued().notified() => {}
        }
    }
}

/// Claim one batch and deliver it, all at once (the batch is `concurrency` long). Returns
/// how many were claimed.
pub async fn pass(core: &Arc<Core>, clock: &Clock, http: &reqwest::Client) -> DbResult<usize> {
    let cfg = &core.config.backchannel_logout;
    let batch = core
        .store
        .claim_backchannel_logouts(clock.now(), cfg.lease(), cfg.concurrency as i64)
        .await?;
    let claimed = batch.len();
    let mut set = JoinSet::new();
    for d in batch {
        let (core, clock, http) = (core.clone(), clock.clone(), http.clone());
        set.spawn(async move { deliver(&core, &clock, &http, d).await });
    }
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(())) => {}
            // The claim lapses and the delivery is tried again.
            Ok(Err(e)) => tracing::error!(error = %e, "back-channel logout: store unavailable"),
            Err(e) => tracing::error!(error = %e, "back-channel logout task failed"),
        }
    }
    Ok(claimed)
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Why not, for the log: a status or a transport error, never the token.
    NotDelivered(String),
}

async fn deliver(core: &Core, clock: &Clock, http: &reqwest::Client, d: Delivery) -> DbResult<()> {
    let cfg = &core.config.backchannel_logout;
    let client = core
        .clients
        .get(&d.client_id)
        .await?
        .filter(|c| c.enabled)
        .and_then(|c| {
            c.settings
                .backchannel_logout_uri
                .clone()
                .map(|uri| (c, uri))
        });
    let Some((client, uri)) = client else {
        tracing::info!(client_id = %d.client_id, "back-channel logout dropped: the client is gone, disabled or has no backchannel_logout_uri");
        count(core, "dropped");
        core.store
            .finish_backchannel_logout(&d, Finish::Dropped, clock.now(), cfg.retention_seconds)
            .await?;
        return Ok(());
    };
    let subject = LogoutSubject {
        client: &client,
        sub: &d.user_id,
        sid: &d.sid,
        jti: &d.jti,
    };
    let attempt = match core.tokens.logout_token(&subject, clock.now()) {
        Ok(token) => post(http, &uri, &token).await,
        // Logged with the attempt, like any other failed delivery (the worker has no
        // response whose middleware would log it).
        Err(e) => Attempt::NotDelivered(format!(
            "could not sign the Logout Token: {}",
            e.cause().unwrap_or(&e.description)
        )),
    };
    // After the POST, which may have taken up to the timeout.
    let now = clock.now();
    match attempt {
        Attempt::Delivered => {
            tracing::info!(client_id = %d.client_id, attempt = d.attempt, "back-channel logout delivered");
            count(core, "delivered");
            core.store
                .finish_backchannel_logout(&d, Finish::Delivered, now, cfg.retention_seconds)
                .await?;
        }
        Attempt::NotDelivered(why) if d.attempt >= cfg.max_attempts => {
            tracing::warn!(client_id = %d.client_id, attempts = d.attempt, reason = %why, "back-channel logout failed; giving up");
            count(core, "failed");
            core.store
                .finish_backchannel_logout(&d, Finish::Failed, now, cfg.retention_seconds)
                .await?;
        }
        Attempt::NotDelivered(why) => {
            let delay = cfg.retry_delay(d.attempt);
            tracing::info!(client_id = %d.client_id, attempt = d.attempt, reason = %why, retry_in_seconds = delay, "back-channel logout not delivered; will retry");
            count(core, "retried");
            core.store.retry_backchannel_logout(&d, now + delay).await?;
        }
    }
    Ok(())
}

/// Section 2.5: the token as `logout_token` in an application/x-www-form-urlencoded POST.
async fn post(http: &reqwest::Client, uri: &str, token: &str) -> Attempt {
    match http.post(uri).form(&[("logout_token", token)]).send().await {
        Ok(r) if r.status().is_success() => Attempt::Delivered,
        Ok(r) => Attempt::NotDelivered(format!("HTTP status {}", r.status().as_u16())),
        // Without the URL: a client may keep a secret in its query.
        Err(e) => Attempt::NotDelivered(e.without_url().to_string()),
    }
}

fn count(core: &Core, outcome: &str) {
    core.metrics
        .backchannel_logouts
        .with_label_values(&[outcome])
        .inc();
}
