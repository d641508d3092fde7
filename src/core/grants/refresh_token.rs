//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2).
//!
//! Every use rotates the token. Presenting a rotated token again normally means it leaked,
//! so the whole grant family is revoked. Real clients race, though (two tabs, a retry after
//! a timeout), so within `refresh_grace_period` a repeat returns the *same* new pair. That
//! pair is kept sealed (AES-GCM) under a key derived from the old refresh token itself: only
//! a holder of the old token can open it, and nothing readable is stored.

use crate::core::Core;
use crate::core::tokens::{TokenResponse, UserIssue};
use crate::crypto::aead::{open, seal};
use crate::crypto::secret::{hash_token, sha256};
use crate::model::{Client, GrantData, RefreshRow};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::ScopeSet;
use crate::store::grants::NewRefresh;

use super::active_user;

fn successor_key(refresh_token: &str) -> [u8; 32] {
    sha256(format!("latchkey refresh successor\0{refresh_token}").as_bytes())
}

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let token = params.require("refresh_token")?;
    let hash = hash_token(token);
    let Some(row) = core.store.get_refresh(&hash).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is not valid"));
    };
    if row.rotated_at.is_some() {
        return repeat(core, client, token, &row, now).await;
    }
    // Nothing is written until every check has passed: a refused request leaves the token
    // as it was.
    check_usable(&row, client, now)?;
    // RFC 6749 §6: a refresh may narrow the scope, never widen it.
    let scope = match params.get("scope") {
        None => row.data.scope.clone(),
        Some(raw) => {
            let s = ScopeSet::parse(raw).map_err(OAuthError::invalid_scope)?;
            if !s.is_subset(&row.data.scope) {
                return Err(OAuthError::invalid_scope(format!(
                    "a refresh cannot add scopes; the grant has `{}`",
                    row.data.scope
                )));
            }
            s
        }
    };
    let user_id = row
        .user_id
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token has no user"))?;
    let user = active_user(core, user_id, row.data.auth_time, None).await?;
    // OIDC Core §12.2: the refreshed id_token keeps auth_time and carries no nonce.
    let grant = GrantData {
        scope,
        ..row.data.clone()
    };
    let minted = core.tokens.user_grant(
        &UserIssue {
            client,
            user: &user,
            grant_id: &row.grant_id,
            grant: &grant,
            nonce: None,
            family_expires_at: Some(row.family_expires_at),
        },
        true,
        now,
    )?;
    let resp = minted.response;
    let new_hash = minted
        .refresh_hash
        .ok_or_else(|| OAuthError::internal("rotation minted no refresh token"))?;
    let sealed = seal(
        &successor_key(token),
        &serde_json::to_vec(&resp).map_err(OAuthError::internal)?,
    )?;
    let rotated = core
        .store
        .rotate_refresh(
            &hash,
            &sealed,
            &NewRefresh {
                token_hash: &new_hash,
                grant_id: &row.grant_id,
                client_id: &client.id,
                user_id: Some(&user.id),
                // RFC 6749 §6: the new refresh token keeps the original scope.
                data: &row.data,
                expires_at: (now + core.tokens.lifetimes().refresh_token_idle_ttl)
                    .min(row.family_expires_at),
                family_expires_at: row.family_expires_at,
            },
            now,
        )
        .await?;
    if rotated {
        return Ok(resp);
    }
    // Something changed since we read the token: a concurrent request rotated it (answer as
    // for a repeat: the same pair within the grace window), or it was revoked or expired.
    // The pair minted above was never stored and is dropped.
    match core.store.get_refresh(&hash).await? {
        Some(row) if row.rotated_at.is_some() => repeat(core, client, token, &row, now).await,
        Some(row) => {
            check_usable(&row, client, now)?;
            Err(OAuthError::invalid_grant("the refresh token is not valid"))
        }
        None => Err(OAuthError::invalid_grant("the refresh token is not valid")),
    }
}

