//! `grant_type=password` (RFC 6749 §4.3). Off unless a client is registered for it: it hands
//! the user's password to the client, which RFC 9700 §2.4 says MUST NOT be done. It shares the
//! login page's throttle.

use crate::core::Core;
use crate::core::audit::{AuditKind, audit};
use crate::core::login::{LoginFailure, check_password};
use crate::core::tokens::TokenResponse;
use crate::model::{Client, GrantData};
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
    let ip = ctx.client_ip.as_deref();
    let checked = check_password(core, username, password, ip, now).await?;
    // The same audit trail as the login page: the password grant is a sign-in too.
    let at = ip.unwrap_or("unknown");
    match &checked {
        Ok(v) => {
            audit(
                core,
                AuditKind::LoginSuccess,
                Some(&v.user.id),
                Some(&client.id),
                at,
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
                at,
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
        Err(LoginFailure::Locked { until }) => {
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
