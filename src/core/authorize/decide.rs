//! The decision for a validated request: sign-in page, consent page or issue now (OIDC Core
//! §3.1.2.3 and §3.1.2.4, with `prompt` and `max_age` from §3.1.2.1).

use crate::core::Core;
use crate::core::mfa;
use crate::crypto::secret::{hash_token, new_token};
use crate::model::{Client, Session, User};
use crate::oauth::acr::Requested;
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::prompt::Prompt;
use crate::oauth::redirect::Delivery;
use crate::oauth::scope::ordered;
use crate::oauth::types::ScopeSet;

use super::issue::issue_checked;
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
    /// The signed-in user must add their second factor to this session first (a step-up:
    /// the request asks for more than the session reached).
    SecondFactor {
        interaction: String,
    },
    /// The request needs two factors and the user has no second factor: they set one up
    /// first, or the request fails with `unmet_authentication_requirements`.
    Enrol {
        interaction: String,
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
    // The level of authentication (OIDC Core sections 2, 3.1.2.1 and 5.5.1.1): what the
    // server, the client and the request need, against what this session reached.
    let requested = Requested::of(req.acr_values.as_deref(), req.claims.as_ref());
    let short = match mfa::shortfall(core, client, &requested, &session, &user) {
        Ok(short) => short,
        Err(mfa::Unmet) => {
            if let Some(id) = interaction {
                core.store.take_interaction(&hash_token(&id), now).await?;
            }
            return Ok(Next::Deliver(ret.error(&mfa::Unmet.error())));
        }
    };
    if let Some(short) = short {
        // OIDC Core section 3.1.2.6: a page would be needed, and prompt=none forbids it.
        if req.has_prompt(Prompt::None) {
            return Ok(Next::Deliver(ret.error(&OAuthError::new(
                ErrorCode::InteractionRequired,
                "the request needs a second factor this session has not given, and prompt=none forbids asking",
            ))));
        }
        let id = interaction_id(core, req, interaction, now).await?;
        // Setting up a factor is done right after the password, never by a session signed
        // in long ago: a stolen session cookie must not add the thief's app to the account.
        if short == mfa::Shortfall::Enrol
            && !fresh_login
            && now - session.auth_time > core.config.sessions.interaction_ttl
        {
            return Ok(Next::Login { interaction: id });
        }
        return Ok(match short {
            mfa::Shortfall::SecondFactor => Next::SecondFactor { interaction: id },
            mfa::Shortfall::Enrol => Next::Enrol { interaction: id },
        });
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
                scopes: ordered(shown, &req.scope_order),
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
        issue_checked(core, req, client, &requested, &session, &user, now).await?,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tokens::IdTokenInput;
    use crate::model::GrantData;
    use crate::testing::{Fixture, NOW, WEB_REDIRECT, delivered};

    const REQUEST: &str = "client_id=web&response_type=code&scope=openid+profile&state=st";

    fn describe(n: &Next) -> String {
        match n {
            Next::Deliver(d) => format!("deliver {d:?}"),
            Next::Login { .. } => "login".into(),
            Next::Consent { scopes, .. } => format!("consent {}", scopes.join(" ")),
            Next::SecondFactor { .. } => "second factor".into(),
            Next::Enrol { .. } => "enrol".into(),
            Next::AlreadyUsed => "already used".into(),
        }
    }

    async fn next(
        f: &Fixture,
        form: &str,
        session: Option<(Session, User)>,
        interaction: Option<String>,
        fresh_login: bool,
        now: i64,
    ) -> Next {
        let (req, client) = f.request(form).await;
        proceed(
            &f.core,
            &req,
            &client,
            session,
            interaction,
            fresh_login,
            now,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    async fn signed_in(f: &Fixture, name: &str, at: i64) -> (Session, User) {
        let user = f.user(name).await;
        (f.session(&user, at).await, user)
    }

    async fn consent(f: &Fixture, user: &User, scope: &str) {
        let scope = ScopeSet::parse(scope).unwrap_or_default();
        f.core
            .store
            .add_consent(&user.id, "web", &scope, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn login_interaction(n: &Next) -> String {
        match n {
            Next::Login { interaction } => interaction.clone(),
            other => panic!("expected the login page, got {}", describe(other)),
        }
    }

    fn error(n: &Next) -> String {
        match n {
            Next::Deliver(d) => {
                assert_eq!(delivered(d, "state").as_deref(), Some("st"), "{d:?}");
                delivered(d, "error").unwrap_or_else(|| panic!("no error in {d:?}"))
            }
            other => panic!("expected a delivery, got {}", describe(other)),
        }
    }

    fn code(n: &Next) -> String {
        match n {
            Next::Deliver(d) => delivered(d, "code").unwrap_or_else(|| panic!("no code in {d:?}")),
            other => panic!("expected a code, got {}", describe(other)),
        }
    }

    /// An id_token naming someone other than alice.
    async fn hint_for_someone_else(f: &Fixture) -> String {
        let web = f.client("web").await;
        let mut other = f.user("alice").await;
        other.id = "someone-else".into();
        f.core
            .tokens
            .id_token(
                &IdTokenInput {
                    client: &web,
                    user: &other,
                    grant: &GrantData::default(),
                    nonce: None,
                    access_token: None,
                    code: None,
                    include_scope_claims: false,
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[tokio::test]
    async fn without_a_session_the_user_signs_in_and_the_request_is_kept() {
        let f = Fixture::new().await;
        let n = next(&f, REQUEST, None, None, false, NOW).await;
        let id = login_interaction(&n);
        let stored = f
            .core
            .store
            .get_interaction(&hash_token(&id), NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the request was not kept"));
        let kept: AuthorizationRequest =
            serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept.client_id, "web");
        assert_eq!(kept.state.as_deref(), Some("st"));
        // It expires with the interaction lifetime.
        let ttl = f.core.config.sessions.interaction_ttl;
        let gone = f
            .core
            .store
            .get_interaction(&hash_token(&id), NOW + ttl)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(gone.is_none());
        // An interaction already started is reused, not duplicated.
        let again = next(&f, REQUEST, None, Some(id.clone()), false, NOW + 1).await;
        assert_eq!(login_interaction(&again), id);
    }

    #[tokio::test]
    async fn prompt_none_without_a_session_is_login_required_at_the_client() {
        let f = Fixture::new().await;
        let n = next(
            &f,
            &format!("{REQUEST}&prompt=none"),
            None,
            None,
            false,
            NOW,
        )
        .await;
        assert_eq!(error(&n), "login_required");
        let Next::Deliver(Delivery::Redirect(url)) = &n else {
            panic!("{}", describe(&n))
        };
        assert!(url.starts_with(WEB_REDIRECT), "{url}");
    }

    #[tokio::test]
    async fn consent_is_asked_for_new_scopes_only() {
        let f = Fixture::new().await;
        let (session, alice) = signed_in(&f, "alice", NOW).await;
        let s = || Some((session.clone(), alice.clone()));
        let n = next(&f, REQUEST, s(), None, false, NOW).await;
        match &n {
            Next::Consent { scopes, .. } => assert_eq!(scopes.join(" "), "openid profile"),
            other => panic!("{}", describe(other)),
        }
        consent(&f, &alice, "openid").await;
        let n = next(&f, REQUEST, s(), None, false, NOW).await;
        match &n {
            Next::Consent { scopes, .. } => assert_eq!(scopes.join(" "), "profile"),
            other => panic!("{}", describe(other)),
        }
        // prompt=none cannot ask.
        let n = next(&f, &format!("{REQUEST}&prompt=none"), s(), None, false, NOW).await;
        assert_eq!(error(&n), "consent_required");
        consent(&f, &alice, "profile").await;
        let n = next(&f, REQUEST, s(), None, false, NOW).await;
        let code = code(&n);
        // What was delivered is a real code.
        f.token(
            "web",
            &format!("grant_type=authorization_code&code={code}"),
            NOW + 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        // prompt=consent asks again, for the whole request.
        let n = next(
            &f,
            &format!("{REQUEST}&prompt=consent"),
            s(),
            None,
            false,
            NOW,
        )
        .await;
        match &n {
            Next::Consent { scopes, .. } => assert_eq!(scopes.join(" "), "openid profile"),
            other => panic!("{}", describe(other)),
        }
    }

    #[tokio::test]
    async fn max_age_and_prompt_login_force_a_new_sign_in() {
        let f = Fixture::new().await;
        let (session, alice) = signed_in(&f, "alice", NOW - 120).await;
        consent(&f, &alice, "openid profile").await;
        let s = || Some((session.clone(), alice.clone()));
        let n = next(&f, &format!("{REQUEST}&max_age=60"), s(), None, false, NOW).await;
        login_interaction(&n);
        let n = next(&f, &format!("{REQUEST}&max_age=120"), s(), None, false, NOW).await;
        code(&n);
        let n = next(
            &f,
            &format!("{REQUEST}&prompt=login"),
            s(),
            None,
            false,
            NOW,
        )
        .await;
        let id = login_interaction(&n);
        // Right after that sign-in, the same request goes through.
        let n = next(
            &f,
            &format!("{REQUEST}&prompt=login"),
            s(),
            Some(id),
            true,
            NOW,
        )
        .await;
        code(&n);
        let n = next(
            &f,
            &format!("{REQUEST}&max_age=60&prompt=none"),
            s(),
            None,
            false,
            NOW,
        )
        .await;
        assert_eq!(error(&n), "login_required");
    }

    #[tokio::test]
    async fn id_token_hint_for_another_user_is_never_answered_with_this_one() {
        let f = Fixture::new().await;
        let (session, alice) = signed_in(&f, "alice", NOW).await;
        consent(&f, &alice, "openid profile").await;
        let s = || Some((session.clone(), alice.clone()));
        let form = format!(
            "{REQUEST}&id_token_hint={}",
            hint_for_someone_else(&f).await
        );
        // The browser's session is not the hinted user's: sign in.
        let n = next(&f, &form, s(), None, false, NOW).await;
        let id = login_interaction(&n);
        let n = next(&f, &format!("{form}&prompt=none"), s(), None, false, NOW).await;
        assert_eq!(error(&n), "login_required");
        // Alice signs in anyway: no tokens in the other user's place, and the interaction is
        // used up.
        let n = next(&f, &form, s(), Some(id.clone()), true, NOW).await;
        assert_eq!(error(&n), "login_required");
        let left = f
            .core
            .store
            .get_interaction(&hash_token(&id), NOW)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(left.is_none());
    }

    #[tokio::test]
    async fn a_disabled_users_session_does_not_count() {
        let f = Fixture::new().await;
        let bob = signed_in(&f, "bob", NOW).await;
        let n = next(&f, REQUEST, Some(bob.clone()), None, false, NOW).await;
        login_interaction(&n);
        let n = next(&f, REQUEST, Some(bob), None, true, NOW).await;
        login_interaction(&n);
    }

    #[tokio::test]
    async fn an_interaction_issues_once() {
        let f = Fixture::new().await;
        let (session, alice) = signed_in(&f, "alice", NOW).await;
        consent(&f, &alice, "openid profile").await;
        let id = login_interaction(&next(&f, REQUEST, None, None, false, NOW).await);
        let s = || Some((session.clone(), alice.clone()));
        let n = next(&f, REQUEST, s(), Some(id.clone()), true, NOW + 5).await;
        code(&n);
        // The same login form posted twice: the second finds the interaction taken.
        let n = next(&f, REQUEST, s(), Some(id), true, NOW + 5).await;
        assert!(matches!(n, Next::AlreadyUsed), "{}", describe(&n));
    }
}
