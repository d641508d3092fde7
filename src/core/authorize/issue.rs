//! Issuing at the authorization endpoint: the code (RFC 6749 §4.1.2), the implicit tokens
//! (OIDC Core §3.2.2.5) or both (the hybrid flow, OIDC Core §3.3.2.5).

use crate::core::Core;
use crate::core::tokens::FrontChannel;
use crate::crypto::secret::{hash_token, new_token};
use crate::model::{Client, CodeData, GrantData, Session, User};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::redirect::Delivery;

use super::request::AuthorizationRequest;

/// Issue the code (RFC 6749 §4.1.2), the implicit tokens (OIDC Core §3.2.2.5), or both
/// (the hybrid flow, OIDC Core §3.3.2.5).
///
/// The code, and any access token issued here, belong to one grant id: a reused code
/// revokes that grant, and with it the front-channel access token too (RFC 6749 §4.1.2).
/// As in the code flow, nothing else is recorded: the grant family is written when the
/// code is redeemed for a refresh token.
pub async fn issue(
    core: &Core,
    req: &AuthorizationRequest,
    client: &Client,
    session: &Session,
    user: &User,
    now: i64,
) -> OAuthResult<Delivery> {
    let ret = req.return_to(core.tokens.issuer());
    // Back-Channel Logout 1.0 section 2.3: the client is remembered before it gets anything
    // from this session, so a session that ends at any moment after still reaches it.
    if client.settings.backchannel_logout_uri.is_some()
        && !core
            .store
            .remember_logged_in_client(&session.sid, &client.id, now)
            .await?
    {
        return Ok(ret.error(&OAuthError::new(
            ErrorCode::LoginRequired,
            "the session ended while this request was being handled; sign in again",
        )));
    }
    let rt = req.response_type;
    let grant = GrantData::from_session(
        session,
        &req.scope,
        req.claims.clone(),
        req.acr_values.clone(),
    );
    let grant_id = uuid::Uuid::new_v4().to_string();
    // Tokens are signed before the code is stored, so a signing failure leaves no code
    // behind that nobody received.
    let code = rt.has_code().then(new_token);
    let tokens = core.tokens.front_channel(
        &FrontChannel {
            client,
            user,
            grant_id: &grant_id,
            grant: &grant,
            nonce: req.nonce.as_deref(),
            code: code.as_deref(),
            access_token: rt.has_access_token(),
            id_token: rt.has_id_token(),
        },
        now,
    )?;
    let mut out = Vec::new();
    if let Some(code) = code {
        let data = CodeData {
            redirect_uri: req.redirect_uri.clone(),
            redirect_uri_sent: req.redirect_uri_sent,
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge_method,
            // OIDC Core §3.3.3.6: the token endpoint's ID token carries the same nonce.
            nonce: req.nonce.clone(),
            grant: grant.clone(),
        };
        core.store
            .insert_code(
                &hash_token(&code),
                &grant_id,
                &client.id,
                &user.id,
                &data,
                now,
                now + core.tokens.lifetimes().code_ttl,
            )
            .await?;
        out.push(("code".to_owned(), code));
    }
    out.extend(tokens);
    Ok(ret.success(out))
}
