//! /authorize (GET and POST, OIDC Core §3.1.2.1), and the login and consent forms that
//! continue a stored authorization request. The request is checked and decided in
//! `core::authorize`, the consent answered in `core::consent`; this reads, checks CSRF
//! values and renders.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::core::authorize::{self, AuthorizationRequest, Next, Validated};
use crate::core::consent::{self, Answered, Pending};
use crate::core::mfa::{self, FactorFailure};
use crate::core::passkey;
use crate::crypto::secret::hash_token;
use crate::model::{Client, PendingPurpose, Session, User};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::{self, Params};
use crate::state::AppState;

use super::account::{EnrolForm, codes_page, enrol_page};
use super::client_ip::{Browser, ClientIp};
use super::pages::{
    Continue, FactorForm, FactorStep, Login, LoginProblem, OrPage, PageError, SignIn, factor_page,
    factor_step, login_page, parse_form, refused_code, sign_in,
};
use super::passkey::{self as http_passkey, PasskeySignIn};
use super::respond::{deliver, deliver_error, deliver_result, page};
use super::session::{self, Bind};
use super::views::{ConsentPage, Next as ViewNext, Theme, scope_lines};

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    run(state, jar, raw.unwrap_or_default().as_bytes()).await
}

pub async fn post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    run(state, jar, &body).await
}

/// Until the client and its redirect URI are verified, errors are shown to the person and
/// never redirected (RFC 6749 §4.1.2.1); after that they go back to the client.
async fn run(state: AppState, jar: CookieJar, raw: &[u8]) -> Result<Response, PageError> {
    let (params, repeated) =
        Params::parse_authorization(raw, state.config.limits.params()).or_page(&state)?;
    // RFC 6749 section 4.1.2.1: only a missing, invalid or repeated client_id or
    // redirect_uri is shown to the person; any other repeated parameter goes back to the
    // client as invalid_request, once the redirect URI is known to be the client's.
    if let Some(name) = repeated
        .as_deref()
        .filter(|n| ["client_id", "redirect_uri"].contains(n))
    {
        return Err(PageError::new(&state, params::repeated(name)));
    }
    let (req, client) = match authorize::validate(&state.core, &params)
        .await
        .map_err(|authorize::PageError(e)| PageError::new(&state, e))?
    {
        Validated::Ok(r, _) if repeated.is_some() => {
            let e = params::repeated(repeated.as_deref().unwrap_or_default());
            return Ok(deliver_error(&state, &r.return_to(state.issuer()), &e));
        }
        Validated::Ok(r, c) => (r, c),
        Validated::RedirectError(d) => return Ok(deliver(&state, d)),
    };
    let session = match session::current(&state, &jar).await {
        Ok(s) => s,
        Err(e) => return Ok(deliver_error(&state, &req.return_to(state.issuer()), &e)),
    };
    let step = Step {
        req: &req,
        client: &client,
        interaction: None,
    };
    continue_request(&state, jar, step, session, false, None).await
}

/// The request being continued, and its interaction once one is stored.
struct Step<'a> {
    req: &'a AuthorizationRequest,
    client: &'a Client,
    interaction: Option<String>,
}

impl<'a> From<&'a Pending> for Step<'a> {
    fn from(p: &'a Pending) -> Self {
        Step {
            req: &p.request,
            client: &p.client,
            interaction: Some(p.id.clone()),
        }
    }
}

