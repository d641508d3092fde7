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
