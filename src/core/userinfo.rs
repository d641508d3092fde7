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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tokens::AccessSubject;
    use crate::model::{GrantData, User};
    use crate::testing::{Fixture, NOW, params};

    /// An access token for alice from `web`, issued at NOW for a grant of `scope`.
    async fn token_with(f: &Fixture, scope: &str, tweak: impl FnOnce(&mut GrantData)) -> String {
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW - 100).await;
        let mut grant = Fixture::grant(&session, scope);
        tweak(&mut grant);
        let web = f.client("web").await;
        f.core
            .tokens
            .access_token(
                &AccessSubject {
                    client: &web,
                    user_id: Some(&alice.id),
                    grant_id: "g-1",
                    grant: &grant,
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"))
            .0
    }

    async fn refused(f: &Fixture, token: &str, at: i64) -> OAuthError {
        match claims(&f.core, token, at).await {
            Ok(c) => panic!("released {c:?}"),
            Err(e) => e,
        }
    }

    async fn alice(f: &Fixture) -> User {
        f.user("alice").await
    }

    #[tokio::test]
    async fn openid_and_email_release_sub_and_the_email_claims() {
        let f = Fixture::new().await;
        let alice = alice(&f).await;
        // Through the whole flow, as a client would call it.
        let session = f.session(&alice, NOW).await;
        let t = f.web_tokens(&session, "openid+email", NOW).await;
        let c = claims(&f.core, &t.access_token, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            Value::Object(c),
            json!({"sub": alice.id, "email": "alice@example.com", "email_verified": true})
        );
        // openid alone: only sub.
        let token = token_with(&f, "openid", |_| {}).await;
        let c = claims(&f.core, &token, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(Value::Object(c), json!({"sub": alice.id}));
    }

    #[tokio::test]
    async fn a_token_without_openid_or_user_is_insufficient_scope() {
        let f = Fixture::new().await;
        let token = token_with(&f, "profile email", |_| {}).await;
        let e = refused(&f, &token, NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InsufficientScope);
        // A client's own token has no user to describe.
        let cc = f
            .token("service", "grant_type=client_credentials", NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let e = refused(&f, &cc.access_token, NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InsufficientScope);
    }

    #[tokio::test]
    async fn an_expired_or_foreign_token_is_invalid_token() {
        let f = Fixture::new().await;
        let token = token_with(&f, "openid", |_| {}).await;
        let ttl = f.core.tokens.lifetimes().access_token_ttl;
        let e = refused(&f, &token, NOW + ttl + 1).await;
        assert_eq!(e.code, ErrorCode::InvalidToken);
        assert!(e.description.contains("expired"), "{e:?}");
        for bad in ["not-a-jwt", "a.b.c"] {
            let e = refused(&f, bad, NOW).await;
            assert_eq!(e.code, ErrorCode::InvalidToken, "{bad}");
        }
        // An ID token is not an access token (RFC 9068 `typ`).
        let alice = alice(&f).await;
        let session = f.session(&alice, NOW).await;
        let t = f.web_tokens(&session, "openid", NOW).await;
        let id_token = t.id_token.unwrap_or_else(|| panic!("no id_token"));
        let e = refused(&f, &id_token, NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InvalidToken);
    }

    #[tokio::test]
    async fn a_revoked_token_user_or_client_is_invalid_token() {
        let f = Fixture::new().await;
        let alice = alice(&f).await;
        let session = f.session(&alice, NOW).await;
        let t = f.web_tokens(&session, "openid", NOW).await;
        let web = f.client("web").await;
        crate::core::revocation::revoke(
            &f.core,
            &web,
            &params(&format!("token={}", t.access_token)),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            refused(&f, &t.access_token, NOW + 2).await.code,
            ErrorCode::InvalidToken
        );

        // The user signed out everywhere after authenticating.
        let token = token_with(&f, "openid", |_| {}).await;
        claims(&f.core, &token, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        f.core
            .store
            .revoke_user(&alice.id, NOW + 2)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let e = refused(&f, &token, NOW + 3).await;
        assert_eq!(e.code, ErrorCode::InvalidToken);

        // The client was disabled.
        let f = Fixture::new().await;
        let token = token_with(&f, "openid", |_| {}).await;
        f.set_client_enabled("web", false).await;
        let e = refused(&f, &token, NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InvalidToken);

        // The user was disabled.
        let f = Fixture::new().await;
        let token = token_with(&f, "openid", |_| {}).await;
        let alice = f.user("alice").await;
        f.core
            .store
            .set_user_disabled(&alice.id, true, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let e = refused(&f, &token, NOW + 2).await;
        assert_eq!(e.code, ErrorCode::InvalidToken);
    }

    #[tokio::test]
    async fn requested_claims_are_released_only_under_a_granted_scope() {
        let f = Fixture::new().await;
        let alice = alice(&f).await;
        // OIDC Core 5.5: `name` asked for by the claims parameter, but profile not granted.
        let token = token_with(&f, "openid email", |g| {
            g.claims = Some(json!({"userinfo": {"name": {"essential": true}, "email": null}}));
        })
        .await;
        let c = claims(&f.core, &token, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            Value::Object(c),
            json!({"sub": alice.id, "email": "alice@example.com", "email_verified": true})
        );
        // With profile granted, `name` is released (and the unrequested email scope's
        // claims are not).
        let token = token_with(&f, "openid profile", |g| {
            g.claims = Some(json!({"userinfo": {"name": null}}));
        })
        .await;
        let c = claims(&f.core, &token, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.get("name"), Some(&json!("Alice Example")));
        assert!(!c.contains_key("email"), "{c:?}");
    }
}
