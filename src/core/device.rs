//! RFC 8628 device authorization: starting a request for a device (§3.1-3.2), the user
//! codes people type on a second screen (§6.1), throttled against guessing (§5.1), and the
//! person's answer (§3.3).
//!
//! The /token side (polling) is `grants::device_code`; the pages are `http::device`.

use crate::oauth::scope::request_order;
use serde::Serialize;
use std::net::IpAddr;

use crate::core::Core;
use crate::core::attempts::{Attempt, Guard, OnSuccess, Refusal, ThrottleKey, address_key};
use crate::core::audit::{AuditKind, audit};
use crate::core::mfa;
use crate::crypto::secret::{hash_token, new_token};
use crate::model::{Client, DeviceRow, DeviceStatus, GrantData, Session, User};
use crate::oauth::acr::Requested;
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::GrantType;
use crate::store::ThrottlePolicy;
use crate::store::device::NewDevice;

/// RFC 8628 §6.1: consonants only (no vowels, so no words), no easily confused letters.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// RFC 8628 §3.5: "the interval MUST be increased by 5 seconds" on slow_down.
pub const SLOW_DOWN_SECS: i64 = 5;

/// A fresh user code, normalised (no dash). 20^8 ≈ 2^34.6 codes; guessing is bounded by the
/// throttle, not by entropy alone (§5.1).
pub fn new_user_code() -> String {
    // Rejection sampling keeps every letter equally likely: 240 is the largest multiple of
    // 20 below 256.
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut buf = [0u8; 16];
        rand::fill(&mut buf);
        for b in buf {
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(ALPHABET[usize::from(b % 20)] as char);
            }
        }
    }
    code
}

/// What a person typed, as stored: case-insensitive, dashes and spaces ignored (§6.1). None
/// when it cannot be a code of ours, so no store lookup is spent on it.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// `BCDFGHJK` → `BCDF-GHJK`: easier to read off a TV and to type.
pub fn display_user_code(code: &str) -> String {
    if code.len() == USER_CODE_LEN && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// RFC 8628 §3.1: start a device authorization for an authenticated client.
pub async fn start(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<DeviceAuthorization> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(format!(
            "client `{}` is not registered for the device_code grant ({})",
            client.id,
            GrantType::DeviceCode.as_str()
        )));
    }
    let scope = client.requested_scope(params.get("scope"))?;
    let scope_order = request_order(params.get("scope"));
    let settings = &core.config.device;
    let device_code = new_token();
    let device_code_hash = hash_token(&device_code);
    // A collision with a live code is a 1-in-billions event; a few draws settle it.
    for _ in 0..5 {
        let user_code = new_user_code();
        let inserted = core
            .store
            .insert_device(
                &NewDevice {
                    device_code_hash: &device_code_hash,
                    user_code: &user_code,
                    client_id: &client.id,
                    scope: &scope,
                    scope_order: &scope_order,
                    interval_secs: settings.poll_interval,
                    expires_at: now + settings.code_ttl,
                },
                now,
            )
            .await?;
        if inserted {
            let shown = display_user_code(&user_code);
            return Ok(DeviceAuthorization {
                device_code,
                verification_uri: core.url("/device"),
                verification_uri_complete: core.url(&format!("/device?user_code={shown}")),
                user_code: shown,
                expires_in: settings.code_ttl,
                interval: settings.poll_interval,
            });
        }
    }
    Err(OAuthError::internal("could not draw a free user code"))
}

/// Why a typed user code was not accepted; each says so plainly on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProblem {
    /// No such code (or malformed). Counts towards the guessing throttle.
    Unknown,
    Expired,
    /// Already approved, denied or used.
    AlreadyDecided,
    /// Too many wrong codes from this address (section 5.1).
    Throttled {
        until: i64,
    },
}

