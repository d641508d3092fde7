//! /authorize (GET and POST, OIDC Core §3.1.2.1), and the login and consent forms that
//! continue a stored authorization request.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::core::audit::audit;
use crate::core::authorize::{self, AuthorizationRequest, Next, Validated};
use crate::core::login::{LoginFailure, check_password};
use crate::crypto::secret::hash_token;
use crate::model::{Client, Session, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::{self, Params};
use crate::state::AppState;

use super::client_ip::ClientIp;
use super::respond::{deliver, error_page, error_page_saying, page};
use super::session::{self, Bind};
use super::views::{ConsentPage, LoginPage, Theme, scope_lines};

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(raw): RawQuery,
) -> Response {
    run(state, jar, raw.unwrap_or_default().as_bytes()).await
}

pub async fn post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    run(state, jar, &body).await
}

async fn run(state: AppState, jar: CookieJar, raw: &[u8]) -> Response {
    let (params, repeated) = match Params::parse_authorization(raw, state.config.limits.params()) {
        Ok(p) => p,
        Err(e) => return error_page(&state, StatusCode::BAD_REQUEST, &e),
    };
    // RFC 6749 section 4.1.2.1: only a missing, invalid or repeated client_id or
    // redirect_uri is shown to the person; any other repeated parameter goes back to the
    // client as invalid_request, once the redirect URI is known to be the client's.
    if let Some(name) = repeated
        .as_deref()
        .filter(|n| ["client_id", "redirect_uri"].contains(n))
    {
        return error_page(&state, StatusCode::BAD_REQUEST, &params::repeated(name));
    }
    let (req, client) = match authorize::validate(&state.core, &params).await {
        Ok(Validated::Ok(r, _)) if repeated.is_some() => {
            let e = params::repeated(repeated.as_deref().unwrap_or_default());
            return deliver(&state, r.return_to(state.issuer()).error(&e));
        }
        Ok(Validated::Ok(r, c)) => (r, c),
        Ok(Validated::RedirectError(d)) => return deliver(&state, d),
        Err(authorize::PageError(e)) => return error_page(&state, StatusCode::BAD_REQUEST, &e),
    };
    let session = match session::current(&state, &jar).await {
        Ok(s) => s,
        Err(e) => return deliver(&state, req.return_to(state.issuer()).error(&e)),
    };
    continue_request(&state, jar, &req, &client, session, None, false, None).await
}

