//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6).

use crate::core::Core;
use crate::core::tokens::{TokenResponse, UserIssue};
use crate::crypto::secret::hash_token;
use crate::model::{Client, CodeRedemption, CodeRow, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::pkce;
use crate::store::Store;

use super::{active_user, record_fresh_grant};

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let code = params.require("code")?;
    let hash = hash_token(code);
    let row = match core.store.peek_code(&hash, now).await? {
        CodeRedemption::Valid(row) => row,
        other => return refuse(core, client, other, now).await,
    };
    // A code that fails a check is used up all the same, as RFC 6749 §4.1.2 has it single-use:
    // whoever holds a stolen code gets one try at its PKCE verifier, not many.
    let user = match check(core, client, params, &row).await {
        Ok(user) => user,
        Err(e) => {
            core.store.spend_code(&hash, now).await?;
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
    // Sign first, then use up the code and record the grant in one short transaction: the
    // code is spent and the tokens recorded, or neither, and no transaction (on SQLite, no
    // write lock) is held across the RSA signatures.
    let minted = core.tokens.fresh_user_grant(&issue, now)?;
    let mut tx = core.store.begin().await?;
    if !Store::claim_code(&mut tx, &hash, now).await? {
        drop(tx);
        // A concurrent request redeemed it since we read it (or it has just expired); what
        // we minted was never stored.
        let now_state = core.store.peek_code(&hash, now).await?;
        return refuse(core, client, now_state, now).await;
    }
    record_fresh_grant(core, &mut tx, &issue, minted.refresh_hash.as_deref(), now).await?;
    tx.commit().await?;
    Ok(minted.response)
}

/// The answer for a code that cannot be redeemed.
async fn refuse(
    core: &Core,
    client: &Client,
    redemption: CodeRedemption,
    now: i64,
) -> OAuthResult<TokenResponse> {
    match redemption {
        CodeRedemption::Reused {
            issued: false,
            grant_id: _,
        } => Err(OAuthError::invalid_grant(
            "this authorization code was already used (or a failed attempt used it up); start the sign-in again",
        )),
        CodeRedemption::Reused {
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
        CodeRedemption::Expired => Err(OAuthError::invalid_grant(
            "the authorization code has expired; start the authorization again",
        )),
        CodeRedemption::Unknown | CodeRedemption::Valid(_) => Err(OAuthError::invalid_grant(
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
            let method = row
                .data
                .code_challenge_method
                .as_deref()
                .and_then(pkce::Method::parse)
                .unwrap_or(pkce::Method::Plain);
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
