//! /userinfo (OIDC Core §5.3), a protected resource (RFC 6750).

use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::core::tokens::{AccessClaims, user_claims};
use crate::crypto::jwt::{self, TYP_ACCESS_TOKEN, VerifyError};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::{ParamLimits, Params};
use crate::state::AppState;

use super::respond::no_store;

/// RFC 6750 §2: the token from the header or (POST) the form body, never both.
fn bearer(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    limits: ParamLimits,
) -> OAuthResult<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned());
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let from_body = if method == Method::POST && is_form {
        Params::parse(body, limits)?
            .get("access_token")
            .map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "the access token was sent twice (header and body); RFC 6750 §2 allows one method",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(OAuthError::invalid_token(
            "no access token: send it as `Authorization: Bearer <token>` (RFC 6750 §2.1)",
        )),
    }
}

pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match run(&state, &method, &headers, &body).await {
        Ok(v) => {
            let mut r = axum::Json(v).into_response();
            no_store(r.headers_mut());
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn run(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> OAuthResult<Value> {
    let token = bearer(method, headers, body, state.config.limits.params())?;
    let claims: AccessClaims = jwt::verify(
        state.core.tokens.keys(),
        &state.config.issuer,
        &token,
        TYP_ACCESS_TOKEN,
        Some(state.now()),
    )
    .map_err(|e| {
        OAuthError::invalid_token(match e {
            VerifyError::Expired => "the access token has expired",
            _ => "the access token is not valid",
        })
    })?;
    let scope = claims.scopes();
    // OIDC Core §5.3: userinfo is for tokens carrying the `openid` scope.
    if !claims.is_user_token() || !scope.contains("openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "userinfo needs an access token issued to a user with the `openid` scope",
        ));
    }
    let (revoked, user) = state
        .core
        .store
        .access_token_state(&claims.jti, &claims.grant_id, Some(&claims.sub))
        .await?;
    // A disabled or removed client's tokens are not honoured anywhere.
    if revoked || !state.core.clients.enabled(&claims.client_id).await? {
        return Err(OAuthError::invalid_token(
            "the access token has been revoked",
        ));
    }
    let user = match user {
        Some(u) if !u.disabled && !u.honours_authentication_at(claims.authenticated_at()) => {
            return Err(OAuthError::invalid_token(
                "the access token has been revoked (the user signed out everywhere, changed password or was disabled)",
            ));
        }
        Some(u) if !u.disabled => u,
        _ => {
            return Err(OAuthError::invalid_token(
                "the user of this token no longer exists or is disabled",
            ));
        }
    };
    let requested: serde_json::Map<String, Value> = claims
        .userinfo_claims
        .iter()
        .map(|c| (c.clone(), Value::Null))
        .collect();
    let mut out = user_claims(&user, &scope, true, Some(&requested));
    out.insert("sub".into(), json!(user.id));
    Ok(Value::Object(out))
}
