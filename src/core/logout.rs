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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tokens::TokenResponse;
    use crate::oauth::error::ErrorCode;
    use crate::testing::{Fixture, NOW};

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const AFTER_LOGOUT: &str = "http://localhost:3000/signed-out";

    fn id_token(t: &TokenResponse) -> &str {
        t.id_token
            .as_deref()
            .unwrap_or_else(|| panic!("no id_token in {t:?}"))
    }

    async fn checked(f: &Fixture, p: LogoutParams<'_>) -> LogoutRequest {
        check(&f.core, p)
            .await
            .unwrap_or_else(|e| panic!("{p:?}: {e:?}"))
    }

    async fn refused(f: &Fixture, p: LogoutParams<'_>) -> OAuthError {
        match check(&f.core, p).await {
            Ok(r) => panic!("{p:?}: accepted as {r:?}"),
            Err(e) => e,
        }
    }

    async fn refresh(f: &Fixture, t: &TokenResponse, at: i64) -> OAuthResult<TokenResponse> {
        let r = t
            .refresh_token
            .as_deref()
            .unwrap_or_else(|| panic!("no refresh token in {t:?}"));
        f.token(
            "web",
            &format!("grant_type=refresh_token&refresh_token={r}"),
            at,
        )
        .await
    }

    #[tokio::test]
    async fn a_hint_for_this_session_ends_it_and_revokes_its_online_grants() {
        // Refresh tokens without offline_access too, to see which grants logout revokes.
        let f = Fixture::with(|c| c.tokens.issue_refresh_without_offline_access = true).await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let online = f.web_tokens(&session, "openid", NOW).await;
        let offline = f.web_tokens(&session, "openid+offline_access", NOW).await;
        let req = checked(
            &f,
            LogoutParams {
                id_token_hint: Some(id_token(&online)),
                ..LogoutParams::default()
            },
        )
        .await;
        assert_eq!(req.client.as_ref().map(|c| c.id.as_str()), Some("web"));
        assert_eq!(decide(&req, Some((&session, &alice))), Action::End);
        end(
            &f.core,
            Some(&session.id_hash),
            &req,
            Some(&alice),
            IP,
            NOW + 10,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        let live = f
            .core
            .store
            .get_session(&session.id_hash, NOW + 11, 3600)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(live.is_none(), "the session survived logout");
        let e = refresh(&f, &online, NOW + 12)
            .await
            .err()
            .unwrap_or_else(|| panic!("the session's grant survived logout"));
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        // Back-Channel Logout 1.0 section 2.7: offline_access outlives the session.
        refresh(&f, &offline, NOW + 12)
            .await
            .unwrap_or_else(|e| panic!("offline grant: {e:?}"));
        // Ending it again finds nothing live.
        let sid = end_session(&f.core, &session.id_hash, NOW + 13)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(sid, None);
    }

    #[tokio::test]
    async fn anything_but_this_sessions_user_is_confirmed_first() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let bob = f.user("bob").await;
        let session = f.session(&alice, NOW).await;
        let t = f.web_tokens(&session, "openid", NOW).await;
        let req = checked(
            &f,
            LogoutParams {
                id_token_hint: Some(id_token(&t)),
                ..LogoutParams::default()
            },
        )
        .await;
        // Another user's browser: a planted link must not sign them out.
        let bobs = f.session(&bob, NOW).await;
        assert_eq!(decide(&req, Some((&bobs, &bob))), Action::Confirm);
        // Alice, but another of her sessions than the one the hint names (its sid).
        let other = f.session(&alice, NOW).await;
        assert_eq!(decide(&req, Some((&other, &alice))), Action::Confirm);
        assert_eq!(decide(&req, Some((&session, &alice))), Action::End);
        assert_eq!(decide(&req, None), Action::NotSignedIn);
        // No hint at all.
        let bare = checked(
            &f,
            LogoutParams {
                client_id: Some("web"),
                ..LogoutParams::default()
            },
        )
        .await;
        assert_eq!(decide(&bare, Some((&session, &alice))), Action::Confirm);
    }

    #[tokio::test]
    async fn only_a_registered_post_logout_redirect_uri_is_followed() {
        let f = Fixture::new().await;
        let mut web = (*f.client("web").await).clone();
        web.settings.post_logout_redirect_uris = vec![AFTER_LOGOUT.into()];
        f.core
            .store
            .upsert_client(&web, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        f.core
            .clients
            .from_store("web")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let with = |client_id, uri| LogoutParams {
            client_id,
            post_logout_redirect_uri: Some(uri),
            state: Some("st 1"),
            ..LogoutParams::default()
        };
        let ok = checked(&f, with(Some("web"), AFTER_LOGOUT)).await;
        assert!(!ok.refused_redirect);
        assert_eq!(
            ok.return_uri().as_deref(),
            Some("http://localhost:3000/signed-out?state=st+1")
        );
        // §3: exact comparison; not registered, or no client to check it against.
        for p in [
            with(Some("web"), "https://evil.example/"),
            with(Some("web"), "http://localhost:3000/signed-out/"),
            with(Some("spa"), AFTER_LOGOUT),
            with(None, AFTER_LOGOUT),
        ] {
            let r = checked(&f, p).await;
            assert!(r.refused_redirect, "{p:?}");
            assert_eq!(r.return_uri(), None, "{p:?}");
        }
        let plain = checked(&f, LogoutParams::default()).await;
        assert!(!plain.refused_redirect && plain.return_uri().is_none());
    }

    #[tokio::test]
    async fn bad_hints_and_clients_are_invalid_requests() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let t = f.web_tokens(&session, "openid", NOW).await;
        // An access token is not an ID token; nor is garbage.
        for hint in [t.access_token.as_str(), "not-a-jwt"] {
            let e = refused(
                &f,
                LogoutParams {
                    id_token_hint: Some(hint),
                    ..LogoutParams::default()
                },
            )
            .await;
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(e.description.contains("id_token_hint"), "{e:?}");
        }
        // client_id must be the hint's audience.
        let e = refused(
            &f,
            LogoutParams {
                id_token_hint: Some(id_token(&t)),
                client_id: Some("spa"),
                ..LogoutParams::default()
            },
        )
        .await;
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.contains("audience"), "{e:?}");
        let e = refused(
            &f,
            LogoutParams {
                client_id: Some("nobody"),
                ..LogoutParams::default()
            },
        )
        .await;
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        // A disabled client is as unknown, even behind a valid hint.
        f.set_client_enabled("web", false).await;
        let e = refused(
            &f,
            LogoutParams {
                id_token_hint: Some(id_token(&t)),
                ..LogoutParams::default()
            },
        )
        .await;
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