/// Act on `proceed`'s decision: deliver, or show the login or consent page.
/// `fresh_login` is true right after the person signed in for this request.
async fn continue_request(
    state: &AppState,
    jar: CookieJar,
    step: Step<'_>,
    session: Option<(Session, User)>,
    fresh_login: bool,
    login_error: Option<LoginProblem>,
) -> Result<Response, PageError> {
    let Step {
        req,
        client,
        interaction,
    } = step;
    let username = session.as_ref().map(|(_, u)| u.username.clone());
    let signed_in = session.clone();
    let next = authorize::proceed(
        &state.core,
        req,
        client,
        session,
        interaction,
        fresh_login,
        state.now(),
    )
    .await;
    Ok(match next {
        Ok(Next::Deliver(d)) => (jar, deliver(state, d)).into_response(),
        Ok(Next::Login { interaction }) => {
            let (jar, csrf) = session::csrf(state, jar, Bind::Interaction(&interaction));
            let login = Login {
                client_name: client.name(),
                action: "/login",
                passkey_action: passkey::available(&state.core).map(|_| PASSKEY_ACTION),
                hidden: &[("interaction", &interaction)],
                csrf: &csrf,
                username: req.login_hint.clone().unwrap_or_default(),
            };
            (jar, login_page(state, login, login_error)).into_response()
        }
        Ok(Next::Consent {
            interaction,
            scopes,
        }) => {
            let (jar, csrf) = session::csrf(state, jar, Bind::SessionAndInteraction(&interaction));
            let body = page(
                StatusCode::OK,
                &ConsentPage {
                    theme: Theme::from(state),
                    client_name: client.name(),
                    username: username.as_deref().unwrap_or_default(),
                    csrf: &csrf,
                    interaction: &interaction,
                    scopes: scope_lines(&state.config.scopes, scopes.iter().map(String::as_str)),
                },
            );
            (jar, body).into_response()
        }
        Ok(Next::SecondFactor { interaction }) => {
            let Some((s, user)) = signed_in else {
                return Err(PageError::expired(state));
            };
            let token = mfa::begin_step_up(
                &state.core,
                &user,
                &s,
                PendingPurpose::Authorize,
                Some(&interaction),
                state.now(),
            )
            .await
            .or_page(state)?;
            let hidden = [("interaction", interaction.as_str())];
            let form = FactorForm {
                action: FACTOR_ACTION,
                pending: &token,
                hidden: &hidden,
            };
            factor_page(state, jar, &user, form, None).await?
        }
        Ok(Next::Enrol { interaction }) => {
            let Some((_, user)) = signed_in else {
                return Err(PageError::expired(state));
            };
            return enrol_in_flow(state, jar, &user, &interaction, None).await;
        }
        // The same form was posted twice at once (a double click) and the other post
        // answered it. A session this post just started would be a second live session
        // that no code names: end it again.
        Ok(Next::AlreadyUsed) if fresh_login => {
            let jar = session::end(state, jar).await.or_page(state)?;
            (jar, PageError::expired(state)).into_response()
        }
        Ok(Next::AlreadyUsed) => (jar, PageError::expired(state)).into_response(),
        Err(e) => (
            jar,
            deliver_error(state, &req.return_to(state.issuer()), &e),
        )
            .into_response(),
    })
}

/// The pending request a login or consent form names, after its CSRF value checks out
/// (before anything else is looked at); an unknown or expired one is the expired page.
async fn pending_form(
    state: &AppState,
    jar: &CookieJar,
    body: &[u8],
    bind: fn(&str) -> Bind<'_>,
) -> Result<(Params, Pending), PageError> {
    let form = parse_form(state, body).map_err(|_| PageError::expired(state))?;
    let interaction = form.get("interaction").unwrap_or_default();
    if !session::csrf_ok(state, jar, bind(interaction), form.get("csrf")) {
        return Err(PageError::csrf_failed(state));
    }
    let Some(id) = form.get("interaction") else {
        return Err(PageError::expired(state));
    };
    match consent::pending(&state.core, id, state.now())
        .await
        .or_page(state)?
    {
        Some(p) => Ok((form, p)),
        None => Err(PageError::expired(state)),
    }
}

/// POST /login: the login form of an authorization request.
pub async fn login(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, pending) = pending_form(&state, &jar, &body, |i| Bind::Interaction(i)).await?;
    let then = Continue {
        purpose: PendingPurpose::Authorize,
        interaction: Some(&pending.id),
        client_id: Some(&pending.client.id),
    };
    match sign_in(&state, jar, &form, then, &browser)
        .await
        .or_page(&state)?
    {
        SignIn::Done(jar, s, user) => {
            continue_request(&state, jar, (&pending).into(), Some((s, user)), true, None).await
        }
        SignIn::SecondFactor(jar, token, user) => {
            let hidden = [("interaction", pending.id.as_str())];
            let form = FactorForm {
                action: FACTOR_ACTION,
                pending: &token,
                hidden: &hidden,
            };
            factor_page(&state, jar, &user, form, None).await
        }
        SignIn::Failed(jar, failure) => {
            continue_request(&state, jar, (&pending).into(), None, false, Some(failure)).await
        }
    }
}

