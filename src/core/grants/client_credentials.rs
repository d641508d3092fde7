//! `grant_type=client_credentials` (RFC 6749 §4.4): a client's own token. No refresh token
//! (§4.4.3), no id_token, and no store write: the token is a self-contained JWT whose `jti`
//! can still be revoked.

use crate::core::Core;
use crate::core::tokens::TokenResponse;
use crate::model::{Client, GrantData};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<TokenResponse> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client(
            "client_credentials requires a confidential client (RFC 6749 §4.4)",
        ));
    }
    let scope = client.requested_scope(params.get("scope"))?;
    if scope.contains("openid") || scope.contains("offline_access") {
        return Err(OAuthError::invalid_scope(
            "openid and offline_access need a user; client_credentials tokens have none",
        ));
    }
    // RFC 8707 §2: `resource`, or the widely used `audience`, must be one the client may use.
    let audiences = match params.get("resource").or_else(|| params.get("audience")) {
        Some(a) if client.settings.audiences.iter().any(|x| x == a) => vec![a.to_owned()],
        Some(a) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "audience `{a}` is not registered for client `{}`",
                    client.id
                ),
            ));
        }
        None => client.settings.audiences.clone(),
    };
    let grant = GrantData {
        scope,
        audiences,
        ..GrantData::default()
    };
    core.tokens.client_grant(client, &grant, now)
}

#[cfg(test)]
mod tests {
    use crate::core::grants::{TokenContext, handle};
    use crate::oauth::error::ErrorCode;
    use crate::oauth::types::GrantType;
    use crate::testing::{Fixture, NOW, jwt_claims, params};

    #[tokio::test]
    async fn issues_the_default_scope_for_the_registered_audience() {
        let f = Fixture::new().await;
        let client = f.client("service").await;
        let (grant, resp) = handle(
            &f.core,
            &client,
            &params("grant_type=client_credentials"),
            &TokenContext::default(),
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(grant, GrantType::ClientCredentials);
        assert_eq!(resp.scope.as_deref(), Some("api.read"));
        assert!(resp.refresh_token.is_none() && resp.id_token.is_none());
        let claims = jwt_claims(&resp.access_token);
        assert_eq!(claims["sub"], "service");
        assert_eq!(claims["aud"], "https://api.example.com");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + resp.expires_in);
    }

    #[tokio::test]
    async fn refuses_user_scopes_and_unregistered_audiences() {
        let f = Fixture::new().await;
        let client = f.client("service").await;
        for (form, code) in [
            (
                "grant_type=client_credentials&scope=openid",
                ErrorCode::InvalidScope,
            ),
            (
                "grant_type=client_credentials&scope=api.admin",
                ErrorCode::InvalidScope,
            ),
            (
                "grant_type=client_credentials&resource=https%3A%2F%2Fevil.example",
                ErrorCode::InvalidTarget,
            ),
        ] {
            let e = handle(
                &f.core,
                &client,
                &params(form),
                &TokenContext::default(),
                NOW,
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("{form} was accepted"));
            assert_eq!(e.code, code, "{form}");
        }
    }

    #[tokio::test]
    async fn public_clients_have_no_client_credentials() {
        let f = Fixture::new().await;
        let spa = f.client("spa").await;
        let e = handle(
            &f.core,
            &spa,
            &params("grant_type=client_credentials"),
            &TokenContext::default(),
            NOW,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
    }
}
