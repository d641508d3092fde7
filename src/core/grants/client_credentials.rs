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
