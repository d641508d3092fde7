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
    use serde_json::json;

    use super::*;
    use crate::core::tokens::{AccessSubject, TokenResponse};
    use crate::oauth::error::ErrorCode;
    use crate::testing::{Fixture, NOW, jwt_claims, params};

    /// RFC 7662 §2.2: an inactive answer says `active: false` and nothing more.
    #[test]
    fn inactive_is_only_active_false() {
        let v = serde_json::to_string(&IntrospectionResponse::inactive()).ok();
        assert_eq!(v.as_deref(), Some(r#"{"active":false}"#));
    }

    async fn tokens(f: &Fixture, scope: &str) -> TokenResponse {
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        f.web_tokens(&session, scope, NOW).await
    }

    fn refresh_token(t: &TokenResponse) -> &str {
        t.refresh_token
            .as_deref()
            .unwrap_or_else(|| panic!("no refresh token in {t:?}"))
    }

    /// What `client` is told about `token` at `at`.
    async fn ask(f: &Fixture, client: &Client, token: &str, at: i64) -> IntrospectionResponse {
        introspect(&f.core, client, &params(&format!("token={token}")), at)
            .await
            .unwrap_or_else(|e| panic!("introspect: {e:?}"))
    }

    /// A resource server registered with `introspection = true`.
    async fn resource_server(f: &Fixture) -> Client {
        let mut rs = (*f.client("service").await).clone();
        rs.settings.introspection = true;
        rs
    }

    /// The exact JSON of an inactive answer (RFC 7662 section 2.2).
    fn assert_inactive(r: &IntrospectionResponse) {
        assert_eq!(
            serde_json::to_value(r).ok(),
            Some(json!({"active": false})),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn an_active_access_token_says_what_it_is() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let t = tokens(&f, "openid+email").await;
        let web = f.client("web").await;
        let r = ask(&f, &web, &t.access_token, NOW + 1).await;
        let jti = jwt_claims(&t.access_token)["jti"].clone();
        assert_eq!(
            serde_json::to_value(&r).ok(),
            Some(json!({
                "active": true,
                "aud": f.core.tokens.issuer(),
                "client_id": "web",
                "exp": NOW + t.expires_in,
                "iat": NOW,
                "iss": f.core.tokens.issuer(),
                "jti": jti,
                "scope": "email openid",
                "sub": alice.id,
                "token_type": "Bearer",
                "username": "alice",
            }))
        );
        // The resource server is told the same.
        assert_eq!(
            ask(&f, &resource_server(&f).await, &t.access_token, NOW + 1).await,
            r
        );
    }

    #[tokio::test]
    async fn an_expired_access_token_is_only_inactive() {
        let f = Fixture::new().await;
        let t = tokens(&f, "openid").await;
        let web = f.client("web").await;
        assert!(
            ask(&f, &web, &t.access_token, NOW + t.expires_in - 1)
                .await
                .active
        );
        let r = ask(&f, &web, &t.access_token, NOW + t.expires_in).await;
        assert_eq!(
            serde_json::to_string(&r).ok().as_deref(),
            Some(r#"{"active":false}"#)
        );
    }

    #[tokio::test]
    async fn a_revoked_access_token_is_inactive() {
        let f = Fixture::new().await;
        let t = tokens(&f, "openid").await;
        let web = f.client("web").await;
        crate::core::revocation::revoke(
            &f.core,
            &web,
            &params(&format!("token={}", t.access_token)),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_inactive(&ask(&f, &web, &t.access_token, NOW + 2).await);
        assert_inactive(&ask(&f, &resource_server(&f).await, &t.access_token, NOW + 2).await);
    }

    #[tokio::test]
    async fn tokens_from_before_the_users_revocation_are_inactive() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let web = f.client("web").await;
        // A grant the store never recorded, so only the user's revocation can tell.
        let mint = |auth_time: i64| {
            let session = crate::model::Session {
                id_hash: "h".into(),
                sid: "s".into(),
                user_id: alice.id.clone(),
                auth_time,
                amr: vec!["pwd".into()],
                created_at: auth_time,
                last_seen_at: auth_time,
                expires_at: auth_time + 3600,
                mfa_at: None,
                ip: None,
                user_agent: None,
            };
            let grant = Fixture::grant(&session, "openid");
            f.core
                .tokens
                .access_token(
                    &AccessSubject {
                        client: &web,
                        user_id: Some(&alice.id),
                        grant_id: "never-recorded",
                        grant: &grant,
                    },
                    NOW + 30,
                )
                .unwrap_or_else(|e| panic!("{e:?}"))
                .0
        };
        let before = mint(NOW);
        let after = mint(NOW + 20);
        assert!(ask(&f, &web, &before, NOW + 31).await.active);
        f.core
            .store
            .revoke_user(&alice.id, NOW + 10)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_inactive(&ask(&f, &web, &before, NOW + 31).await);
        // Authenticated after the revocation: still good.
        assert!(ask(&f, &web, &after, NOW + 31).await.active);
        // A disabled user's tokens are not.
        f.core
            .store
            .set_user_disabled(&alice.id, true, NOW + 32)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_inactive(&ask(&f, &web, &after, NOW + 33).await);
    }

    #[tokio::test]
    async fn a_disabled_clients_tokens_are_inactive() {
        let f = Fixture::new().await;
        let t = tokens(&f, "openid+offline_access").await;
        let rs = resource_server(&f).await;
        assert!(ask(&f, &rs, &t.access_token, NOW + 1).await.active);
        assert!(ask(&f, &rs, refresh_token(&t), NOW + 1).await.active);
        f.set_client_enabled("web", false).await;
        assert_inactive(&ask(&f, &rs, &t.access_token, NOW + 1).await);
        assert_inactive(&ask(&f, &rs, refresh_token(&t), NOW + 1).await);
        f.set_client_enabled("web", true).await;
        assert!(ask(&f, &rs, &t.access_token, NOW + 1).await.active);
    }

    #[tokio::test]
    async fn a_refresh_token_is_active_until_rotated_away() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let t = tokens(&f, "openid+offline_access").await;
        let web = f.client("web").await;
        let r = ask(&f, &web, refresh_token(&t), NOW + 1).await;
        assert!(r.active);
        assert_eq!(r.token_type, Some("refresh_token"));
        assert_eq!(r.client_id.as_deref(), Some("web"));
        assert_eq!(r.scope.as_deref(), Some("offline_access openid"));
        assert_eq!(r.sub.as_deref(), Some(alice.id.as_str()));
        assert_eq!(r.username.as_deref(), Some("alice"));
        assert_eq!(r.iss.as_deref(), Some(f.core.tokens.issuer()));
        assert_eq!(r.iat, Some(NOW));
        let exp = r.exp.unwrap_or_default();
        assert!(
            exp > NOW && exp <= NOW + f.core.tokens.lifetimes().refresh_token_ttl,
            "{r:?}"
        );
        assert_eq!((r.jti, r.aud), (None, None));
        // Rotation retires it; the new one is active.
        let next = f
            .token(
                "web",
                &format!(
                    "grant_type=refresh_token&refresh_token={}",
                    refresh_token(&t)
                ),
                NOW + 10,
            )
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_inactive(&ask(&f, &web, refresh_token(&t), NOW + 11).await);
        assert!(ask(&f, &web, refresh_token(&next), NOW + 11).await.active);
        // Past its expiry it is inactive.
        assert_inactive(
            &ask(
                &f,
                &web,
                refresh_token(&next),
                NOW + 10 + f.core.tokens.lifetimes().refresh_token_ttl,
            )
            .await,
        );
    }

    #[tokio::test]
    async fn a_client_learns_only_about_its_own_tokens() {
        let f = Fixture::new().await;
        let t = tokens(&f, "openid+offline_access").await;
        // `legacy` authenticates but is no resource server: web's tokens look unknown.
        let legacy = f.client("legacy").await;
        assert_inactive(&ask(&f, &legacy, &t.access_token, NOW + 1).await);
        assert_inactive(&ask(&f, &legacy, refresh_token(&t), NOW + 1).await);
        assert_inactive(&ask(&f, &legacy, "no-such-token", NOW + 1).await);
        // A public client cannot introspect at all (section 2.1).
        let spa = f.client("spa").await;
        let e = introspect(
            &f.core,
            &spa,
            &params(&format!("token={}", t.access_token)),
            NOW + 1,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("a public client introspected"));
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
        // Unless registered as a resource server.
        let mut spa_rs = (*spa).clone();
        spa_rs.settings.introspection = true;
        assert!(ask(&f, &spa_rs, &t.access_token, NOW + 1).await.active);
    }
}