const FACTOR_ACTION: &str = "/login/factor";
const PASSKEY_ACTION: &str = "/login/passkey";
const PASSKEY_FINISH: &str = "/login/passkey/finish";

/// POST /login/passkey: "Sign in with a passkey" on the login page of an authorization
/// request: the page that asks the browser for one.
pub async fn login_passkey(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (_, pending) = pending_form(&state, &jar, &body, |i| Bind::Interaction(i)).await?;
    let then = Continue {
        purpose: PendingPurpose::Authorize,
        interaction: Some(&pending.id),
        client_id: Some(&pending.client.id),
    };
    let hidden = [("interaction", pending.id.as_str())];
    let bind = Bind::Interaction(&pending.id);
    http_passkey::sign_in_page(&state, jar, then, PASSKEY_FINISH, &hidden, bind).await
}

/// POST /login/passkey/finish: the browser's answer; on success the request goes on as
/// after a password and second factor.
pub async fn login_passkey_finish(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, pending) = pending_form(&state, &jar, &body, |i| Bind::Interaction(i)).await?;
    let then = Continue {
        purpose: PendingPurpose::Authorize,
        interaction: Some(&pending.id),
        client_id: Some(&pending.client.id),
    };
    match http_passkey::finish_sign_in(&state, jar, &form, then, &browser).await? {
        PasskeySignIn::Done(jar, s, user) => {
            continue_request(&state, jar, (&pending).into(), Some((s, user)), true, None).await
        }
        PasskeySignIn::Failed(jar, problem) => {
            continue_request(&state, jar, (&pending).into(), None, false, Some(problem)).await
        }
    }
}

/// POST /login/factor: the second factor of a sign-in for an authorization request.
pub async fn login_factor(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = parse_form(&state, &body).map_err(|_| PageError::expired(&state))?;
    let id = form.get("interaction").unwrap_or_default().to_owned();
    let step = factor_step(
        &state,
        jar,
        &form,
        Continue {
            purpose: PendingPurpose::Authorize,
            interaction: Some(&id),
            // The request is read only after the form's CSRF value checked out, so its
            // client is not known yet: the code step is audited without it.
            client_id: None,
        },
        FACTOR_ACTION,
        &[("interaction", &id)],
        &browser,
    )
    .await?;
    let (jar, s, user) = match step {
        FactorStep::Done(jar, s, user) | FactorStep::SteppedUp(jar, s, user) => (jar, s, user),
        FactorStep::Again(page) => return Ok(page),
    };
    match consent::pending(&state.core, &id, state.now())
        .await
        .or_page(&state)?
    {
        Some(pending) => {
            continue_request(&state, jar, (&pending).into(), Some((s, user)), true, None).await
        }
        // The request lapsed while the code was typed: the session stands, the request
        // must be started again from the app.
        None => Ok((jar, PageError::expired(&state)).into_response()),
    }
}

/// POST /consent: the person allowed or denied the request on the consent page.
pub async fn consent(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, pending) =
        pending_form(&state, &jar, &body, |i| Bind::SessionAndInteraction(i)).await?;
    let Some((s, user)) = session::current(&state, &jar).await.or_page(&state)? else {
        return continue_request(&state, jar, (&pending).into(), None, false, None).await;
    };
    let allow = form.get("decision") == Some("allow");
    match consent::answer(&state.core, &pending, &s, &user, allow, ip, state.now())
        .await
        .or_page(&state)?
    {
        Answered::Expired => Err(PageError::expired(&state)),
        Answered::Return(result) => {
            let ret = pending.request.return_to(state.issuer());
            Ok(deliver_result(&state, &ret, result))
        }
    }
}

