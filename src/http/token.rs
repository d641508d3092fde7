//! POST /token (RFC 6749 §3.2), /revoke (RFC 7009) and /introspect (RFC 7662): the
//! client-authenticated machine endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::core::client_auth;
use crate::core::grants::{self, TokenContext};
use crate::core::tokens::AccessClaims;
use crate::crypto::jwt::{self, TYP_ACCESS_TOKEN};
use crate::crypto::secret::hash_token;
use crate::model::Client;
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::{ParamLimits, Params};
use crate::state::AppState;

use super::client_ip::ClientIp;
use super::respond::json_no_store;

/// Read a form body: RFC 6749 §3.2 requires application/x-www-form-urlencoded.
pub fn form(headers: &HeaderMap, body: &[u8], limits: ParamLimits) -> OAuthResult<Params> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded (RFC 6749 section 3.2)",
        ));
    }
    Params::parse(body, limits)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The form body and the client it authenticates: the start of every client-authenticated
/// endpoint (token, revocation, introspection, device authorization).
pub async fn authenticated_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    ip: &str,
) -> OAuthResult<(Params, Arc<Client>)> {
    let params = form(headers, body, state.config.limits.params())?;
    let client = client_auth::authenticate(
        &state.core,
        authorization(headers),
        &params,
        ip,
        state.now(),
    )
    .await?;
    Ok((params, client))
}

pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let (params, client) = authenticated_form(&state, &headers, &body, &ip).await?;
        let ctx = TokenContext {
            client_ip: Some(ip),
        };
        grants::handle(&state.core, &client, &params, &ctx, state.now()).await
    }
    .await;
    match result {
        Ok((grant, resp)) => {
            state
                .core
                .metrics
                .tokens_issued
                .with_label_values(&[grant.label()])
                .inc();
            json_no_store(&resp)
        }
        Err(e) => e.into_response(),
    }
}

/// A token we issued, as found by revocation or introspection.
enum Found {
    Access(AccessClaims),
    Refresh(crate::model::RefreshRow),
    None,
}

/// RFC 7009 §2.1 / RFC 7662 §2.1: the hint is only a hint; search every type.
async fn find(state: &AppState, token: &str, hint: Option<&str>) -> OAuthResult<Found> {
    let as_access = |state: &AppState| {
        // Expiry is judged by the caller: revoking an expired token is still a 200.
        jwt::verify::<AccessClaims>(
            state.core.tokens.keys(),
            &state.config.issuer,
            token,
            TYP_ACCESS_TOKEN,
            None,
        )
        .ok()
    };
    if hint != Some("refresh_token")
        && let Some(c) = as_access(state)
    {
        return Ok(Found::Access(c));
    }
    if let Some(r) = state.core.store.get_refresh(&hash_token(token)).await? {
        return Ok(Found::Refresh(r));
    }
    if hint == Some("refresh_token")
        && let Some(c) = as_access(state)
    {
        return Ok(Found::Access(c));
    }
    Ok(Found::None)
}

fn check_hint(hint: Option<&str>) -> OAuthResult<()> {
    match hint {
        None | Some("access_token") | Some("refresh_token") => Ok(()),
        Some(other) => Err(OAuthError::new(
            ErrorCode::UnsupportedTokenType,
            format!(
                "token_type_hint `{other}` is not a token type this server issues or revokes (use access_token or refresh_token)"
            ),
        )),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let (params, client) = authenticated_form(&state, &headers, &body, &ip).await?;
        let token = params.require("token")?;
        let hint = params.get("token_type_hint");
        let now = state.now();
        match find(&state, token, hint).await? {
            // RFC 7009 §2.1: a client may only revoke its own tokens; others are ignored.
            Found::Access(c) if c.client_id == client.id => {
                state.core.store.revoke_jti(&c.jti, c.exp).await?
            }
            // Revoking a refresh token revokes its whole grant family, access tokens included.
            Found::Refresh(r) if r.client_id == client.id => {
                state
                    .core
                    .store
                    .revoke_grant(&r.grant_id, &r.client_id, now, r.family_expires_at)
                    .await?
            }
            Found::None => check_hint(hint)?,
            _ => {}
        }
        Ok::<_, OAuthError>(())
    }
    .await;
    match result {
        // RFC 7009 §2.2: 200 also for unknown and already invalid tokens.
        Ok(()) => json_no_store(&json!({})),
        Err(e) => e.into_response(),
    }
}

