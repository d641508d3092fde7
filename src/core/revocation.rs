//! Token revocation (RFC 7009), and finding one of our tokens by its value, which
//! introspection (RFC 7662) shares.

use crate::core::Core;
use crate::core::tokens::AccessClaims;
use crate::crypto::jwt::{self, TYP_ACCESS_TOKEN};
use crate::crypto::secret::hash_token;
use crate::model::{Client, RefreshRow};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;

/// `token_type_hint` (RFC 7009 §2.1, RFC 7662 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
    /// A type we do not issue: ignored while searching, but revocation of a token it cannot
    /// find says so (RFC 7009 §2.2.1 `unsupported_token_type`).
    Other(String),
}

impl TokenTypeHint {
    fn parse(s: &str) -> Self {
        match s {
            "access_token" => TokenTypeHint::AccessToken,
            "refresh_token" => TokenTypeHint::RefreshToken,
            other => TokenTypeHint::Other(other.to_owned()),
        }
    }
}

/// The body of a revocation or introspection request, read once.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub token: String,
    pub hint: Option<TokenTypeHint>,
}

impl TryFrom<&Params> for TokenRequest {
    type Error = OAuthError;

    fn try_from(p: &Params) -> OAuthResult<Self> {
        Ok(TokenRequest {
            token: p.require("token")?.to_owned(),
            hint: p.get("token_type_hint").map(TokenTypeHint::parse),
        })
    }
}

/// A token we issued, as found by revocation or introspection.
pub(crate) enum Found {
    Access(AccessClaims),
    Refresh(RefreshRow),
    None,
}

/// RFC 7009 §2.1 / RFC 7662 §2.1: the hint is only a hint; every type is searched, the
/// hinted one first.
pub(crate) async fn find(core: &Core, req: &TokenRequest) -> OAuthResult<Found> {
    let as_access = || {
        // Expiry is judged by the caller: revoking an expired token is still a 200.
        jwt::verify::<AccessClaims>(
            core.tokens.keys(),
            core.tokens.issuer(),
            &req.token,
            TYP_ACCESS_TOKEN,
            None,
        )
        .ok()
    };
    let refresh_first = req.hint == Some(TokenTypeHint::RefreshToken);
    if !refresh_first && let Some(c) = as_access() {
        return Ok(Found::Access(c));
    }
    if let Some(r) = core.store.get_refresh(&hash_token(&req.token)).await? {
        return Ok(Found::Refresh(r));
    }
    if refresh_first && let Some(c) = as_access() {
        return Ok(Found::Access(c));
    }
    Ok(Found::None)
}

/// RFC 7009 §2.1: revoke the request's `token` if it is one of `client`'s.
///
/// Unknown tokens, and tokens of other clients, are answered like revoked ones (§2.2: the
/// response is 200 either way), except that a hint of a type we never issue is refused for a
/// token we cannot find (§2.2.1).
pub async fn revoke(core: &Core, client: &Client, params: &Params, now: i64) -> OAuthResult<()> {
    let req = TokenRequest::try_from(params)?;
    match find(core, &req).await? {
        // §2.1: a client may only revoke its own tokens; others are ignored.
        Found::Access(c) if c.client_id == client.id => {
            core.store.revoke_jti(&c.jti, c.exp).await?;
        }
        // §2.1: revoking a refresh token revokes its whole grant family, access tokens
        // included.
        Found::Refresh(r) if r.client_id == client.id => {
            core.store
                .revoke_grant(&r.grant_id, &r.client_id, now, r.family_expires_at)
                .await?;
        }
        Found::None => {
            if let Some(TokenTypeHint::Other(other)) = &req.hint {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedTokenType,
                    format!(
                        "token_type_hint `{other}` is not a token type this server issues or revokes (use access_token or refresh_token)"
                    ),
                ));
            }
        }
        Found::Access(_) | Found::Refresh(_) => {}
    }
    Ok(())
}