/// Resolve what a person typed to a pending device authorization (RFC 8628 section 5.1:
/// user codes must be protected against guessing).
///
/// Each check is counted against the person's address before the code is looked up, in one
/// statement that every node shares, so parallel guesses get no more than the limit. Wrong
/// codes from everywhere are also counted; past `max_attempts_global` in a window, every
/// check waits `global_slowdown_seconds` first. That slows a distributed attack without
/// letting it lock out people typing their real code from elsewhere.
pub async fn find_pending(
    core: &Core,
    typed: &str,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Result<DeviceRow, CodeProblem>> {
    let s = &core.config.device;
    let window = s.attempt_window_seconds;
    let guard = Guard {
        key: ThrottleKey::DeviceAddress(address_key(ip)),
        // A lockout lasts one window: long enough to stop a guessing run, short enough that
        // a person who mistyped a few times can carry on.
        policy: ThrottlePolicy {
            max_failures: s.max_attempts_per_ip,
            window,
            lockout: window,
            max_lockout: window,
            max_in_flight: s.max_attempts_per_ip,
        },
        on_success: OnSuccess::Credit,
        counts_abandoned: true,
    };
    let lease = core.config.limits.attempt_lease();
    let attempt = match Attempt::begin(&core.store, now, vec![guard], lease).await? {
        Ok(a) => a,
        Err(Refusal::Locked { until }) => return Ok(Err(CodeProblem::Throttled { until })),
        // The address's remaining attempts are all being checked right now.
        Err(Refusal::Busy) => {
            return Ok(Err(CodeProblem::Throttled {
                until: now + crate::crypto::password::BUSY_RETRY_SECONDS as i64,
            }));
        }
    };
    if core
        .store
        .throttle_peek(&ThrottleKey::DeviceAll.to_string(), now, window)
        .await?
        >= s.max_attempts_global
    {
        tokio::time::sleep(std::time::Duration::from_secs(s.global_slowdown_seconds)).await;
    }
    let row = match normalize_user_code(typed) {
        Some(code) => core.store.device_by_user_code(&code).await?,
        None => None,
    };
    let Some(row) = row else {
        core.store
            .throttle_count(&ThrottleKey::DeviceAll.to_string(), now, window)
            .await?;
        return Ok(Err(match attempt.failed().await? {
            Some(until) => {
                tracing::warn!(%ip, "device user-code attempts throttled");
                CodeProblem::Throttled { until }
            }
            None => CodeProblem::Unknown,
        }));
    };
    attempt.succeeded().await?;
    Ok(if row.expires_at <= now {
        Err(CodeProblem::Expired)
    } else if row.status != DeviceStatus::Pending {
        Err(CodeProblem::AlreadyDecided)
    } else {
        Ok(row)
    })
}

/// What the person's answer on the confirmation page came to (RFC 8628 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The device may poll for its tokens now.
    Approved,
    /// The device is told `access_denied` when it next polls (§3.5).
    Denied,
    /// The session ended while the page was open: sign in again, then confirm.
    SessionEnded,
    /// Decided in another tab or on another node a moment ago.
    AlreadyDecided,
    /// The client (or the server) needs two factors and this session has one: the second
    /// comes first.
    NeedsSecondFactor,
}