/// The checks on an unrotated refresh token.
fn check_usable(row: &RefreshRow, client: &Client, now: i64) -> OAuthResult<()> {
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.grant_revoked {
        return Err(OAuthError::invalid_grant(
            "the grant behind this refresh token has been revoked",
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the refresh token has expired; the user must sign in again",
        ));
    }
    Ok(())
}

/// A token that was rotated before: a racing repeat within the grace window, or reuse.
async fn repeat(
    core: &Core,
    client: &Client,
    token: &str,
    row: &RefreshRow,
    now: i64,
) -> OAuthResult<TokenResponse> {
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let rotated_at = row.rotated_at.unwrap_or(0);
    if !row.grant_revoked
        && now - rotated_at <= core.tokens.lifetimes().refresh_grace_period
        && let Some(sealed) = &row.successor
    {
        let plain = open(&successor_key(token), sealed)?;
        return serde_json::from_slice(&plain).map_err(OAuthError::internal);
    }
    core.store
        .revoke_grant(&row.grant_id, &row.client_id, now, row.family_expires_at)
        .await?;
    tracing::warn!(client_id = %client.id, "refresh token reused; grant family revoked");
    Err(OAuthError::invalid_grant(
        "this refresh token was already used; as a precaution the whole grant has been revoked and the user must sign in again (RFC 9700 §4.14.2)",
    ))
}

#[cfg(test)]
mod tests {
    use crate::core::tokens::TokenResponse;
    use crate::oauth::error::ErrorCode;
    use crate::testing::{Fixture, NOW, WEB_REDIRECT, jwt_claims};

    const DAY: i64 = 86_400;

    /// Tokens from a code redeemed by `web` at NOW for `scope`, for alice.
    async fn signed_in(f: &Fixture, scope: &str) -> TokenResponse {
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f
            .code(
                &session,
                &format!(
                    "client_id=web&response_type=code&redirect_uri={WEB_REDIRECT}&scope={scope}"
                ),
                NOW,
            )
            .await;
        f.token(
            "web",
            &format!("grant_type=authorization_code&code={code}&redirect_uri={WEB_REDIRECT}"),
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn refresh(resp: &TokenResponse) -> String {
        let token = resp
            .refresh_token
            .as_deref()
            .unwrap_or_else(|| panic!("no refresh token in {resp:?}"));
        format!("grant_type=refresh_token&refresh_token={token}")
    }

    #[tokio::test]
    async fn rotation_returns_a_new_pair_and_a_racing_repeat_gets_the_same_one() {
        let f = Fixture::new().await;
        let first = signed_in(&f, "openid+profile+offline_access").await;
        let second = f
            .token("web", &refresh(&first), NOW + 60)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_ne!(second.access_token, first.access_token);
        assert_eq!(
            second.scope.as_deref(),
            Some("offline_access openid profile")
        );
        let at = jwt_claims(&second.access_token);
        assert_eq!(at["iat"], NOW + 60);
        // OIDC Core §12.2: the refreshed id_token keeps auth_time and has no nonce.
        let id = jwt_claims(second.id_token.as_deref().unwrap_or_default());
        assert_eq!(id["auth_time"], NOW);
        assert!(id.get("nonce").is_none());
        // Two tabs racing: within the grace period the old token answers with the same pair.
        let grace = f.core.tokens.lifetimes().refresh_grace_period;
        let again = f
            .token("web", &refresh(&first), NOW + 60 + grace)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(again, second);
        // And the new token still works.
        let third = f
            .token("web", &refresh(&second), NOW + 120)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_ne!(third.refresh_token, second.refresh_token);
    }

    #[tokio::test]
    async fn reuse_after_the_grace_period_revokes_the_family() {
        let f = Fixture::new().await;
        let first = signed_in(&f, "openid+offline_access").await;
        let second = f
            .token("web", &refresh(&first), NOW + 60)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let grace = f.core.tokens.lifetimes().refresh_grace_period;
        let e = f
            .token_error("web", &refresh(&first), NOW + 60 + grace + 1)
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("revoked"), "{e:?}");
        // RFC 9700 §4.14.2: the legitimate holder's token dies with the family.
        let e = f.token_error("web", &refresh(&second), NOW + 70).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn a_refresh_may_narrow_the_scope_but_not_widen_it() {
        let f = Fixture::new().await;
        let first = signed_in(&f, "openid+profile+offline_access").await;
        let e = f
            .token_error(
                "web",
                &format!("{}&scope=openid+email", refresh(&first)),
                NOW + 1,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidScope);
        // A refused request changes nothing: the token can still be used.
        let narrow = f
            .token("web", &format!("{}&scope=openid", refresh(&first)), NOW + 2)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(narrow.scope.as_deref(), Some("openid"));
        assert_eq!(jwt_claims(&narrow.access_token)["scope"], "openid");
        // RFC 6749 §6: the new refresh token keeps the original scope.
        let wide_again = f
            .token("web", &refresh(&narrow), NOW + 3)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            wide_again.scope.as_deref(),
            Some("offline_access openid profile")
        );
    }

    #[tokio::test]
    async fn tokens_expire_when_idle_and_with_their_family() {
        let f = Fixture::new().await;
        let lifetimes = f.core.tokens.lifetimes().clone();
        assert!(lifetimes.refresh_token_idle_ttl < lifetimes.refresh_token_ttl);
        let first = signed_in(&f, "openid+offline_access").await;
        // Unused for longer than the idle lifetime.
        let e = f
            .token_error(
                "web",
                &refresh(&first),
                NOW + lifetimes.refresh_token_idle_ttl + 1,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("expired"), "{e:?}");

        // Used in time, again and again: the family's absolute lifetime still ends it.
        let family = lifetimes.refresh_token_ttl;
        let mut tokens = signed_in(&f, "openid+offline_access").await;
        let step = lifetimes.refresh_token_idle_ttl - DAY;
        let times = [NOW + step, NOW + 2 * step, NOW + family - 1];
        let mut last = NOW;
        for at in times {
            assert!(at - last < lifetimes.refresh_token_idle_ttl);
            tokens = f
                .token("web", &refresh(&tokens), at)
                .await
                .unwrap_or_else(|e| panic!("at +{}: {e:?}", at - NOW));
            last = at;
        }
        // Issued a second before the family ends, idle-valid for days, yet expired.
        let e = f
            .token_error("web", &refresh(&tokens), NOW + family + 1)
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("expired"), "{e:?}");
    }

