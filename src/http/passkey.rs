//! What the passkey pages share: the ceremony page, and signing in with a passkey alone
//! from any of the three login pages (an authorization request, a device, the account page).
//! The ceremonies themselves are in `core::passkey`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::core::passkey::{self, PasskeyFailure, Started};
use crate::model::{Session, User};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;

use super::client_ip::Browser;
use super::pages::{Continue, LoginProblem, OrPage, PageError};
use super::respond::{page, with_scripts};
use super::session::{self, Bind, SignedIn};
use super::views::{PasskeyPage, Theme};

/// The words and form of a ceremony page.
pub struct Ceremony<'a> {
    pub title: &'a str,
    pub lead: &'a str,
    pub button: &'a str,
    /// Where the answer posts, and what that endpoint continues with.
    pub action: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub bind: Bind<'a>,
}

/// A ceremony's page: the options for the browser, and the form the answer is posted in.
pub fn ceremony_page(
    state: &AppState,
    jar: CookieJar,
    c: &Ceremony<'_>,
    started: &Started,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (jar, csrf) = session::csrf(state, jar, c.bind);
    let r = page(
        status,
        &PasskeyPage {
            theme: Theme::from(state),
            title: c.title,
            lead: c.lead,
            button: c.button,
            action: c.action,
            hidden: c.hidden,
            csrf: &csrf,
            ceremony: &started.token,
            options: &started.options,
            error,
        },
    );
    (jar, with_scripts(r)).into_response()
}

/// The page refusing a passkey request where this server has no passkeys.
fn unavailable(state: &AppState) -> PageError {
    PageError::new(
        state,
        OAuthError::invalid_request("passkeys are not available on this server"),
    )
    .status(StatusCode::NOT_FOUND)
    .saying(
        "Passkeys are not available here",
        "This server cannot use passkeys: WebAuthn needs it to be reached by a domain name, and second factors must be on. Sign in with your password.",
    )
}

/// The page that signs in with a passkey alone, for the login page whose form posted here:
/// `then` says where it continues, `finish` where the answer posts.
pub async fn sign_in_page(
    state: &AppState,
    jar: CookieJar,
    then: Continue<'_>,
    finish: &str,
    hidden: &[(&str, &str)],
    bind: Bind<'_>,
) -> Result<Response, PageError> {
    let started =
        match passkey::start_sign_in(&state.core, then.purpose, then.interaction, state.now())
            .await
            .or_page(state)?
        {
            Ok(s) => s,
            Err(_) => return Err(unavailable(state)),
        };
    let c = Ceremony {
        title: "Sign in with a passkey",
        lead: "Choose the passkey you keep for this site on this device, your phone or a security key.",
        button: "Use a passkey",
        action: finish,
        hidden,
        bind,
    };
    Ok(ceremony_page(
        state,
        jar,
        &c,
        &started,
        StatusCode::OK,
        None,
    ))
}

/// What a posted passkey sign-in came to.
pub enum PasskeySignIn {
    /// A new session (a new cookie in the jar).
    Done(CookieJar, Session, User),
    /// Refused: what the login page says, and with what status.
    Failed(CookieJar, LoginProblem),
}

/// Check a posted passkey sign-in (its CSRF value was checked by the caller, who knows what
/// the form is bound to) and start a session on success: its `auth_time` is now, and it
/// counts as two factors.
pub async fn finish_sign_in(
    state: &AppState,
    jar: CookieJar,
    form: &Params,
    then: Continue<'_>,
    browser: &Browser,
) -> Result<PasskeySignIn, PageError> {
    let now = state.now();
    let outcome = passkey::finish_sign_in(
        &state.core,
        form.get("ceremony").unwrap_or_default(),
        then.purpose,
        then.interaction,
        form.get("credential").unwrap_or_default(),
        browser.at(then.client_id),
        now,
    )
    .await
    .or_page(state)?;
    match outcome {
        Ok(signed) => {
            let how = SignedIn {
                at: now,
                amr: signed.amr,
                mfa_at: Some(now),
            };
            let (jar, s) = session::start(state, jar, &signed.user, how, browser)
                .await
                .or_page(state)?;
            Ok(PasskeySignIn::Done(jar, s, signed.user))
        }
        Err(PasskeyFailure::Unavailable) => Err(unavailable(state)),
        Err(f) => Ok(PasskeySignIn::Failed(jar, login_problem(f))),
    }
}

/// A refused passkey sign-in as the login page's problem.
fn login_problem(f: PasskeyFailure) -> LoginProblem {
    LoginProblem {
        message: f.page_message().to_owned(),
        username: String::new(),
        status: if f == PasskeyFailure::Throttled {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNAUTHORIZED
        },
        retry_after: None,
    }
}
