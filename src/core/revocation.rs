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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::introspection::introspect;
    use crate::core::tokens::TokenResponse;
    use crate::testing::{Fixture, NOW, params};

    /// Alice's tokens for the `web` client, refresh token included.
    async fn tokens(f: &Fixture) -> TokenResponse {
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        f.web_tokens(&session, "openid+offline_access", NOW).await
    }

    fn refresh_token(t: &TokenResponse) -> &str {
        t.refresh_token
            .as_deref()
            .unwrap_or_else(|| panic!("no refresh token in {t:?}"))
    }

    async fn revoke_as(f: &Fixture, client_id: &str, form: &str, at: i64) -> OAuthResult<()> {
        let client = f.client(client_id).await;
        revoke(&f.core, &client, &params(form), at).await
    }

    async fn refresh(f: &Fixture, t: &TokenResponse, at: i64) -> OAuthResult<TokenResponse> {
        f.token(
            "web",
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                refresh_token(t)
            ),
            at,
        )
        .await
    }

    /// Whether `web` is told its own `token` is active at `at`.
    async fn active(f: &Fixture, token: &str, at: i64) -> bool {
        let web = f.client("web").await;
        introspect(&f.core, &web, &params(&format!("token={token}")), at)
            .await
            .unwrap_or_else(|e| panic!("introspect: {e:?}"))
            .active
    }

    #[tokio::test]
    async fn revoking_a_refresh_token_revokes_its_grant() {
        let f = Fixture::new().await;
        let t = tokens(&f).await;
        assert!(active(&f, &t.access_token, NOW + 1).await);
        revoke_as(
            &f,
            "web",
            &format!("token={}&token_type_hint=refresh_token", refresh_token(&t)),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        let e = refresh(&f, &t, NOW + 2)
            .await
            .err()
            .unwrap_or_else(|| panic!("refreshed after revocation"));
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        // §2.1: the access tokens of the same grant go with it.
        assert!(!active(&f, &t.access_token, NOW + 2).await);
        assert!(!active(&f, refresh_token(&t), NOW + 2).await);
    }

    #[tokio::test]
    async fn revoking_an_access_token_makes_it_inactive_and_spares_the_grant() {
        let f = Fixture::new().await;
        let t = tokens(&f).await;
        revoke_as(
            &f,
            "web",
            &format!("token={}&token_type_hint=access_token", t.access_token),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!active(&f, &t.access_token, NOW + 2).await);
        // Only that token: the refresh token still works.
        refresh(&f, &t, NOW + 3)
            .await
            .unwrap_or_else(|e| panic!("refresh: {e:?}"));
        // A second revocation of the same token is still a success.
        revoke_as(&f, "web", &format!("token={}", t.access_token), NOW + 4)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }

    #[tokio::test]
    async fn another_clients_token_is_answered_as_success_but_not_revoked() {
        let f = Fixture::new().await;
        let t = tokens(&f).await;
        // §2.2: `legacy` is told 200 for web's tokens, and nothing happens to them.
        for token in [t.access_token.as_str(), refresh_token(&t)] {
            revoke_as(&f, "legacy", &format!("token={token}"), NOW + 1)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
        assert!(active(&f, &t.access_token, NOW + 2).await);
        refresh(&f, &t, NOW + 3)
            .await
            .unwrap_or_else(|e| panic!("refresh: {e:?}"));
    }

    #[tokio::test]
    async fn an_unknown_token_is_success() {
        let f = Fixture::new().await;
        for form in [
            "token=no-such-token",
            "token=no-such-token&token_type_hint=access_token",
            "token=no-such-token&token_type_hint=refresh_token",
            "token=a.b.c",
        ] {
            revoke_as(&f, "web", form, NOW)
                .await
                .unwrap_or_else(|e| panic!("{form}: {e:?}"));
        }
    }

    #[tokio::test]
    async fn a_wrong_hint_still_finds_the_token() {
        let f = Fixture::new().await;
        let t = tokens(&f).await;
        // §2.1: the hint is only where to look first.
        revoke_as(
            &f,
            "web",
            &format!("token={}&token_type_hint=refresh_token", t.access_token),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!active(&f, &t.access_token, NOW + 2).await);

        let t = tokens(&f).await;
        revoke_as(
            &f,
            "web",
            &format!("token={}&token_type_hint=access_token", refresh_token(&t)),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        let e = refresh(&f, &t, NOW + 2)
            .await
            .err()
            .unwrap_or_else(|| panic!("refreshed after revocation"));
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn an_unsupported_hint_is_refused_only_for_a_token_not_found() {
        let f = Fixture::new().await;
        // §2.2.1: a type we never issue, and no token of ours to show for it.
        let e = revoke_as(
            &f,
            "web",
            "token=no-such-token&token_type_hint=id_token",
            NOW,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.code, ErrorCode::UnsupportedTokenType);
        assert!(e.description.contains("id_token"), "{e:?}");
        // A token we do find is revoked whatever the hint says.
        let t = tokens(&f).await;
        revoke_as(
            &f,
            "web",
            &format!("token={}&token_type_hint=id_token", t.access_token),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!active(&f, &t.access_token, NOW + 2).await);
    }

    #[tokio::test]
    async fn an_expired_access_token_is_still_revoked_with_success() {
        let f = Fixture::new().await;
        let t = tokens(&f).await;
        revoke_as(
            &f,
            "web",
            &format!("token={}", t.access_token),
            NOW + t.expires_in + 100,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    }

    #[tokio::test]
    async fn a_request_without_token_is_invalid() {
        let f = Fixture::new().await;
        let e = revoke_as(&f, "web", "token_type_hint=access_token", NOW)
            .await
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
