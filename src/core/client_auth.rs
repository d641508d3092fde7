//! Client authentication at the token, revocation, introspection and device endpoints
//! (RFC 6749 §2.3, OIDC Core §9). Runs once per request, before any grant logic.
//!
//! Fast path: generated secrets are stored as SHA-256 (256 bits of entropy leave nothing to
//! brute-force), so checking them costs one hash. Secrets a person chose are stored as
//! argon2id; a successful verification is remembered in-process, keyed by a hash of
//! (process-random key, client id, stored hash, presented secret), so a service calling
//! /token thousands of times a minute pays argon2 once per process. Rotating the secret
//! changes the stored hash and with it every cache key; nothing but a proven-correct secret
//! is ever cached, and the cache key cannot be reversed into the secret.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::core::Core;
use crate::core::attempts::{Attempt, Guard, OnSuccess, Refusal, ThrottleKey, address_key};
use crate::core::audit::{AuditKind, audit};
use crate::crypto::secret::{SecretHash, ct_eq, sha256};
use crate::model::Client;
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::TokenEndpointAuthMethod;
use crate::store::ThrottlePolicy;

/// Successful argon2 verifications, so the expensive hash runs once per secret per process.
#[derive(Clone)]
pub struct SecretCache {
    key: Arc<[u8; 32]>,
    seen: Arc<Mutex<HashMap<[u8; 32], i64>>>,
}

const CACHE_TTL: i64 = 600;
const CACHE_MAX: usize = 10_000;

impl Default for SecretCache {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        SecretCache {
            key: Arc::new(key),
            seen: Arc::default(),
        }
    }
}

impl SecretCache {
    fn cache_key(&self, client_id: &str, stored: &str, presented: &str) -> [u8; 32] {
        let mut buf =
            Vec::with_capacity(32 + client_id.len() + stored.len() + presented.len() + 24);
        buf.extend_from_slice(&self.key[..]);
        for part in [client_id, stored, presented] {
            buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
            buf.extend_from_slice(part.as_bytes());
        }
        sha256(&buf)
    }

    fn hit(&self, k: &[u8; 32], now: i64) -> bool {
        self.seen
            .lock()
            .map(|m| m.get(k).is_some_and(|&t| now - t < CACHE_TTL))
            .unwrap_or(false)
    }

    fn remember(&self, k: [u8; 32], now: i64) {
        if let Ok(mut m) = self.seen.lock() {
            if m.len() >= CACHE_MAX {
                m.retain(|_, t| now - *t < CACHE_TTL);
                if m.len() >= CACHE_MAX {
                    m.clear();
                }
            }
            m.insert(k, now);
        }
    }
}

/// Credentials as presented, before we know whether they are right.
struct Presented {
    client_id: String,
    secret: Option<String>,
    method: TokenEndpointAuthMethod,
}

/// RFC 6749 §2.3.1: the client id and secret are form-urlencoded before Basic encoding.
fn parse_basic(header: &str) -> OAuthResult<(String, String)> {
    let bad = || {
        OAuthError::invalid_client(
            "the Authorization header is not valid HTTP Basic credentials (RFC 6749 section 2.3.1)",
        )
    };
    // RFC 9110 section 11.1: the scheme is case-insensitive ("BASIC" is Basic too).
    let (scheme, b64) = header.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((decode(id), decode(secret)))
}

fn presented(authorization: Option<&str>, params: &Params) -> OAuthResult<Presented> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    if let Some(h) = authorization.filter(|h| h.len() > 6 && h[..6].eq_ignore_ascii_case("basic "))
    {
        let (id, secret) = parse_basic(h)?;
        // RFC 6749 §2.3: "The client MUST NOT use more than one authentication method".
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated twice (Authorization header and client_secret in the body); use one method",
            ));
        }
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(secret),
            method: TokenEndpointAuthMethod::ClientSecretBasic,
        });
    }
    let Some(id) = body_id else {
        return Err(OAuthError::invalid_client(
            "no client authentication: send HTTP Basic credentials, or client_id (and client_secret) in the form body",
        ));
    };
    Ok(Presented {
        client_id: id.to_owned(),
        secret: body_secret.map(str::to_owned),
        method: if body_secret.is_some() {
            TokenEndpointAuthMethod::ClientSecretPost
        } else {
            TokenEndpointAuthMethod::None
        },
    })
}