/// Which tokens a caller may learn about. A resource server registered with
/// `introspection = true` may introspect any token; any other confidential client only the
/// tokens issued to it (as Keycloak and node-oidc-provider do): for the rest it is told
/// `active: false`, the same answer as for an unknown token, so it learns nothing of other
/// clients' tokens (RFC 7662 section 4). A public client cannot authenticate, which the
/// endpoint requires (section 2.1).
fn introspection_scope(client: &Client) -> OAuthResult<Option<&str>> {
    if client.settings.introspection {
        Ok(None)
    } else if client.auth_method() == crate::oauth::types::TokenEndpointAuthMethod::None {
        Err(OAuthError::unauthorized_client(format!(
            "client `{}` is a public client; introspection needs a client that authenticates (RFC 7662 section 2.1)",
            client.id
        )))
    } else {
        Ok(Some(client.id.as_str()))
    }
}

pub async fn introspect(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        // RFC 7662 §2.1: the endpoint requires authorization.
        let (params, client) = authenticated_form(&state, &headers, &body, &ip).await?;
        let only_of = introspection_scope(&client)?;
        let token = params.require("token")?;
        let now = state.now();
        let inactive = json!({"active": false});
        let foreign = |issued_to: &str| only_of.is_some_and(|me| me != issued_to);
        let v: Value = match find(&state, token, params.get("token_type_hint")).await? {
            Found::Access(c) if c.exp <= now || foreign(&c.client_id) => inactive,
            Found::Refresh(r) if foreign(&r.client_id) => inactive,
            Found::Access(c) => {
                let user_id = c.is_user_token().then_some(c.sub.as_str());
                let (revoked, user) = state
                    .core
                    .store
                    .access_token_state(&c.jti, &c.grant_id, user_id)
                    .await?;
                // A token stands only while its user and its client do: not for a disabled or
                // removed user, nor from before the user's tokens were revoked, nor for a
                // disabled client (RFC 7662 section 2.2: active means usable right now).
                let user_ok = match (&user, user_id) {
                    (Some(u), Some(_)) => u.honours_authentication_at(c.authenticated_at()),
                    (None, Some(_)) => false,
                    (_, None) => true,
                };
                if revoked || !user_ok || !state.core.clients.enabled(&c.client_id).await? {
                    inactive
                } else {
                    let mut v = json!({
                        "active": true, "scope": c.scope, "client_id": c.client_id, "sub": c.sub,
                        "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti,
                        "token_type": "Bearer",
                    });
                    if let (Some(u), Some(o)) = (user, v.as_object_mut()) {
                        o.insert("username".into(), json!(u.username));
                    }
                    v
                }
            }
            Found::Refresh(r) => {
                let user = match &r.user_id {
                    Some(id) => match state.core.store.get_user(id).await? {
                        Some(u) if !u.disabled => Some(u),
                        // The grant's user is disabled or gone: the token is not usable.
                        _ => None,
                    },
                    None => None,
                };
                if r.expires_at <= now
                    || r.grant_revoked
                    || r.rotated_at.is_some()
                    || (r.user_id.is_some() && user.is_none())
                    || !state.core.clients.enabled(&r.client_id).await?
                {
                    inactive
                } else {
                    let mut v = json!({
                        "active": true, "scope": r.data.scope.to_wire(), "client_id": r.client_id,
                        "exp": r.expires_at, "iat": r.created_at, "iss": state.config.issuer,
                        "token_type": "refresh_token",
                    });
                    if let Some(o) = v.as_object_mut() {
                        if let Some(sub) = &r.user_id {
                            o.insert("sub".into(), json!(sub));
                        }
                        if let Some(u) = user {
                            o.insert("username".into(), json!(u.username));
                        }
                    }
                    v
                }
            }
            Found::None => inactive,
        };
        Ok::<_, OAuthError>(v)
    }
    .await;
    match result {
        Ok(v) => json_no_store(&v),
        Err(e) => e.into_response(),
    }
}