    #[tokio::test]
    async fn no_refresh_for_a_disabled_or_revoked_user() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let tokens = signed_in(&f, "openid+offline_access").await;
        f.core
            .store
            .revoke_user(&alice.id, NOW + 10)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let e = f.token_error("web", &refresh(&tokens), NOW + 20).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);

        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let tokens = signed_in(&f, "openid+offline_access").await;
        f.core
            .store
            .set_user_disabled(&alice.id, true, NOW + 10)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let e = f.token_error("web", &refresh(&tokens), NOW + 20).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn a_grant_authenticated_at_or_before_a_revocation_is_refused_on_use() {
        // A login still being checked when the admin acted creates its grant after the
        // sweep: the grant is live, but the user authenticated no later than the revocation.
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        f.core
            .store
            .revoke_user(&alice.id, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let tokens = f
            .token(
                "legacy",
                &format!(
                    "grant_type=password&username=alice&password={}&scope=openid+offline_access",
                    crate::testing::PASSWORD.replace(' ', "+")
                ),
                NOW,
            )
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let e = f.token_error("legacy", &refresh(&tokens), NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("signed out everywhere"), "{e:?}");
    }

    #[tokio::test]
    async fn a_refresh_token_of_another_client_or_unknown_is_refused() {
        let f = Fixture::new().await;
        let tokens = signed_in(&f, "openid+offline_access").await;
        let e = f.token_error("spa", &refresh(&tokens), NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("another client"), "{e:?}");
        let e = f
            .token_error(
                "web",
                "grant_type=refresh_token&refresh_token=nope",
                NOW + 1,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        // The refused attempt by another client did not use the token up.
        f.token("web", &refresh(&tokens), NOW + 2)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
}