/// Authenticate the calling client with the one method it is registered for.
///
/// The client comes from this node's cache (`core::clients`). A refusal based on the cached
/// copy is checked once more against the store, so a secret rotated or a client re-enabled
/// on another node works here at once rather than after the next cache reload.
pub async fn authenticate(
    core: &Core,
    authorization: Option<&str>,
    params: &Params,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Arc<Client>> {
    let p = presented(authorization, params)?;
    let cached = core.clients.cached(&p.client_id);
    let client = match &cached {
        Some(c) => Some(c.clone()),
        None => core.clients.from_store(&p.client_id).await?,
    };
    let result = match verify(core, &p, client, ip, now).await {
        Ok(client) => Ok(client),
        // Only a refusal based on the cached copy is worth asking the store again.
        Err(e) if cached.is_none() => Err(e),
        Err(e) => {
            let fresh = core.clients.from_store(&p.client_id).await?;
            // Same credentials: the store would say the same, and another argon2 run for a
            // wrong secret would only cost a hashing slot.
            match (fresh, cached) {
                (Some(f), Some(stale)) if !f.same_credentials(&stale) => {
                    verify(core, &p, Some(f), ip, now).await
                }
                _ => Err(e),
            }
        }
    };
    // Only refusals as invalid_client are audited, and each of those was counted by the
    // throttle first, so one address writes at most its limit of rows per window; a throttle
    // or busy refusal (429, 503) writes nothing. The failure that trips a lock is answered
    // 429 and logged as throttled instead.
    if let Err(e) = &result
        && e.code == ErrorCode::InvalidClient
    {
        audit(
            core,
            AuditKind::ClientAuthFailure,
            None,
            Some(&p.client_id),
            Some(ip),
            now,
        )
        .await;
    }
    result
}

/// The one `error_description` of a failed client authentication. An unknown client, a wrong
/// secret and a wrong method all read the same, so a caller who is not the client cannot
/// learn which client ids exist or how each one authenticates. RFC 6749 section 5.2 names
/// them all as one error: "Client authentication failed (e.g., unknown client, no client
/// authentication included, or unsupported authentication method)". The reason is logged.
pub const AUTH_FAILED: &str =
    "client authentication failed: unknown client, wrong secret or wrong authentication method";

/// Do the presented credentials authenticate `client`?
async fn verify(
    core: &Core,
    p: &Presented,
    client: Option<Arc<Client>>,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Arc<Client>> {
    let fail = |reason: &str| {
        // The ids and method are what the caller sent; the secret never appears.
        tracing::info!(
            client_id = p.client_id.as_str(),
            presented_method = p.method.as_str(),
            %ip,
            reason,
            "client authentication failed"
        );
        // Always with the Basic challenge (OAuthError::invalid_client): RFC 6749 §5.2 asks
        // for it only when Basic was attempted, but a 401 must carry some challenge (RFC
        // 9110 §15.5.2).
        OAuthError::invalid_client(AUTH_FAILED)
    };
    let client = match client {
        Some(c) if c.enabled => c,
        _ => {
            count_failure(core, &p.client_id, None, ip, now).await?;
            return Err(fail("unknown or disabled client"));
        }
    };
    let registered = client.auth_method();
    // A wrong method and a missing secret cost nothing to check, like a wrong generated
    // secret, and are counted like one: a caller repeating them is throttled, and so is
    // what it makes the audit log record.
    if registered != p.method {
        count_failure(core, &client.id, Some(&client.id), ip, now).await?;
        let reason = format!("the client is registered for {}", registered.as_str());
        return Err(fail(&reason));
    }
    if registered == TokenEndpointAuthMethod::None {
        return Ok(client);
    }
    let (Some(secret), Some(stored)) = (p.secret.as_deref(), client.secret_hash.as_ref()) else {
        count_failure(core, &client.id, Some(&client.id), ip, now).await?;
        return Err(fail("no secret presented, or none stored for the client"));
    };
    let ok = match stored {
        // A generated secret cannot be guessed, and checking it costs one SHA-256: nothing
        // to throttle on the way in, so the hot path makes no store round trip. Failures
        // are still counted, and refused once over the limit.
        SecretHash::Sha256(expected) => ct_eq(&sha256(secret.as_bytes()), expected),
        SecretHash::Argon2(phc) => {
            let k = core.secrets.cache_key(&client.id, phc, secret);
            if core.secrets.hit(&k, now) {
                true
            } else {
                if core.passwords.is_full() {
                    return Err(crate::crypto::password::HashError::Busy.into());
                }
                let attempt = begin(core, &client.id, Some(&client.id), ip, now).await?;
                let ok = match core
                    .passwords
                    .verify(secret.to_owned(), Some(phc.clone()))
                    .await
                {
                    Ok(ok) => ok,
                    Err(e) => {
                        attempt.withdraw().await?;
                        return Err(e.into());
                    }
                };
                if ok {
                    attempt.succeeded().await?;
                    core.secrets.remember(k, now);
                    return Ok(client);
                }
                if let Some(until) = attempt.failed().await? {
                    return Err(throttled(&client.id, ip, until, now));
                }
                false
            }
        }
    };
    if ok {
        Ok(client)
    } else {
        if matches!(stored, SecretHash::Sha256(_)) {
            count_failure(core, &client.id, Some(&client.id), ip, now).await?;
        }
        Err(fail("wrong secret"))
    }
}

/// The guards of a client authentication: the caller's address, then the client as seen
/// from that address. A lock is per address and per (client, address): guessing from many
/// addresses is bounded per address, and nobody can lock a client out for its owner by
/// guessing from elsewhere. Per client only the argon2 checks in flight are bounded, which
/// bounds the hashing work one client's name can cost without ever locking it.
fn guards(core: &Core, client: Option<&str>, ip: IpAddr) -> Vec<Guard> {
    let s = &core.config.client_auth;
    let policy = |max_failures| ThrottlePolicy {
        max_failures,
        window: s.failure_window_seconds,
        lockout: s.lockout_seconds,
        max_lockout: s.max_lockout_seconds,
        // Two argon2 runs at a time: a legitimate client rarely has more secrets in flight
        // before one is verified and cached, and one caller cannot take the hashing pool.
        max_in_flight: 2,
    };
    let address = address_key(ip);
    let mut guards = vec![Guard {
        key: ThrottleKey::ClientAuthAddress(address.clone()),
        policy: policy(s.max_failures_per_ip),
        on_success: OnSuccess::Credit,
        counts_abandoned: true,
    }];
    if let Some(id) = client {
        guards.push(Guard {
            key: ThrottleKey::ClientAuthClientAddress {
                client_id: id.to_owned(),
                address,
            },
            policy: policy(s.max_failures_per_client),
            on_success: OnSuccess::Credit,
            counts_abandoned: true,
        });
        guards.push(Guard {
            key: ThrottleKey::ClientAuthClient(id.to_owned()),
            policy: ThrottlePolicy {
                // Never locks: only the checks in flight are bounded.
                max_failures: i64::MAX / 4,
                ..policy(0)
            },
            on_success: OnSuccess::Credit,
            counts_abandoned: false,
        });
    }
    guards
}

/// Admit a client authentication attempt before any argon2 runs: refused with 429 when
/// locked, 503 when as many checks as allowed are already running.
async fn begin(
    core: &Core,
    client_id: &str,
    client: Option<&str>,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Attempt> {
    let lease = core.config.limits.attempt_lease();
    match Attempt::begin(&core.store, now, guards(core, client, ip), lease).await? {
        Ok(a) => Ok(a),
        Err(Refusal::Locked { until }) => Err(throttled(client_id, ip, until, now)),
        Err(Refusal::Busy) => Err(OAuthError::busy(
            "other secrets for this client or from this address are being checked right now; retry in a few seconds",
            crate::crypto::password::BUSY_RETRY_SECONDS,
        )),
    }
}

/// Count a failed authentication that cost nothing to check (unknown client, generated
/// secret), refusing with 429 once the limit is reached.
async fn count_failure(
    core: &Core,
    client_id: &str,
    client: Option<&str>,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<()> {
    let attempt = begin(core, client_id, client, ip, now).await?;
    if let Some(until) = attempt.failed().await? {
        return Err(throttled(client_id, ip, until, now));
    }
    Ok(())
}

fn throttled(client_id: &str, ip: IpAddr, until: i64, now: i64) -> OAuthError {
    tracing::warn!(
        client_id,
        %ip,
        "client authentication throttled after repeated failures"
    );
    let wait = (until - now).max(1);
    OAuthError::throttled(
        format!(
            "too many failed client authentications from this address; retry after {wait} seconds"
        ),
        wait as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        // "my%20app:p%3Ass+w" base64 encoded: form-urlencoded id and secret.
        let h = format!("Basic {}", STANDARD.encode("my%20app:p%3Ass+w"));
        let (id, secret) = parse_basic(&h).expect("valid");
        assert_eq!(id, "my app");
        assert_eq!(secret, "p:ss w");
        assert!(parse_basic("Basic !!!").is_err());
        for scheme in ["basic", "BASIC", "bAsIc"] {
            let h = format!("{scheme} {}", STANDARD.encode("a:b"));
            assert_eq!(parse_basic(&h).expect(scheme), ("a".into(), "b".into()));
        }
        assert!(parse_basic(&format!("Bearer {}", STANDARD.encode("a:b"))).is_err());
    }
}