/// Record the signed-in `user`'s answer for the pending device authorization `row`. An
/// approval carries the session's `sid`, `auth_time` and `amr` into the grant, like an
/// authorization made in the browser. `client` is the device's client, if it is still
/// registered.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    core: &Core,
    row: &DeviceRow,
    client: Option<&Client>,
    session: &Session,
    user: &User,
    allow: bool,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Decided> {
    // Two factors needed and this session has one: the confirmation page asked for the second
    // first, and a form posted around it does not approve.
    if allow
        && let Some(c) = client
        && mfa::shortfall(core, c, &Requested::Nothing, session, user).is_ok_and(|s| s.is_some())
    {
        return Ok(Decided::NeedsSecondFactor);
    }
    // Back-Channel Logout 1.0 section 2.3: the device's tokens carry this session's sid, so
    // the client is told when the session ends; it is remembered before anything is issued.
    if allow
        && client.is_some_and(|c| c.settings.backchannel_logout_uri.is_some())
        && !core
            .store
            .remember_logged_in_client(&session.sid, &row.client_id, now)
            .await?
    {
        return Ok(Decided::SessionEnded);
    }
    let grant = allow.then(|| GrantData::from_session(session, &row.scope, None, None));
    if !core
        .store
        .decide_device(&row.user_code, &user.id, grant.as_ref(), now)
        .await?
    {
        return Ok(Decided::AlreadyDecided);
    }
    let (kind, decided) = if allow {
        (AuditKind::DeviceApproved, Decided::Approved)
    } else {
        (AuditKind::DeviceDenied, Decided::Denied)
    };
    audit(
        core,
        kind,
        Some(&user.id),
        Some(&row.client_id),
        Some(ip),
        now,
    )
    .await;
    Ok(decided)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;
    use crate::testing::{Fixture, NOW, jwt_claims, params};

    #[test]
    fn user_codes_use_the_alphabet_and_length() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
        }
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDFGHJK").as_deref(), Some("BCDFGHJK"));
        // Vowels and digits are never in a code; too short or too long is not a code.
        assert_eq!(normalize_user_code("ABCD-EFGH"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ1"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("BCDF-GHJKL"), None);
        assert_eq!(normalize_user_code("ВCDF-GHJK"), None); // Cyrillic В
    }

    #[test]
    fn codes_are_shown_with_a_dash() {
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A device authorization the TV started at NOW, and its row.
    async fn started(f: &Fixture) -> (DeviceAuthorization, DeviceRow) {
        let tv = f.client("tv").await;
        let d = start(&f.core, &tv, &params("scope=openid+offline_access"), NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let row = stored(f, &d).await;
        assert_eq!(row.status, DeviceStatus::Pending);
        (d, row)
    }

    async fn stored(f: &Fixture, d: &DeviceAuthorization) -> DeviceRow {
        let code = normalize_user_code(&d.user_code).unwrap_or_else(|| panic!("{}", d.user_code));
        f.core
            .store
            .device_by_user_code(&code)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no row for {code}"))
    }

    fn poll(d: &DeviceAuthorization) -> String {
        format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={}",
            d.device_code
        )
    }

    async fn decided(
        f: &Fixture,
        row: &DeviceRow,
        client: Option<&Client>,
        session: &Session,
        user: &User,
        allow: bool,
        at: i64,
    ) -> Decided {
        decide(&f.core, row, client, session, user, allow, IP, at)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[tokio::test]
    async fn an_approval_carries_the_session_into_the_grant() {
        let f = Fixture::new().await;
        let (d, row) = started(&f).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW - 50).await;
        let tv = f.client("tv").await;
        assert_eq!(
            decided(&f, &row, Some(&tv), &session, &alice, true, NOW + 1).await,
            Decided::Approved
        );
        let row = stored(&f, &d).await;
        assert_eq!(row.status, DeviceStatus::Approved);
        assert_eq!(row.user_id.as_deref(), Some(alice.id.as_str()));
        let grant = row.data.unwrap_or_else(|| panic!("no grant data"));
        assert_eq!(grant.sid.as_deref(), Some(session.sid.as_str()));
        assert_eq!(grant.auth_time, Some(NOW - 50));
        assert_eq!(grant.scope.to_wire(), "offline_access openid");
        let t = f
            .token("tv", &poll(&d), NOW + d.interval)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(jwt_claims(&t.access_token)["sub"], alice.id.as_str());
    }

    #[tokio::test]
    async fn a_denial_is_access_denied_for_the_device() {
        let f = Fixture::new().await;
        let (d, row) = started(&f).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        assert_eq!(
            decided(&f, &row, None, &session, &alice, false, NOW + 1).await,
            Decided::Denied
        );
        let row = stored(&f, &d).await;
        assert_eq!(row.status, DeviceStatus::Denied);
        assert!(row.data.is_none());
        let e = f.token_error("tv", &poll(&d), NOW + d.interval).await;
        assert_eq!(e.code, ErrorCode::AccessDenied);
    }

    #[tokio::test]
    async fn a_second_answer_or_a_late_one_changes_nothing() {
        let f = Fixture::new().await;
        let (d, row) = started(&f).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        assert_eq!(
            decided(&f, &row, None, &session, &alice, false, NOW + 1).await,
            Decided::Denied
        );
        // Another tab approves the page it still shows.
        assert_eq!(
            decided(&f, &row, None, &session, &alice, true, NOW + 2).await,
            Decided::AlreadyDecided
        );
        assert_eq!(stored(&f, &d).await.status, DeviceStatus::Denied);

        // Past the device code's lifetime nothing can be decided.
        let (d, row) = started(&f).await;
        assert_eq!(
            decided(&f, &row, None, &session, &alice, true, NOW + d.expires_in).await,
            Decided::AlreadyDecided
        );
        assert_eq!(stored(&f, &d).await.status, DeviceStatus::Pending);
    }

    #[tokio::test]
    async fn an_approval_after_the_session_ended_is_not_recorded() {
        let f = Fixture::new().await;
        let (d, row) = started(&f).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        // Back-Channel Logout: the TV must be told when this session ends.
        let mut tv = (*f.client("tv").await).clone();
        tv.settings.backchannel_logout_uri = Some("https://tv.example.com/logout".into());
        f.core
            .store
            .end_session(&session.id_hash, NOW + 1, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            decided(&f, &row, Some(&tv), &session, &alice, true, NOW + 2).await,
            Decided::SessionEnded
        );
        assert_eq!(stored(&f, &d).await.status, DeviceStatus::Pending);
        // The person signs in again and approves.
        let again = f.session(&alice, NOW + 3).await;
        assert_eq!(
            decided(&f, &row, Some(&tv), &again, &alice, true, NOW + 4).await,
            Decided::Approved
        );
        let grant = stored(&f, &d)
            .await
            .data
            .unwrap_or_else(|| panic!("no grant"));
        assert_eq!(grant.sid.as_deref(), Some(again.sid.as_str()));
    }
}
