//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4-3.5): the device
//! polls until the user has decided.

use crate::core::Core;
use crate::core::device::SLOW_DOWN_SECS;
use crate::core::tokens::{TokenResponse, UserIssue};
use crate::crypto::secret::hash_token;
use crate::model::{Client, DeviceStatus};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::store::device::Pace;

use super::{active_user, new_family};

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let code = params.require("device_code")?;
    let hash = hash_token(code);
    let row = match core.store.device_by_code_hash(&hash).await? {
        Some(r) if r.client_id == client.id => r,
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "this device_code was issued to another client",
            ));
        }
        None => {
            return Err(OAuthError::invalid_grant(
                "unknown device_code; request a new one at the device authorization endpoint",
            ));
        }
    };
    if row.expires_at <= now {
        // §3.5: the client may start again with a new device authorization request.
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device_code has expired before the user approved it; start a new device authorization request",
        ));
    }
    match row.status {
        DeviceStatus::Pending => {
            let description = match core
                .store
                .pace_device_poll(&hash, now, SLOW_DOWN_SECS)
                .await?
            {
                Pace::Ok => {
                    return Err(OAuthError::new(
                        ErrorCode::AuthorizationPending,
                        "the user has not yet approved the request; keep polling at the interval",
                    ));
                }
                Pace::TooFast { interval_secs } => format!(
                    "polling too fast; wait at least {interval_secs} seconds between requests from now on (RFC 8628 §3.5)"
                ),
            };
            Err(OAuthError::new(ErrorCode::SlowDown, description))
        }
        DeviceStatus::Denied => Err(OAuthError::access_denied(
            "the user denied the request on the verification page",
        )),
        DeviceStatus::Consumed => Err(OAuthError::invalid_grant(
            "this device_code was already exchanged for tokens; it can be used only once",
        )),
        DeviceStatus::Approved => {
            let (Some(user_id), Some(grant)) = (row.user_id.as_deref(), row.data.as_ref()) else {
                return Err(OAuthError::internal(
                    "approved device row without its grant",
                ));
            };
            let user = active_user(core, user_id, grant.auth_time, grant.sid.as_deref()).await?;
            let grant_id = uuid::Uuid::new_v4().to_string();
            let issue = UserIssue {
                client,
                user: &user,
                grant_id: &grant_id,
                grant,
                nonce: None,
                family_expires_at: None,
            };
            // Sign first; then consuming the approval and recording the grant family share one
            // short transaction (the store's own): either the tokens exist and the code is
            // spent, or neither, and no transaction (on SQLite, no write lock) spans the
            // signatures.
            let minted = core.tokens.fresh_user_grant(&issue, now)?;
            let family = new_family(core, &issue, minted.refresh_hash.as_deref(), now);
            if !core
                .store
                .redeem_device(&hash, now, family.as_ref())
                .await?
            {
                return Err(OAuthError::invalid_grant(
                    "this device_code was already exchanged for tokens; it can be used only once",
                ));
            }
            Ok(minted.response)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::device::{self, DeviceAuthorization, normalize_user_code};
    use crate::model::Session;
    use crate::oauth::error::ErrorCode;
    use crate::testing::{Fixture, NOW, jwt_claims, params};

    /// A device authorization started by the TV at NOW.
    async fn start(f: &Fixture) -> DeviceAuthorization {
        let tv = f.client("tv").await;
        device::start(&f.core, &tv, &params("scope=openid+offline_access"), NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn poll(d: &DeviceAuthorization) -> String {
        format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={}",
            d.device_code
        )
    }

    /// The user's decision on the verification page, as `http::device` records it.
    async fn decide(f: &Fixture, d: &DeviceAuthorization, session: &Session, allow: bool, at: i64) {
        let code = normalize_user_code(&d.user_code).unwrap_or_else(|| panic!("{}", d.user_code));
        let grant = allow.then(|| Fixture::grant(session, "openid offline_access"));
        let decided = f
            .core
            .store
            .decide_device(&code, &session.user_id, grant.as_ref(), at)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(decided);
    }

    #[tokio::test]
    async fn start_answers_with_codes_and_the_configured_timing() {
        let f = Fixture::new().await;
        let d = start(&f).await;
        let s = &f.core.config.device;
        assert_eq!(d.expires_in, s.code_ttl);
        assert_eq!(d.interval, s.poll_interval);
        assert!(
            normalize_user_code(&d.user_code).is_some(),
            "{}",
            d.user_code
        );
        assert!(d.verification_uri_complete.ends_with(&d.user_code));
        assert!(d.verification_uri.starts_with(f.core.tokens.issuer()));
    }

    #[tokio::test]
    async fn pending_then_slow_down_then_tokens_once() {
        let f = Fixture::new().await;
        let d = start(&f).await;
        let e = f.token_error("tv", &poll(&d), NOW + d.interval).await;
        assert_eq!(e.code, ErrorCode::AuthorizationPending);
        // RFC 8628 §3.5: too soon, and the interval grows by 5 seconds for good.
        let e = f.token_error("tv", &poll(&d), NOW + d.interval + 1).await;
        assert_eq!(e.code, ErrorCode::SlowDown);
        let slower = d.interval + device::SLOW_DOWN_SECS;
        assert!(
            e.description.contains(&format!("{slower} seconds")),
            "{e:?}"
        );
        // The old interval is no longer enough, and each slow_down adds 5 seconds more.
        let third = NOW + d.interval + 1 + d.interval;
        let e = f.token_error("tv", &poll(&d), third).await;
        assert_eq!(e.code, ErrorCode::SlowDown);
        let slowest = slower + device::SLOW_DOWN_SECS;
        assert!(
            e.description.contains(&format!("{slowest} seconds")),
            "{e:?}"
        );
        let at = third + slowest;
        let e = f.token_error("tv", &poll(&d), at).await;
        assert_eq!(e.code, ErrorCode::AuthorizationPending);

        let alice = f.user("alice").await;
        let session = f.session(&alice, at).await;
        decide(&f, &d, &session, true, at + 1).await;
        let resp = f
            .token("tv", &poll(&d), at + 2)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resp.scope.as_deref(), Some("offline_access openid"));
        assert!(resp.refresh_token.is_some());
        let id = jwt_claims(
            resp.id_token
                .as_deref()
                .unwrap_or_else(|| panic!("no id_token")),
        );
        assert_eq!(id["sub"], alice.id.as_str());
        assert_eq!(id["aud"], "tv");
        assert_eq!(id["sid"], session.sid.as_str());
        assert_eq!(id["auth_time"], at);
        assert_eq!(jwt_claims(&resp.access_token)["iat"], at + 2);
        // The device code is spent.
        let e = f.token_error("tv", &poll(&d), at + 20).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn a_denied_request_is_access_denied() {
        let f = Fixture::new().await;
        let d = start(&f).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        decide(&f, &d, &session, false, NOW + 1).await;
        let e = f.token_error("tv", &poll(&d), NOW + 10).await;
        assert_eq!(e.code, ErrorCode::AccessDenied);
    }

    #[tokio::test]
    async fn an_expired_device_code_is_expired_token() {
        let f = Fixture::new().await;
        let d = start(&f).await;
        let e = f.token_error("tv", &poll(&d), NOW + d.expires_in).await;
        assert_eq!(e.code, ErrorCode::ExpiredToken);
        // Approval is no longer possible either.
        let alice = f.user("alice").await;
        let code = normalize_user_code(&d.user_code).unwrap_or_default();
        let decided = f
            .core
            .store
            .decide_device(&code, &alice.id, None, NOW + d.expires_in)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!decided);
    }

    #[tokio::test]
    async fn an_unknown_device_code_or_another_clients_is_refused() {
        let f = Fixture::new().await;
        let d = start(&f).await;
        let e = f
            .token_error(
                "tv",
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=nope",
                NOW + 5,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        // Straight to the grant: no other fixture client is registered for it.
        let spa = f.client("spa").await;
        let e = super::handle(&f.core, &spa, &params(&poll(&d)), NOW + 5)
            .await
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("another client"), "{e:?}");
    }

    #[tokio::test]
    async fn no_tokens_when_the_approving_session_has_ended() {
        let f = Fixture::new().await;
        let d = start(&f).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        decide(&f, &d, &session, true, NOW + 1).await;
        // The user signs out before the TV polls (Back-Channel Logout 1.0 section 2.7).
        let ended = f
            .core
            .store
            .end_session(&session.id_hash, NOW + 2, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ended.as_deref(), Some(session.sid.as_str()));
        let e = f.token_error("tv", &poll(&d), NOW + 10).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("signed out"), "{e:?}");
    }

    #[tokio::test]
    async fn disabling_the_user_denies_an_approved_device_code() {
        let f = Fixture::new().await;
        let d = start(&f).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        decide(&f, &d, &session, true, NOW + 1).await;
        f.core
            .store
            .set_user_disabled(&alice.id, true, NOW + 2)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let e = f.token_error("tv", &poll(&d), NOW + 10).await;
        assert_eq!(e.code, ErrorCode::AccessDenied);
    }
}
