//! The /token side: one module per grant type, dispatched by an exhaustive match.

mod authorization_code;
mod client_credentials;
mod device_code;
mod password;
mod refresh_token;

use crate::core::Core;
use crate::core::tokens::{TokenResponse, UserIssue};
use crate::model::{Client, User};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::GrantType;
use crate::store::grants::{NewFamily, NewGrant, NewRefresh};
use std::net::IpAddr;

/// Facts about the HTTP request a grant may need.
#[derive(Debug, Clone, Default)]
pub struct TokenContext {
    pub client_ip: Option<IpAddr>,
}

/// Run the grant named by `grant_type` for an already-authenticated client.
pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    ctx: &TokenContext,
    now: i64,
) -> OAuthResult<(GrantType, TokenResponse)> {
    let raw = params.require("grant_type")?;
    let grant = match raw.parse::<GrantType>() {
        // The implicit grant has no token request (RFC 6749 §4.2).
        Ok(GrantType::Implicit) | Err(()) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type `{raw}` is not supported here; use one of: {}",
                    GrantType::ALL
                        .iter()
                        .filter(|g| **g != GrantType::Implicit)
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(g) => g,
    };
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "client `{}` is not registered for the {} grant",
            client.id,
            grant.as_str()
        )));
    }
    let response = match grant {
        GrantType::AuthorizationCode => {
            authorization_code::handle(core, client, params, now).await?
        }
        GrantType::RefreshToken => refresh_token::handle(core, client, params, now).await?,
        GrantType::ClientCredentials => {
            client_credentials::handle(core, client, params, now).await?
        }
        GrantType::Password => password::handle(core, client, params, ctx, now).await?,
        GrantType::DeviceCode => device_code::handle(core, client, params, now).await?,
        GrantType::Implicit => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "implicit has no token request",
            ));
        }
    };
    Ok((grant, response))
}

/// Issue a fresh user grant (password): mint, then record the family in a transaction
/// (the store's own) that holds no signature.
pub async fn issue_user_grant(
    core: &Core,
    i: &UserIssue<'_>,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let minted = core.tokens.fresh_user_grant(i, now)?;
    if let Some(family) = new_family(core, i, minted.refresh_hash.as_deref(), now) {
        core.store.record_grant(&family, now).await?;
    }
    Ok(minted.response)
}

/// The family of a freshly minted grant, to record with whatever made the grant valid (a
/// code, an approval). None without a refresh token: there is nothing to record, since the
/// access token is a self-contained JWT.
fn new_family<'a>(
    core: &Core,
    i: &'a UserIssue<'_>,
    refresh_hash: Option<&'a str>,
    now: i64,
) -> Option<NewFamily<'a>> {
    let hash = refresh_hash?;
    let family_expires_at = i
        .family_expires_at
        .unwrap_or(now + core.tokens.refresh_ttl(i.client));
    Some(NewFamily {
        grant: NewGrant {
            id: i.grant_id,
            client_id: &i.client.id,
            user_id: Some(&i.user.id),
            sid: i.grant.sid.as_deref(),
            expires_at: family_expires_at,
            offline_access: i.grant.scope.contains("offline_access"),
        },
        refresh: NewRefresh {
            token_hash: hash,
            grant_id: i.grant_id,
            client_id: &i.client.id,
            user_id: Some(&i.user.id),
            data: i.grant,
            expires_at: (now + core.tokens.lifetimes().refresh_token_idle_ttl)
                .min(family_expires_at),
            family_expires_at,
        },
    })
}

/// Load the grant's user, refusing disabled or deleted ones, and grants authenticated at or
/// before the user's tokens were revoked (a password change, a disable, a sign-out
/// everywhere). Checked when the grant is used, not only swept when revoked: a login still
/// being checked when the admin acted creates its grant after the sweep.
///
/// With `sid` (a code or an approved device code), the browser session that authorized the
/// grant must still be live: once it has ended (logout, a new sign-in, a revocation) its
/// clients may already have been sent their Logout Tokens (Back-Channel Logout 1.0
/// section 2.7), and tokens issued after that would outlive the logout.
pub async fn active_user(
    core: &Core,
    user_id: &str,
    auth_time: Option<i64>,
    sid: Option<&str>,
) -> OAuthResult<User> {
    let (user, session_ended) = match core.store.grant_user(user_id, sid).await? {
        Some((u, ended)) => (Some(u), ended),
        None => (None, false),
    };
    if session_ended {
        return Err(OAuthError::invalid_grant(
            "the browser session that authorized this grant has ended (the user signed out); start again",
        ));
    }
    let user = usable(user)?;
    if auth_time.is_some_and(|t| t <= user.tokens_revoked_at) {
        return Err(OAuthError::invalid_grant(
            "this grant was revoked: the user signed out everywhere, changed password or was disabled since",
        ));
    }
    Ok(user)
}

fn usable(user: Option<User>) -> OAuthResult<User> {
    match user {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(OAuthError::invalid_grant(
            "the user of this grant no longer exists or is disabled",
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::oauth::error::ErrorCode;
    use crate::testing::{Fixture, NOW};

    #[tokio::test]
    async fn an_unknown_grant_type_is_unsupported() {
        let f = Fixture::new().await;
        let e = f
            .token_error("web", "grant_type=urn%3Aexample%3Amagic", NOW)
            .await;
        assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
        // The message lists what is supported, and implicit is not among it.
        assert!(e.description.contains("authorization_code"), "{e:?}");
        assert!(!e.description.contains("implicit"), "{e:?}");
    }

    #[tokio::test]
    async fn implicit_has_no_token_request_even_for_an_implicit_client() {
        let f = Fixture::new().await;
        let e = f.token_error("implicit", "grant_type=implicit", NOW).await;
        assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
    }

    #[tokio::test]
    async fn a_grant_the_client_is_not_registered_for_is_unauthorized() {
        let f = Fixture::new().await;
        for (client, form) in [
            ("web", "grant_type=password&username=alice&password=x"),
            ("service", "grant_type=authorization_code&code=x"),
            ("spa", "grant_type=client_credentials"),
            (
                "legacy",
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=x",
            ),
        ] {
            let e = f.token_error(client, form, NOW).await;
            assert_eq!(e.code, ErrorCode::UnauthorizedClient, "{client}: {form}");
            assert!(e.description.contains(client), "{e:?}");
        }
    }

    #[tokio::test]
    async fn grant_type_is_required() {
        let f = Fixture::new().await;
        let e = f.token_error("web", "code=abc", NOW).await;
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