const ENROL_ACTION: &str = "/login/enrol";

/// The request needs two factors and the signed-in user has no second factor: the setup
/// page of an authenticator app, within the sign-in, which may be declined.
async fn enrol_in_flow(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    interaction: &str,
    problem: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let Some(e) = mfa::start_totp(&state.core, user, state.now())
        .await
        .or_page(state)?
    else {
        // An app was set up meanwhile (another tab): starting the request again asks for it.
        return Err(PageError::expired(state));
    };
    enrol_form_page(state, jar, user, &e, interaction, problem)
}

fn enrol_form_page(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    e: &mfa::Enrolment,
    interaction: &str,
    problem: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let form = EnrolForm {
        action: ENROL_ACTION,
        hidden: &[("interaction", interaction)],
        cancel: true,
        bind: Bind::SessionAndInteraction(interaction),
    };
    enrol_page(state, jar, user, e, &form, problem)
}

/// POST /login/enrol: the authenticator app set up during a sign-in that requires it (its
/// first code), or declined.
pub async fn login_enrol(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, pending) =
        pending_form(&state, &jar, &body, |i| Bind::SessionAndInteraction(i)).await?;
    let Some((s, user)) = session::current(&state, &jar).await.or_page(&state)? else {
        return continue_request(&state, jar, (&pending).into(), None, false, None).await;
    };
    let now = state.now();
    // As in the decision: setup belongs to a sign-in that just checked the password.
    if now - s.auth_time > state.config.sessions.interaction_ttl {
        return Err(PageError::expired(&state));
    }
    let ret = pending.request.return_to(state.issuer());
    if form.get("decision") == Some("cancel") {
        // Declined: the request fails, once (OpenID Connect Core Unmet Authentication
        // Requirements 1.0 section 2).
        if state
            .core
            .store
            .take_interaction(&hash_token(&pending.id), now)
            .await
            .or_page(&state)?
            .is_none()
        {
            return Err(PageError::expired(&state));
        }
        let e = OAuthError::new(
            ErrorCode::UnmetAuthenticationRequirements,
            "the request needs a second factor and the user did not set one up",
        );
        return Ok((jar, deliver_error(&state, &ret, &e)).into_response());
    }
    let factor = form.get("factor").unwrap_or_default();
    let code = form.get("code").unwrap_or_default();
    match mfa::confirm_totp(
        &state.core,
        &user,
        factor,
        code,
        browser.at(Some(&pending.client.id)),
        now,
    )
    .await
    .or_page(&state)?
    {
        Ok(()) => {
            let amr = mfa::with_second_factor(&s.amr);
            let Some((jar, _)) = session::elevate(&state, jar, &s, amr)
                .await
                .or_page(&state)?
            else {
                return Err(PageError::expired(&state));
            };
            let codes = mfa::new_recovery_codes(&state.core, &user, now)
                .await
                .or_page(&state)?;
            let (jar, csrf) = session::csrf(&state, jar, Bind::SessionAndInteraction(&pending.id));
            let next = ViewNext::Continue {
                csrf: &csrf,
                interaction: &pending.id,
            };
            Ok((jar, codes_page(&state, &codes, next)).into_response())
        }
        Err(FactorFailure::Gone) => enrol_in_flow(&state, jar, &user, &pending.id, None).await,
        Err(failed) => {
            let Some(e) = mfa::enrolment(&state.core, &user, factor, now)
                .await
                .or_page(&state)?
            else {
                return enrol_in_flow(&state, jar, &user, &pending.id, None).await;
            };
            let problem = Some(refused_code(failed, StatusCode::BAD_REQUEST, now));
            enrol_form_page(&state, jar, &user, &e, &pending.id, problem)
        }
    }
}

/// POST /login/continue: go on with the request once the recovery codes were shown.
pub async fn login_continue(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (_, pending) =
        pending_form(&state, &jar, &body, |i| Bind::SessionAndInteraction(i)).await?;
    let session = session::current(&state, &jar).await.or_page(&state)?;
    continue_request(&state, jar, (&pending).into(), session, false, None).await
}
