//! Token introspection (RFC 7662): whether a token is usable right now, and what it is.

use serde::Serialize;
use serde_json::Value;

use crate::core::Core;
use crate::core::revocation::{Found, TokenRequest, find};
use crate::core::tokens::{AccessClaims, TokenType};
use crate::model::{Client, RefreshRow};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::TokenEndpointAuthMethod;

/// RFC 7662 §2.2. An inactive token is `{"active": false}` and nothing else, whatever the
/// reason, so the caller learns nothing more about it. Fields are in the order the JSON has
/// always had them (alphabetical).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `Bearer` for access tokens (RFC 7662 §2.2 uses the RFC 6749 §7.1 type), and
    /// `refresh_token` for refresh tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl IntrospectionResponse {
    pub fn inactive() -> Self {
        Self::default()
    }
}

/// Which tokens a caller may learn about. A resource server registered with
/// `introspection = true` may introspect any token; any other confidential client only the
/// tokens issued to it (as Keycloak and node-oidc-provider do): for the rest it is told
/// `active: false`, the same answer as for an unknown token, so it learns nothing of other
/// clients' tokens (RFC 7662 section 4). A public client cannot authenticate, which the
/// endpoint requires (section 2.1). `None`: every token.
fn visible_to(client: &Client) -> OAuthResult<Option<&str>> {
    if client.settings.introspection {
        Ok(None)
    } else if client.auth_method() == TokenEndpointAuthMethod::None {
        Err(OAuthError::unauthorized_client(format!(
            "client `{}` is a public client; introspection needs a client that authenticates (RFC 7662 section 2.1)",
            client.id
        )))
    } else {
        Ok(Some(client.id.as_str()))
    }
}

/// RFC 7662 §2.1: introspect the request's `token` for the authenticated `client`. Who
/// may ask is settled before the request is read.
pub async fn introspect(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<IntrospectionResponse> {
    let only_of = visible_to(client)?;
    let req = TokenRequest::try_from(params)?;
    let foreign = |issued_to: &str| only_of.is_some_and(|me| me != issued_to);
    Ok(match find(core, &req).await? {
        Found::Access(c) if c.exp <= now || foreign(&c.client_id) => {
            IntrospectionResponse::inactive()
        }
        Found::Refresh(r) if foreign(&r.client_id) => IntrospectionResponse::inactive(),
        Found::Access(c) => access(core, c).await?,
        Found::Refresh(r) => refresh(core, r, now).await?,
        Found::None => IntrospectionResponse::inactive(),
    })
}

/// An unexpired access token of ours.
async fn access(core: &Core, c: AccessClaims) -> OAuthResult<IntrospectionResponse> {
    let user_id = c.is_user_token().then_some(c.sub.as_str());
    let (revoked, user) = core
        .store
        .access_token_state(&c.jti, &c.grant_id, user_id)
        .await?;
    // A token stands only while its user and its client do: not for a disabled or removed
    // user, nor from before the user's tokens were revoked, nor for a disabled client
    // (RFC 7662 section 2.2: active means usable right now).
    let user_ok = match (&user, user_id) {
        (Some(u), Some(_)) => u.honours_authentication_at(c.authenticated_at()),
        (None, Some(_)) => false,
        (_, None) => true,
    };
    if revoked || !user_ok || !core.clients.enabled(&c.client_id).await? {
        return Ok(IntrospectionResponse::inactive());
    }
    Ok(IntrospectionResponse {
        active: true,
        aud: Some(c.aud),
        client_id: Some(c.client_id),
        exp: Some(c.exp),
        iat: Some(c.iat),
        iss: Some(c.iss),
        jti: Some(c.jti),
        // RFC 7662 section 2.2: `scope` lists the token's scopes; a token granted none has
        // no member rather than an empty one.
        scope: (!c.scope.is_empty()).then_some(c.scope),
        sub: Some(c.sub),
        token_type: Some(TokenType::Bearer.as_str()),
        username: user.map(|u| u.username),
    })
}

/// A refresh token of ours: active while unexpired, not rotated away, its grant not revoked,
/// and its user and client still enabled.
async fn refresh(core: &Core, r: RefreshRow, now: i64) -> OAuthResult<IntrospectionResponse> {
    let user = match &r.user_id {
        Some(id) => match core.store.get_user(id).await? {
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
        || !core.clients.enabled(&r.client_id).await?
    {
        return Ok(IntrospectionResponse::inactive());
    }
    Ok(IntrospectionResponse {
        active: true,
        aud: None,
        client_id: Some(r.client_id),
        exp: Some(r.expires_at),
        iat: Some(r.created_at),
        iss: Some(core.tokens.issuer().to_owned()),
        jti: None,
        scope: (!r.data.scope.is_empty()).then(|| r.data.scope.to_wire()),
        sub: r.user_id,
        token_type: Some("refresh_token"),
        username: user.map(|u| u.username),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7662 §2.2: an inactive answer says `active: false` and nothing more.
    #[test]
    fn inactive_is_only_active_false() {
        let v = serde_json::to_string(&IntrospectionResponse::inactive()).ok();
        assert_eq!(v.as_deref(), Some(r#"{"active":false}"#));
    }
}
