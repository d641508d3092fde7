//! The /token side: one module per grant type, dispatched by an exhaustive match.

mod authorization_code;
mod client_credentials;
mod device_code;
mod password;
mod refresh_token;

use crate::core::tokens::{self, AccessSubject, IdTokenInput, TokenResponse};
use crate::model::{Client, GrantData, User};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::{GrantType, ScopeSet};
use crate::state::AppState;
use crate::store::Store;
use crate::store::grants::{NewGrant, NewRefresh};
use sqlx::AnyConnection;

/// Facts about the HTTP request a grant may need.
#[derive(Debug, Clone, Default)]
pub struct TokenContext {
    pub client_ip: Option<String>,
}

/// Run the grant named by `grant_type` for an already-authenticated client.
pub async fn handle(
    state: &AppState,
    client: &Client,
    params: &Params,
    ctx: &TokenContext,
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
        GrantType::AuthorizationCode => authorization_code::handle(state, client, params).await?,
        GrantType::RefreshToken => refresh_token::handle(state, client, params).await?,
        GrantType::ClientCredentials => client_credentials::handle(state, client, params).await?,
        GrantType::Password => password::handle(state, client, params, ctx).await?,
        GrantType::DeviceCode => device_code::handle(state, client, params).await?,
        GrantType::Implicit => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "implicit has no token request",
            ));
        }
    };
    Ok((grant, response))
}

/// Scopes for a request: the requested ones (each must be allowed for the client), or the
/// client's defaults when `scope` is omitted (RFC 6749 §3.3).
pub fn requested_scope(client: &Client, raw: Option<&str>) -> OAuthResult<ScopeSet> {
    let Some(raw) = raw else {
        return Ok(client.default_scopes());
    };
    let scope = ScopeSet::parse(raw).map_err(OAuthError::invalid_scope)?;
    let refused: Vec<&str> = scope.iter().filter(|s| !client.allows_scope(s)).collect();
    if !refused.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "scope {} is not allowed for client `{}`",
            refused.join(", "),
            client.id
        )));
    }
    Ok(scope)
}

/// What a user grant issues: access token always, id_token with `openid`, refresh token when
/// the grant allows it. The grant family and its first refresh token are written in one
/// transaction.
pub struct UserIssue<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub grant_id: &'a str,
    pub grant: &'a GrantData,
    pub nonce: Option<&'a str>,
    /// When this grant family ends; None for a fresh family (now + refresh ttl).
    pub family_expires_at: Option<i64>,
}

/// Mint the response of a user grant. Returns it with the refresh token's hash, not yet
/// stored (the caller stores it inside its own transaction).
pub fn mint_user_tokens(
    state: &AppState,
    i: &UserIssue<'_>,
    with_refresh: bool,
    now: i64,
) -> OAuthResult<(TokenResponse, Option<String>)> {
    let (access_token, expires_in) = tokens::access_token(
        state,
        &AccessSubject {
            client: i.client,
            user_id: Some(&i.user.id),
            grant_id: i.grant_id,
            grant: i.grant,
        },
        now,
    )?;
    let id_token = if i.grant.scope.contains("openid") {
        Some(tokens::id_token(
            state,
            &IdTokenInput {
                client: i.client,
                user: i.user,
                grant: i.grant,
                nonce: i.nonce,
                access_token: Some(&access_token),
                code: None,
                include_scope_claims: tokens::id_token_has_scope_claims(state, i.client, true),
            },
            now,
        )?)
    } else {
        None
    };
    let refresh = with_refresh.then(crate::crypto::secret::new_token);
    let hash = refresh.as_deref().map(crate::crypto::secret::hash_token);
    Ok((
        TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
            scope: Some(i.grant.scope.to_wire()),
            id_token,
            refresh_token: refresh,
        },
        hash,
    ))
}

/// Issue a fresh user grant (password): mint, then store the family in a transaction that
/// holds no signature.
pub async fn issue_user_grant(
    state: &AppState,
    i: &UserIssue<'_>,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let (resp, refresh_hash) = mint_fresh_grant(state, i, now)?;
    let mut tx = state.store.begin().await?;
    record_fresh_grant(state, &mut tx, i, refresh_hash.as_deref(), now).await?;
    tx.commit().await?;
    Ok(resp)
}

/// The tokens of a fresh user grant, with the refresh token's hash (if one is issued) for
/// [`record_fresh_grant`].
pub fn mint_fresh_grant(
    state: &AppState,
    i: &UserIssue<'_>,
    now: i64,
) -> OAuthResult<(TokenResponse, Option<String>)> {
    let with_refresh = tokens::wants_refresh(state, i.client, &i.grant.scope);
    mint_user_tokens(state, i, with_refresh, now)
}

/// Record the family of a freshly minted grant inside `conn`'s transaction (nothing to
/// record without a refresh token: the access token is a self-contained JWT).
pub async fn record_fresh_grant(
    state: &AppState,
    conn: &mut AnyConnection,
    i: &UserIssue<'_>,
    refresh_hash: Option<&str>,
    now: i64,
) -> OAuthResult<()> {
    let Some(hash) = refresh_hash else {
        return Ok(());
    };
    let family_expires_at = i
        .family_expires_at
        .unwrap_or(now + tokens::refresh_ttl(state, i.client));
    Store::insert_grant_and_refresh(
        conn,
        &NewGrant {
            id: i.grant_id,
            client_id: &i.client.id,
            user_id: Some(&i.user.id),
            sid: i.grant.sid.as_deref(),
            expires_at: family_expires_at,
        },
        &NewRefresh {
            token_hash: hash,
            grant_id: i.grant_id,
            client_id: &i.client.id,
            user_id: Some(&i.user.id),
            data: i.grant,
            expires_at: (now + state.config.tokens.refresh_token_idle_ttl).min(family_expires_at),
            family_expires_at,
        },
        now,
    )
    .await?;
    Ok(())
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
    state: &AppState,
    user_id: &str,
    auth_time: Option<i64>,
    sid: Option<&str>,
) -> OAuthResult<User> {
    let (user, session_ended) = match state.store.grant_user(user_id, sid).await? {
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
