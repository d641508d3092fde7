//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6).

use crate::core::Core;
use crate::core::tokens::{TokenResponse, UserIssue};
use crate::crypto::secret::hash_token;
use crate::model::{Client, CodeLookup, CodeRedemption, CodeRefusal, CodeRow, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::pkce;

use super::{active_user, new_family};

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let code = params.require("code")?;
    let hash = hash_token(code);
    let row = match core.store.peek_code(&hash, now).await? {
        CodeLookup::Redeemable(row) => row,
        CodeLookup::Refused(why) => return refuse(core, client, why, now).await,
    };
    // A code that fails a check is used up all the same, as RFC 6749 §4.1.2 has it single-use:
    // whoever holds a stolen code gets one try at its PKCE verifier, not many.
    let user = match check(core, client, params, &row).await {
        Ok(user) => user,
        Err(e) => {
            core.store.burn_code(&hash, now).await?;
            return Err(e);
        }
    };
    let issue = UserIssue {
        client,
        user: &user,
        grant_id: &row.grant_id,
        grant: &row.data.grant,
        nonce: row.data.nonce.as_deref(),
        family_expires_at: None,
    };
    // Sign first, then use up the code and record the grant in one short transaction (the
    // store's own): the code is spent and the tokens recorded, or neither, and no
    // transaction (on SQLite, no write lock) is held across the RSA signatures.
    let minted = core.tokens.fresh_user_grant(&issue, now)?;
    let family = new_family(core, &issue, minted.refresh_hash.as_deref(), now);
    match core.store.redeem_code(&hash, now, family.as_ref()).await? {
        CodeRedemption::Redeemed => Ok(minted.response),
        // A concurrent request redeemed it since we read it (or it has just expired); what
        // we minted was never stored. The refusal is the code's state after our attempt.
        CodeRedemption::Refused(why) => refuse(core, client, why, now).await,
    }
}

/// The answer for a code that cannot be redeemed.
async fn refuse(
    core: &Core,
    client: &Client,
    why: CodeRefusal,
    now: i64,
) -> OAuthResult<TokenResponse> {
    match why {
        CodeRefusal::AlreadyUsed {
            issued: false,
            grant_id: _,
        } => Err(OAuthError::invalid_grant(
            "this authorization code was already used (or a failed attempt used it up); start the sign-in again",
        )),
        CodeRefusal::AlreadyUsed {
            issued: true,
            grant_id,
        } => {
            // RFC 6749 §4.1.2: on a second use the server "SHOULD revoke (when possible) all
            // tokens previously issued based on that authorization code".
            core.store
                .revoke_grant(
                    &grant_id,
                    &client.id,
                    now,
                    now + core.tokens.refresh_ttl(client),
                )
                .await?;
            tracing::warn!(client_id = %client.id, "authorization code reused; grant revoked");
            Err(OAuthError::invalid_grant(
                "this authorization code was already used; as a precaution every token issued from it has been revoked (RFC 6749 §4.1.2)",
            ))
        }
        CodeRefusal::Expired => Err(OAuthError::invalid_grant(
            "the authorization code has expired; start the authorization again",
        )),
        CodeRefusal::Unknown => Err(OAuthError::invalid_grant(
            "the authorization code is not valid",
        )),
    }
}

/// Everything the redemption must match (RFC 6749 §4.1.3, RFC 7636 §4.6); the grant's user.
async fn check(core: &Core, client: &Client, params: &Params, row: &CodeRow) -> OAuthResult<User> {
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    // RFC 6749 §4.1.3: redirect_uri is REQUIRED if it was in the authorization request, and
    // must then be identical.
    match params.get("redirect_uri") {
        Some(uri) if uri != row.data.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the one used in the authorization request",
            ));
        }
        None if row.data.redirect_uri_sent => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is required because the authorization request included it (RFC 6749 §4.1.3)",
            ));
        }
        _ => {}
    }
    let verifier = params.get("code_verifier");
    match (&row.data.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            // Every code with a challenge is stored with its method (RFC 7636 §4.3's default
            // of `plain` is applied at /authorize). One without is not read as `plain`: that
            // would silently weaken the check.
            let Some(method) = row.data.code_challenge_method else {
                return Err(OAuthError::internal(
                    "stored authorization code has a code_challenge without its method",
                ));
            };
            if !pkce::verify(v, challenge, method) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge (RFC 7636 §4.6)",
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required: the authorization request carried a code_challenge (RFC 7636 §4.5)",
            ));
        }
        (None, Some(_)) => {
            // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a
            // downgrade attempt.
            return Err(OAuthError::invalid_grant(
                "code_verifier was sent, but the authorization request had no code_challenge (PKCE downgrade, RFC 9700 §4.8.2)",
            ));
        }
        (None, None) => {}
    }
    let g = &row.data.grant;
    active_user(core, &row.user_id, g.auth_time, g.sid.as_deref()).await
}

