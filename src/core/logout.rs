//! OpenID Connect RP-Initiated Logout 1.0: checking a logout request (§2, §3), deciding
//! whether it may end the session without asking (§6), and ending it.
//!
//! A logout link is easy to plant on any page, so the session ends straight away only when
//! the request proves it comes from an app the user signed in to: an `id_token_hint` we
//! signed, for the user of this browser's session. Anything else gets a confirmation page
//! first. The pages are `http::logout`.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;

use crate::core::Core;
use crate::core::audit::{AuditKind, audit};
use crate::crypto::jwt::{self, TYP_ID_TOKEN};
use crate::model::{Client, Session, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;

/// The claims of an id_token_hint that logout relies on.
#[derive(Debug, Deserialize)]
pub struct HintClaims {
    sub: String,
    aud: Audience,
    sid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn first(&self) -> Option<&str> {
        match self {
            Audience::One(a) => Some(a),
            Audience::Many(v) => v.first().map(String::as_str),
        }
    }
}

/// The parameters of §2, as sent (GET query or POST form), or as carried by the
/// confirmation form.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogoutParams<'a> {
    pub id_token_hint: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

impl<'a> From<&'a Params> for LogoutParams<'a> {
    fn from(p: &'a Params) -> Self {
        LogoutParams {
            id_token_hint: p.get("id_token_hint"),
            client_id: p.get("client_id"),
            post_logout_redirect_uri: p.get("post_logout_redirect_uri"),
            state: p.get("state"),
        }
    }
}

/// A checked logout request: who asked, and where (if anywhere) to send the browser after.
#[derive(Debug)]
pub struct LogoutRequest {
    pub client: Option<Arc<Client>>,
    hint: Option<HintClaims>,
    /// Registered for `client`, exactly (§3); None means no redirect.
    pub redirect: Option<String>,
    /// Set when the app asked for a redirect we must refuse, to say why on the page.
    pub refused_redirect: bool,
    pub state: Option<String>,
}

impl LogoutRequest {
    /// §3: the registered post-logout URI with `state`, if the browser goes back to the app.
    pub fn return_uri(&self) -> Option<String> {
        let mut url = url::Url::parse(self.redirect.as_deref()?).ok()?;
        if let Some(s) = &self.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        Some(url.into())
    }
}

/// Validate the parameters (§2) before anything happens.
pub async fn check(core: &Core, p: LogoutParams<'_>) -> OAuthResult<LogoutRequest> {
    let hint = match p.id_token_hint {
        // §2: the OP need not reject a hint whose exp has passed; only its signature and
        // issuer matter here, so expiry is not checked.
        Some(t) => Some(
            jwt::verify::<HintClaims>(core.tokens.keys(), core.tokens.issuer(), t, TYP_ID_TOKEN, None)
                .map_err(|_| {
                    OAuthError::invalid_request(
                        "id_token_hint is not an ID token issued by this server (bad signature, issuer or format)",
                    )
                })?,
        ),
        None => None,
    };
    let hint_client = hint.as_ref().and_then(|h| h.aud.first());
    let client_id = match (p.client_id, hint_client) {
        (Some(given), Some(aud)) if given != aud => {
            return Err(OAuthError::invalid_request(
                "client_id does not match the audience of id_token_hint",
            ));
        }
        (Some(id), _) | (None, Some(id)) => Some(id.to_owned()),
        (None, None) => None,
    };
    let client = match client_id {
        Some(id) => Some(
            core.clients
                .get(&id)
                .await?
                .filter(|c| c.enabled)
                .ok_or_else(|| OAuthError::invalid_request(format!("unknown client_id `{id}`")))?,
        ),
        None => None,
    };
    let (redirect, refused_redirect) = match p.post_logout_redirect_uri {
        // §3: only to a URI registered for the client, compared exactly; with no client
        // named, there is nothing to check it against, so no redirect.
        Some(uri) => match &client {
            Some(c)
                if c.settings
                    .post_logout_redirect_uris
                    .iter()
                    .any(|r| r == uri) =>
            {
                (Some(uri.to_owned()), false)
            }
            _ => (None, true),
        },
        None => (None, false),
    };
    Ok(LogoutRequest {
        client,
        hint,
        redirect,
        refused_redirect,
        state: p.state.map(str::to_owned),
    })
}

/// What a checked request may do to this browser's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No session: nothing to end.
    NotSignedIn,
    /// The hint names this browser's user (and session): end it without asking (§2).
    End,
    /// Anything else is confirmed by the person first (§6: a planted link must not sign
    /// anyone out).
    Confirm,
}

pub fn decide(req: &LogoutRequest, session: Option<(&Session, &User)>) -> Action {
    match session {
        None => Action::NotSignedIn,
        Some((s, user)) if hint_matches(req.hint.as_ref(), s, user) => Action::End,
        Some(_) => Action::Confirm,
    }
}

/// The hint names this browser's user, and this very session when it carries a `sid`.
fn hint_matches(hint: Option<&HintClaims>, s: &Session, user: &User) -> bool {
    hint.is_some_and(|h| h.sub == user.id && h.sid.as_deref().is_none_or(|sid| sid == s.sid))
}

/// End the session whose cookie hashes to `id_hash`, revoking the refresh tokens issued in
/// it when `[logout] revoke_session_tokens` says so. The ended session's `sid`, if it was
/// live.
pub async fn end_session(core: &Core, id_hash: &str, now: i64) -> OAuthResult<Option<String>> {
    Ok(core
        .store
        .end_session(id_hash, now, core.config.logout.revoke_session_tokens)
        .await?)
}

/// Act on a logout: end the browser's session (if it has one) and audit it.
pub async fn end(
    core: &Core,
    session: Option<&str>,
    req: &LogoutRequest,
    user: Option<&User>,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<()> {
    let sid = match session {
        Some(id_hash) => end_session(core, id_hash, now).await?,
        None => None,
    };
    tracing::info!(ended = sid.is_some(), "session ended by logout");
    audit(
        core,
        AuditKind::Logout,
        user.map(|u| u.id.as_str()),
        req.client.as_ref().map(|c| c.id.as_str()),
        Some(ip),
        now,
    )
    .await;
    Ok(())
}
