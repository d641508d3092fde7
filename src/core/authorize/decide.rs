//! The decision for a validated request: sign-in page, consent page or issue now (OIDC Core
//! §3.1.2.3 and §3.1.2.4, with `prompt` and `max_age` from §3.1.2.1).

use crate::core::Core;
use crate::crypto::secret::{hash_token, new_token};
use crate::model::{Client, Session, User};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::prompt::Prompt;
use crate::oauth::redirect::Delivery;
use crate::oauth::types::ScopeSet;

use super::issue::issue;
use super::request::{AuthorizationRequest, MAX_STORED_REQUEST_BYTES};

/// What happens next for a validated request.
pub enum Next {
    Deliver(Delivery),
    Login {
        interaction: String,
    },
    Consent {
        interaction: String,
        /// What the consent page asks for, in the order the request listed it: the scopes
        /// not yet allowed, or all of them with `prompt=consent`.
        scopes: Vec<String>,
    },
    /// The interaction was finished by another request in the meantime (a login form posted
    /// twice at once): that request delivered the answer.
    AlreadyUsed,
}

/// Decide between issuing, the login page and the consent page.
/// `fresh_login` is true right after the user logged in for this very request.
pub async fn proceed(
    core: &Core,
    req: &AuthorizationRequest,
    client: &Client,
    session: Option<(Session, User)>,
    interaction: Option<String>,
    fresh_login: bool,
    now: i64,
) -> OAuthResult<Next> {
    let ret = req.return_to(core.tokens.issuer());
    let session = session.filter(|(s, u)| {
        !u.disabled
            && (fresh_login
                // select_account: there is one account per browser session, so choosing
                // another means signing in again (OIDC Core §3.1.2.1).
                || (!req.has_prompt(Prompt::Login)
                    && !req.has_prompt(Prompt::SelectAccount)
                    && req.max_age.is_none_or(|m| now - s.auth_time <= m)
                    && req.hint_sub.as_ref().is_none_or(|h| *h == u.id)))
    });
    let Some((session, user)) = session else {
        if req.has_prompt(Prompt::None) {
            return Ok(Next::Deliver(ret.error(&OAuthError::new(
                ErrorCode::LoginRequired,
                "the user is not signed in (or must sign in again) and prompt=none forbids showing a page",
            ))));
        }
        let id = interaction_id(core, req, interaction, now).await?;
        return Ok(Next::Login { interaction: id });
    };
    // OIDC Core section 3.1.2.2: id_token_hint names the user the client expects. Someone
    // else who signs in must not silently get tokens in that user's place.
    if req.hint_sub.as_ref().is_some_and(|h| *h != user.id) {
        if let Some(id) = interaction {
            core.store.take_interaction(&hash_token(&id), now).await?;
        }
        return Ok(Next::Deliver(ret.error(&OAuthError::new(
            ErrorCode::LoginRequired,
            "the user who signed in is not the one named by id_token_hint; sign in as that user",
        ))));
    }
    if !client.settings.skip_consent {
        let granted = core.store.get_consent(&user.id, &client.id).await?;
        let new_scopes = ScopeSet::from_scopes(req.scope.difference(&granted).map(str::to_owned));
        if req.has_prompt(Prompt::Consent) || !new_scopes.is_empty() {
            if req.has_prompt(Prompt::None) {
                return Ok(Next::Deliver(ret.error(&OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "the user has not yet allowed this app these scopes, and prompt=none forbids asking",
                ))));
            }
            let id = interaction_id(core, req, interaction, now).await?;
            let shown = if new_scopes.is_empty() {
                &req.scope
            } else {
                &new_scopes
            };
            return Ok(Next::Consent {
                interaction: id,
                scopes: in_request_order(req, shown),
            });
        }
    }
    // Whoever takes the interaction issues, so a code or front-channel tokens go out once
    // per request even when its login form is posted twice at once.
    if let Some(id) = interaction
        && core
            .store
            .take_interaction(&hash_token(&id), now)
            .await?
            .is_none()
    {
        return Ok(Next::AlreadyUsed);
    }
    Ok(Next::Deliver(
        issue(core, req, client, &session, &user, now).await?,
    ))
}

/// `scopes` in the order the request listed them; any the request did not list (the
/// client's defaults) follow in their sorted order.
fn in_request_order(req: &AuthorizationRequest, scopes: &ScopeSet) -> Vec<String> {
    let listed = req
        .scope_order
        .iter()
        .filter(|s| scopes.contains(s))
        .cloned();
    let rest = scopes
        .iter()
        .filter(|s| !req.scope_order.iter().any(|x| x == s))
        .map(str::to_owned);
    listed.chain(rest).collect()
}

/// The pending interaction's id: the one already started, or a newly stored one.
async fn interaction_id(
    core: &Core,
    req: &AuthorizationRequest,
    existing: Option<String>,
    now: i64,
) -> OAuthResult<String> {
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = new_token();
    let json = serde_json::to_string(req).map_err(OAuthError::internal)?;
    if json.len() > MAX_STORED_REQUEST_BYTES {
        return Err(OAuthError::invalid_request(
            "the authorization request is too large to keep while the user signs in",
        ));
    }
    core.store
        .insert_interaction(
            &hash_token(&id),
            &req.client_id,
            &json,
            now,
            core.config.sessions.interaction_ttl,
        )
        .await?;
    Ok(id)
}