#[cfg(test)]
mod tests {
    use crate::oauth::error::ErrorCode;
    use crate::testing::{
        CHALLENGE, Fixture, NOW, SPA_REDIRECT, VERIFIER, WEB_REDIRECT, jwt_claims,
    };

    fn web_request() -> String {
        format!(
            "client_id=web&response_type=code&redirect_uri={WEB_REDIRECT}\
             &scope=openid+profile+email+offline_access&nonce=n-0S6"
        )
    }

    fn spa_request() -> String {
        format!(
            "client_id=spa&response_type=code&redirect_uri={SPA_REDIRECT}&scope=openid+offline_access\
             &code_challenge={CHALLENGE}&code_challenge_method=S256"
        )
    }

    fn web_redeem(code: &str) -> String {
        format!("grant_type=authorization_code&code={code}&redirect_uri={WEB_REDIRECT}")
    }

    fn spa_redeem(code: &str, verifier: &str) -> String {
        format!(
            "grant_type=authorization_code&code={code}&redirect_uri={SPA_REDIRECT}&code_verifier={verifier}"
        )
    }

    #[tokio::test]
    async fn a_confidential_client_redeems_its_code() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW - 30).await;
        let code = f.code(&session, &web_request(), NOW).await;
        let resp = f
            .token("web", &web_redeem(&code), NOW + 5)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            resp.scope.as_deref(),
            Some("email offline_access openid profile")
        );
        assert_eq!(resp.expires_in, f.core.tokens.lifetimes().access_token_ttl);
        assert!(
            resp.refresh_token.is_some(),
            "offline_access gives a refresh token"
        );
        let at = jwt_claims(&resp.access_token);
        assert_eq!(at["sub"], alice.id.as_str());
        assert_eq!(at["client_id"], "web");
        assert_eq!(at["iat"], NOW + 5);
        assert_eq!(at["exp"], NOW + 5 + resp.expires_in);
        assert_eq!(at["auth_time"], NOW - 30);
        assert_eq!(at["sid"], session.sid.as_str());
        let id = jwt_claims(
            resp.id_token
                .as_deref()
                .unwrap_or_else(|| panic!("no id_token")),
        );
        assert_eq!(id["aud"], "web");
        assert_eq!(id["sub"], alice.id.as_str());
        // OIDC Core §3.1.3.6: the nonce of the authorization request.
        assert_eq!(id["nonce"], "n-0S6");
        assert_eq!(id["auth_time"], NOW - 30);
        assert_eq!(id["exp"], NOW + 5 + f.core.tokens.lifetimes().id_token_ttl);
        assert!(id["at_hash"].is_string());
        // The grant family was recorded: its refresh token works.
        let refresh = resp.refresh_token.unwrap_or_default();
        f.token(
            "web",
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            NOW + 10,
        )
        .await
        .unwrap_or_else(|e| panic!("refresh: {e:?}"));
    }

    #[tokio::test]
    async fn a_public_client_redeems_with_its_pkce_verifier() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &spa_request(), NOW).await;
        let resp = f
            .token("spa", &spa_redeem(&code, VERIFIER), NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resp.scope.as_deref(), Some("offline_access openid"));
        assert!(resp.refresh_token.is_some());
        let id = jwt_claims(
            resp.id_token
                .as_deref()
                .unwrap_or_else(|| panic!("no id_token")),
        );
        assert_eq!(id["aud"], "spa");
        assert_eq!(id["amr"], serde_json::json!(["pwd"]));
        assert!(id.get("nonce").is_none(), "no nonce was sent");
    }

    #[tokio::test]
    async fn a_second_redemption_is_refused_and_revokes_the_grant() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        let first = f
            .token("web", &web_redeem(&code), NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let e = f.token_error("web", &web_redeem(&code), NOW + 2).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("revoked"), "{e:?}");
        // RFC 6749 §4.1.2: what the first redemption issued no longer works.
        let refresh = first.refresh_token.unwrap_or_default();
        let e = f
            .token_error(
                "web",
                &format!("grant_type=refresh_token&refresh_token={refresh}"),
                NOW + 3,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn an_expired_code_is_refused() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        let ttl = f.core.tokens.lifetimes().code_ttl;
        let e = f
            .token_error("web", &web_redeem(&code), NOW + ttl + 1)
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("expired"), "{e:?}");
    }

    #[tokio::test]
    async fn a_different_or_missing_redirect_uri_is_refused_and_spends_the_code() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        let e = f
            .token_error(
                "web",
                &format!(
                    "grant_type=authorization_code&code={code}&redirect_uri=http://localhost:3000/other"
                ),
                NOW + 1,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("redirect_uri"), "{e:?}");
        let e = f.token_error("web", &web_redeem(&code), NOW + 2).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("already used"), "{e:?}");

        // RFC 6749 §4.1.3: sent in the request, so required in the redemption.
        let code = f.code(&session, &web_request(), NOW).await;
        let e = f
            .token_error(
                "web",
                &format!("grant_type=authorization_code&code={code}"),
                NOW + 1,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("redirect_uri is required"), "{e:?}");
    }

    #[tokio::test]
    async fn a_wrong_pkce_verifier_is_refused_and_spends_the_code() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &spa_request(), NOW).await;
        let wrong = "x".repeat(43);
        let e = f
            .token_error("spa", &spa_redeem(&code, &wrong), NOW + 1)
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("code_verifier"), "{e:?}");
        // One try only: the right verifier comes too late.
        let e = f
            .token_error("spa", &spa_redeem(&code, VERIFIER), NOW + 2)
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("already used"), "{e:?}");
        assert!(
            !e.description.contains("revoked"),
            "nothing was issued: {e:?}"
        );

        // No verifier at all for a code with a challenge.
        let code = f.code(&session, &spa_request(), NOW).await;
        let e = f
            .token_error(
                "spa",
                &format!("grant_type=authorization_code&code={code}&redirect_uri={SPA_REDIRECT}"),
                NOW + 1,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn a_verifier_for_a_code_without_challenge_is_a_downgrade() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        let e = f
            .token_error(
                "web",
                &format!("{}&code_verifier={VERIFIER}", web_redeem(&code)),
                NOW + 1,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("downgrade"), "{e:?}");
    }

    #[tokio::test]
    async fn a_code_issued_to_another_client_is_refused() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        let e = f.token_error("spa", &web_redeem(&code), NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("another client"), "{e:?}");
    }

    #[tokio::test]
    async fn an_unknown_code_is_refused() {
        let f = Fixture::new().await;
        let e = f.token_error("web", &web_redeem("no-such-code"), NOW).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn no_tokens_once_the_user_is_revoked_or_disabled() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        f.core
            .store
            .revoke_user(&alice.id, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let e = f.token_error("web", &web_redeem(&code), NOW + 2).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);

        let bob = f.user("bob").await;
        let session = f.session(&bob, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        let e = f.token_error("web", &web_redeem(&code), NOW + 1).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("disabled"), "{e:?}");
    }

    #[tokio::test]
    async fn no_tokens_once_the_authorizing_session_has_ended() {
        // Back-Channel Logout 1.0 section 2.7: the client may already have been told.
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let code = f.code(&session, &web_request(), NOW).await;
        f.core
            .store
            .end_session(&session.id_hash, NOW + 1, false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let e = f.token_error("web", &web_redeem(&code), NOW + 2).await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("signed out"), "{e:?}");
    }
}
