//! `grant_type=password` (RFC 6749 §4.3). Off unless a client is registered for it: it hands
//! the user's password to the client, which RFC 9700 §2.4 says MUST NOT be done. It shares the
//! login page's throttle.

use crate::core::Core;
use crate::core::audit::{AuditKind, audit};
use crate::core::login::{LoginFailure, check_password};
use crate::core::tokens::TokenResponse;
use crate::model::{Client, GrantData};
use crate::oauth::acr::Level;
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;

use super::{TokenContext, UserIssue, issue_user_grant};

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    ctx: &TokenContext,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let username = params.require("username")?;
    let password = params.require("password")?;
    let scope = client.requested_scope(params.get("scope"))?;
    let ip = ctx.client_ip;
    let checked = check_password(core, username, password, ip, now).await?;
    // This grant cannot ask for a second factor: for an account that has one it would be a
    // way around it, so a right password is refused like a wrong one, and not audited as a
    // sign-in.
    if let Ok(v) = &checked {
        let refusal = if crate::core::mfa::asks_for_factor(core, &v.user) {
            Some(
                "this account signs in with a second factor, which the password grant cannot ask for; use the authorization code flow",
            )
        } else if crate::core::mfa::need(core.config.mfa.mode, client, &Default::default())
            .is_ok_and(|n| n.level > Level::Password)
        {
            // The server or the client requires two factors, which a password never is.
            Some(
                "sign-ins for this client need a second factor, which the password grant cannot ask for; use the authorization code flow",
            )
        } else {
            None
        };
        if let Some(description) = refusal {
            // The password was right: the trail says so, as the login page's does.
            audit(
                core,
                AuditKind::PasswordAccepted,
                Some(&v.user.id),
                Some(&client.id),
                ip,
                now,
            )
            .await;
            return Err(OAuthError::invalid_grant(description));
        }
    }
    // The same audit trail as the login page: the password grant is a sign-in too.
    match &checked {
        Ok(v) => {
            audit(
                core,
                AuditKind::LoginSuccess,
                Some(&v.user.id),
                Some(&client.id),
                ip,
                now,
            )
            .await
        }
        Err(f) if f.was_checked() => {
            audit(
                core,
                AuditKind::LoginFailure,
                None,
                Some(&client.id),
                ip,
                now,
            )
            .await;
        }
        Err(_) => {}
    }
    let verified = match checked {
        Ok(v) => v,
        Err(LoginFailure::Invalid) => {
            return Err(OAuthError::invalid_grant("wrong username or password"));
        }
        Err(LoginFailure::Disabled) => {
            return Err(OAuthError::invalid_grant("this account is disabled"));
        }
        Err(LoginFailure::Locked { until } | LoginFailure::Waiting { until }) => {
            return Err(OAuthError::invalid_grant(format!(
                "too many failed attempts; try again in {} seconds",
                (until - now).max(1)
            )));
        }
        // Not a wrong password: 429 with Retry-After (RFC 6585 section 4), so a client does
        // not take it for one.
        Err(LoginFailure::InFlight) => {
            return Err(OAuthError::throttled(
                "too many attempts at once: attempts for one account are checked one at a time; try again in a few seconds",
                crate::crypto::password::BUSY_RETRY_SECONDS,
            ));
        }
        Err(LoginFailure::Busy) => {
            return Err(crate::crypto::password::HashError::Busy.into());
        }
    };
    let user = verified.user;
    let grant = GrantData {
        scope,
        auth_time: Some(verified.at),
        amr: vec!["pwd".into()],
        acr: Some(Level::Password.as_str().to_owned()),
        ..GrantData::default()
    };
    issue_user_grant(
        core,
        &UserIssue {
            client,
            user: &user,
            grant_id: &uuid::Uuid::new_v4().to_string(),
            grant: &grant,
            nonce: None,
            family_expires_at: None,
        },
        now,
    )
    .await
}

#[cfg(test)]
mod tests {
    use crate::oauth::error::ErrorCode;
    use crate::testing::{Fixture, NOW, PASSWORD, jwt_claims};

    fn form(username: &str, password: &str) -> String {
        format!(
            "grant_type=password&username={username}&password={}&scope=openid+profile+offline_access",
            password.replace(' ', "+")
        )
    }

    #[tokio::test]
    async fn the_right_password_issues_tokens() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let resp = f
            .token("legacy", &form("alice", PASSWORD), NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resp.scope.as_deref(), Some("offline_access openid profile"));
        assert!(resp.refresh_token.is_some());
        let at = jwt_claims(&resp.access_token);
        assert_eq!(at["sub"], alice.id.as_str());
        assert_eq!(at["auth_time"], NOW);
        assert_eq!(at["exp"], NOW + resp.expires_in);
        assert!(at.get("sid").is_none(), "no browser session behind it");
        let id = jwt_claims(
            resp.id_token
                .as_deref()
                .unwrap_or_else(|| panic!("no id_token")),
        );
        assert_eq!(id["amr"], serde_json::json!(["pwd"]));
        assert_eq!(id["auth_time"], NOW);
        assert_eq!(id["aud"], "legacy");
        // The email works as the username too.
        f.token("legacy", &form("alice%40example.com", PASSWORD), NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }

    #[tokio::test]
    async fn a_wrong_password_or_unknown_user_is_invalid_grant() {
        let f = Fixture::new().await;
        let wrong = f.token_error("legacy", &form("alice", "nope"), NOW).await;
        assert_eq!(wrong.code, ErrorCode::InvalidGrant);
        let unknown = f
            .token_error("legacy", &form("mallory", PASSWORD), NOW)
            .await;
        assert_eq!(unknown.code, ErrorCode::InvalidGrant);
        // Never says whether the account exists.
        assert_eq!(wrong.description, unknown.description);
    }

    #[tokio::test]
    async fn a_disabled_user_gets_no_tokens() {
        let f = Fixture::new().await;
        let e = f.token_error("legacy", &form("bob", PASSWORD), NOW).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("disabled"), "{e:?}");
        // Only the right password learns that the account is disabled.
        let e = f.token_error("legacy", &form("bob", "nope"), NOW).await;
        assert!(!e.description.contains("disabled"), "{e:?}");
    }

    #[tokio::test]
    async fn the_account_locks_after_max_failures() {
        let f = Fixture::new().await;
        let max = f.core.config.login.max_failures;
        assert_eq!(max, 3);
        for i in 0..max {
            let e = f
                .token_error("legacy", &form("alice", "nope"), NOW + i)
                .await;
            assert_eq!(e.code, ErrorCode::InvalidGrant);
        }
        // Now even the right password is refused, with how long to wait.
        let e = f
            .token_error("legacy", &form("alice", PASSWORD), NOW + max)
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("seconds"), "{e:?}");
        let secs: i64 = e
            .description
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no number in {e:?}"));
        assert!(
            (1..=f.core.config.login.lockout_seconds).contains(&secs),
            "{secs}"
        );
    }

    #[tokio::test]
    async fn username_and_password_are_required_and_scope_is_checked() {
        let f = Fixture::new().await;
        let e = f
            .token_error("legacy", "grant_type=password&username=alice", NOW)
            .await;
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = f
            .token_error(
                "legacy",
                &format!(
                    "grant_type=password&username=alice&password={}&scope=api.write",
                    PASSWORD.replace(' ', "+")
                ),
                NOW,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }
}
