//! The UserInfo endpoint's claim release (OIDC Core §5.3), for a bearer access token of
//! ours (RFC 6750).

use serde_json::{Map, Value, json};

use crate::core::Core;
use crate::core::tokens::{AccessClaims, user_claims};
use crate::crypto::jwt::{self, TYP_ACCESS_TOKEN, VerifyError};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};

/// The claims UserInfo returns for `token`: `sub`, every claim the granted scopes release
/// (OIDC Core §5.4), and the individually requested ones a granted scope covers (§5.5).
pub async fn claims(core: &Core, token: &str, now: i64) -> OAuthResult<Map<String, Value>> {
    let claims: AccessClaims = jwt::verify(
        core.tokens.keys(),
        core.tokens.issuer(),
        token,
        TYP_ACCESS_TOKEN,
        Some(now),
    )
    .map_err(|e| {
        OAuthError::invalid_token(match e {
            VerifyError::Expired => "the access token has expired",
            _ => "the access token is not valid",
        })
    })?;
    let scope = claims.scopes();
    // §5.3: userinfo is for tokens carrying the `openid` scope (RFC 6750 §3.1: a token that
    // lacks it is insufficient_scope, 403).
    if !claims.is_user_token() || !scope.contains("openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "userinfo needs an access token issued to a user with the `openid` scope",
        ));
    }
    let (revoked, user) = core
        .store
        .access_token_state(&claims.jti, &claims.grant_id, Some(&claims.sub))
        .await?;
    // A disabled or removed client's tokens are not honoured anywhere.
    if revoked || !core.clients.enabled(&claims.client_id).await? {
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
    let requested: Map<String, Value> = claims
        .userinfo_claims
        .iter()
        .map(|c| (c.clone(), Value::Null))
        .collect();
    let mut out = user_claims(&user, &scope, true, Some(&requested));
    out.insert("sub".into(), json!(user.id));
    Ok(out)
}