/// Act on `proceed`'s decision: deliver, or show the login or consent page.
#[allow(clippy::too_many_arguments)]
async fn continue_request(
    state: &AppState,
    jar: CookieJar,
    req: &AuthorizationRequest,
    client: &Client,
    session: Option<(Session, User)>,
    interaction: Option<String>,
    fresh_login: bool,
    login_error: Option<LoginProblem>,
) -> Response {
    let username = session.as_ref().map(|(_, u)| u.username.clone());
    match authorize::proceed(
        &state.core,
        req,
        client,
        session,
        interaction,
        fresh_login,
        state.now(),
    )
    .await
    {
        Ok(Next::Deliver(d)) => (jar, deliver(state, d)).into_response(),
        Ok(Next::Login { interaction }) => {
            let (jar, csrf) = session::csrf(state, jar, Bind::Interaction(&interaction));
            let (status, error, typed, retry) = match login_error {
                Some(p) => (p.status, Some(p.message), p.username, p.retry_after),
                None => (
                    StatusCode::OK,
                    None,
                    req.login_hint.clone().unwrap_or_default(),
                    None,
                ),
            };
            let mut body = page(
                status,
                &LoginPage {
                    theme: Theme::from(state),
                    client_name: client.name(),
                    action: "/login",
                    hidden: &[("interaction", &interaction)],
                    csrf: &csrf,
                    username: &typed,
                    error,
                },
            );
            set_retry_after(&mut body, retry);
            (jar, body).into_response()
        }
        Ok(Next::Consent {
            interaction,
            new_scopes,
        }) => {
            let (jar, csrf) = session::csrf(state, jar, Bind::SessionAndInteraction(&interaction));
            let scopes = scope_lines(new_scopes.iter());
            let body = page(
                StatusCode::OK,
                &ConsentPage {
                    theme: Theme::from(state),
                    client_name: client.name(),
                    username: username.as_deref().unwrap_or_default(),
                    csrf: &csrf,
                    interaction: &interaction,
                    scopes,
                },
            );
            (jar, body).into_response()
        }
        // The same form was posted twice at once (a double click) and the other post
        // answered it. A session this post just started would be a second live session
        // that no code names: end it again.
        Ok(Next::AlreadyUsed) if fresh_login => match session::end(state, jar).await {
            Ok((jar, _)) => (jar, expired_page(state)).into_response(),
            Err(e) => error_page(state, StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
        Ok(Next::AlreadyUsed) => (jar, expired_page(state)).into_response(),
        Err(e) => (jar, deliver(state, req.return_to(state.issuer()).error(&e))).into_response(),
    }
}

/// Load a pending interaction named by a form.
async fn load_interaction(
    state: &AppState,
    form: &Params,
) -> OAuthResult<Option<(String, AuthorizationRequest, Arc<Client>)>> {
    let Some(id) = form.get("interaction") else {
        return Ok(None);
    };
    let Some(json) = state
        .core
        .store
        .get_interaction(&hash_token(id), state.now())
        .await?
    else {
        return Ok(None);
    };
    let req: AuthorizationRequest = serde_json::from_str(&json).map_err(OAuthError::internal)?;
    let Some(client) = state
        .core
        .clients
        .get(&req.client_id)
        .await?
        .filter(|c| c.enabled)
    else {
        return Ok(None);
    };
    Ok(Some((id.to_owned(), req, client)))
}

fn expired_page(state: &AppState) -> Response {
    let minutes = (state.config.sessions.interaction_ttl / 60).max(1);
    error_page_saying(
        state,
        StatusCode::BAD_REQUEST,
        &OAuthError::invalid_request(
            "The interaction named by the form has expired or was already used.",
        ),
        "This sign-in page has expired",
        &format!(
            "A sign-in page can be used once, within {minutes} minutes of opening it. Go back to the app and sign in again."
        ),
    )
}

pub fn csrf_failed(state: &AppState) -> Response {
    error_page_saying(
        state,
        StatusCode::FORBIDDEN,
        &OAuthError::access_denied(
            "The form could not be verified: its CSRF value does not match the cookie set with the page.",
        ),
        "We could not check this form",
        "Your browser did not send back the cookie this page set. That happens when cookies are blocked for this site, when the page was opened in another browser or a private window, or when it was open for a long time. Allow cookies for this site, then go back to the app and start again. If you did not submit a form just now, someone may have tried to submit one for you: you can close this page.",
    )
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    let Ok(form) = Params::parse(&body, state.config.limits.params()) else {
        return expired_page(&state);
    };
    // CSRF first, before anything else is looked at.
    let interaction = form.get("interaction").unwrap_or_default();
    if !session::csrf_ok(
        &state,
        &jar,
        Bind::Interaction(interaction),
        form.get("csrf"),
    ) {
        return csrf_failed(&state);
    }
    let (id, req, client) = match load_interaction(&state, &form).await {
        Ok(Some(x)) => x,
        Ok(None) => return expired_page(&state),
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let (jar, s, user) = match sign_in(&state, jar, &form, &client.id, &ip).await {
        Ok(SignIn::Done(jar, s, user)) => (jar, s, user),
        Ok(SignIn::Failed(jar, failure)) => {
            return continue_request(
                &state,
                jar,
                &req,
                &client,
                None,
                Some(id),
                false,
                Some(failure),
            )
            .await;
        }
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    continue_request(
        &state,
        jar,
        &req,
        &client,
        Some((s, user)),
        Some(id),
        true,
        None,
    )
    .await
}

pub async fn consent(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    let Ok(form) = Params::parse(&body, state.config.limits.params()) else {
        return expired_page(&state);
    };
    let interaction = form.get("interaction").unwrap_or_default();
    if !session::csrf_ok(
        &state,
        &jar,
        Bind::SessionAndInteraction(interaction),
        form.get("csrf"),
    ) {
        return csrf_failed(&state);
    }
    let (id, req, client) = match load_interaction(&state, &form).await {
        Ok(Some(x)) => x,
        Ok(None) => return expired_page(&state),
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let (s, user) = match session::current(&state, &jar).await {
        Ok(Some(x)) => x,
        Ok(None) => {
            return continue_request(&state, jar, &req, &client, None, Some(id), false, None).await;
        }
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let now = state.now();
    // Single use: a replayed consent form finds nothing.
    match state
        .core
        .store
        .take_interaction(&hash_token(&id), now)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return expired_page(&state),
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.into()),
    }
    let ret = req.return_to(state.issuer());
    if form.get("decision") != Some("allow") {
        audit(
            &state.core,
            "consent.denied",
            Some(&user.id),
            Some(&client.id),
            &ip,
            state.now(),
        )
        .await;
        return deliver(
            &state,
            ret.error(&OAuthError::access_denied("the user denied the request")),
        );
    }
    audit(
        &state.core,
        "consent.granted",
        Some(&user.id),
        Some(&client.id),
        &ip,
        state.now(),
    )
    .await;
    if let Err(e) = state
        .core
        .store
        .add_consent(&user.id, &client.id, &req.scope, now)
        .await
    {
        return deliver(&state, ret.error(&e.into()));
    }
    match authorize::issue(&state.core, &req, &client, &s, &user, now).await {
        Ok(d) => deliver(&state, d),
        Err(e) => deliver(&state, ret.error(&e)),
    }
}

/// What a posted login form came to.
pub enum SignIn {
    /// A new session (a new cookie in the jar).
    Done(CookieJar, Session, User),
    /// The message for the login page, and the username to show again.
    Failed(CookieJar, LoginProblem),
}

/// Why the login page is shown again, and how.
pub struct LoginProblem {
    pub message: String,
    /// What the person typed, shown again.
    pub username: String,
    /// 401 for a refused sign-in; 503 when the server is too busy to check it.
    pub status: StatusCode,
    /// Seconds for `Retry-After` (RFC 9110 section 10.2.3), when retrying later will help.
    pub retry_after: Option<u64>,
}

/// `Retry-After` on a page, when there is one to give.
pub fn set_retry_after(r: &mut Response, seconds: Option<u64>) {
    if let Some(s) = seconds {
        r.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, s.into());
    }
}

/// Check the `username` and `password` of a login form (throttled), audit the outcome and
/// start a session on success. Shared by the authorization and the device login pages.
pub async fn sign_in(
    state: &AppState,
    jar: CookieJar,
    form: &Params,
    client_id: &str,
    ip: &str,
) -> OAuthResult<SignIn> {
    let username = form.get("username").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default();
    let verified =
        match check_password(&state.core, &username, password, Some(ip), state.now()).await? {
            Ok(v) => v,
            Err(failed) => {
                // A refusal before any check (a flood answered busy, another attempt in flight)
                // is not a failed login, and auditing it would let a flood write a row each.
                if failed.was_checked() {
                    audit(
                        &state.core,
                        "login.failure",
                        None,
                        Some(client_id),
                        ip,
                        state.now(),
                    )
                    .await;
                }
                let busy = matches!(failed, LoginFailure::Busy);
                return Ok(SignIn::Failed(
                    jar,
                    LoginProblem {
                        message: failed.page_message(state.now()),
                        username,
                        status: if busy {
                            StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            StatusCode::UNAUTHORIZED
                        },
                        retry_after: busy.then_some(crate::crypto::password::BUSY_RETRY_SECONDS),
                    },
                ));
            }
        };
    let user = verified.user;
    audit(
        &state.core,
        "login.success",
        Some(&user.id),
        Some(client_id),
        ip,
        state.now(),
    )
    .await;
    let (jar, s) = session::start(state, jar, &user, verified.at).await?;
    Ok(SignIn::Done(jar, s, user))
}
