//! What the browser pages share: the HTML error page (`PageError`, the one error path of
//! every page handler), the form preambles, and signing in from a login form.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::core::audit::{AuditKind, audit};
use crate::core::login::{LoginFailure, check_password};
use crate::core::mfa::{self, FactorFailure};
use crate::core::passkey;
use crate::crypto::secret::hash_token;
use crate::model::{FactorKind, PendingPurpose, Session, User};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::state::AppState;

use super::client_ip::Browser;
use super::respond::{page, with_cause, with_scripts};
use super::session::{self, Bind, SignedIn};
use super::views::{ErrorPage, FactorPage, LoginPage, Theme};

/// An error answered with the themed HTML error page, for errors that must not be
/// redirected to the client (RFC 6749 §4.1.2.1) and for the pages' own failures. The status
/// is the error code's own (so a busy store is a 503, not a 500), unless a page says
/// otherwise. Boxed: page handlers return it in every `Result`.
pub struct PageError(Box<Failed>);

struct Failed {
    theme: Theme,
    error: OAuthError,
    status: StatusCode,
    /// Words for the person, where the code alone cannot say what happened.
    words: Option<(Cow<'static, str>, Cow<'static, str>)>,
}

impl PageError {
    pub fn new(state: &AppState, error: OAuthError) -> Self {
        PageError(Box::new(Failed {
            theme: Theme::from(state),
            status: StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
            error,
            words: None,
        }))
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    /// Say what happened in the person's words (`title`, `message`), above the technical
    /// code and description, which stay for the developer.
    pub fn saying(
        mut self,
        title: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.0.words = Some((title.into(), message.into()));
        self
    }

    /// A login or consent form whose interaction has expired or was already used.
    pub fn expired(state: &AppState) -> Self {
        let minutes = (state.config.sessions.interaction_ttl / 60).max(1);
        PageError::new(
            state,
            OAuthError::invalid_request(
                "The interaction named by the form has expired or was already used.",
            ),
        )
        .saying(
            "This sign-in page has expired",
            format!(
                "A sign-in page can be used once, within {minutes} minutes of opening it. Go back to the app and sign in again."
            ),
        )
    }

    /// A form that failed its CSRF check: 403, as the form is refused, not malformed.
    pub fn csrf_failed(state: &AppState) -> Self {
        PageError::new(
            state,
            OAuthError::access_denied(
                "The form could not be verified: its CSRF value does not match the cookie set with the page.",
            ),
        )
        .status(StatusCode::FORBIDDEN)
        .saying(
            "We could not check this form",
            "Your browser did not send back the cookie this page set. That happens when cookies are blocked for this site, when the page was opened in another browser or a private window, or when it was open for a long time. Allow cookies for this site, then go back to the app and start again. If you did not submit a form just now, someone may have tried to submit one for you: you can close this page.",
        )
    }
}

/// Words a person understands for each error, above the technical code.
fn human(code: ErrorCode) -> (&'static str, &'static str) {
    match code {
        ErrorCode::InvalidRequest => (
            "This sign-in link is not valid",
            "The app that sent you here made a request we cannot accept. Go back to the app and try again; if it keeps happening, tell the app's developer.",
        ),
        ErrorCode::AccessDenied => ("Access denied", "The request was refused."),
        ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => (
            "Something went wrong on our side",
            "Please go back and try again in a moment.",
        ),
        _ => (
            "We could not complete this request",
            "Go back to the app and try again; if it keeps happening, tell the app's developer.",
        ),
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let Failed {
            theme,
            error,
            status,
            words,
        } = *self.0;
        let (title, message) = match &words {
            Some((t, m)) => (t.as_ref(), m.as_ref()),
            None => human(error.code),
        };
        // Descriptions quote names in backticks, which read as Markdown; a page shows quotes.
        let description = error.description.replace('`', "\"");
        let r = page(
            status,
            &ErrorPage {
                theme,
                title,
                message,
                code: error.code.as_str(),
                description: &description,
            },
        );
        with_cause(r, &error)
    }
}

/// `?` for page handlers: a failure becomes the error page.
pub trait OrPage<T> {
    fn or_page(self, state: &AppState) -> Result<T, PageError>;
}

impl<T, E: Into<OAuthError>> OrPage<T> for Result<T, E> {
    fn or_page(self, state: &AppState) -> Result<T, PageError> {
        self.map_err(|e| PageError::new(state, e.into()))
    }
}

/// A posted page form, within the parameter limits.
pub fn parse_form(state: &AppState, body: &[u8]) -> OAuthResult<Params> {
    Params::parse(body, state.config.limits.params())
}

/// A posted page form whose CSRF value checks out for `bind`: checked before anything else
/// in it is read.
pub fn checked_form(
    state: &AppState,
    jar: &CookieJar,
    body: &[u8],
    bind: Bind<'_>,
) -> Result<Params, PageError> {
    let form = parse_form(state, body).or_page(state)?;
    if !session::csrf_ok(state, jar, bind, form.get("csrf")) {
        return Err(PageError::csrf_failed(state));
    }
    Ok(form)
}

/// What a posted login form came to.
pub enum SignIn {
    /// A new session (a new cookie in the jar).
    Done(CookieJar, Session, User),
    /// The password was right and the account has a second factor: the factor page comes
    /// next, for this pending sign-in of this user.
    SecondFactor(CookieJar, String, User),
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

/// Where a sign-in goes on: the pending sign-in of an account with a second factor keeps it,
/// to continue there once the factor is accepted.
#[derive(Clone, Copy)]
pub struct Continue<'a> {
    pub purpose: PendingPurpose,
    /// What it continues: the authorization request's interaction id, the device's user
    /// code (normalized); None for the account page.
    pub interaction: Option<&'a str>,
    /// The app the sign-in is for, for the audit log.
    pub client_id: Option<&'a str>,
}

/// Check the `username` and `password` of a login form (throttled), audit the outcome and
/// start a session on success, or a pending sign-in when the account has a second factor.
/// Shared by the authorization, device and account login pages.
pub async fn sign_in(
    state: &AppState,
    jar: CookieJar,
    form: &Params,
    then: Continue<'_>,
    browser: &Browser,
) -> OAuthResult<SignIn> {
    let username = form.get("username").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default();
    let now = state.now();
    let ip = browser.ip;
    let verified = match check_password(&state.core, &username, password, Some(ip), now).await? {
        Ok(v) => v,
        Err(failed) => {
            // A refusal before any check (a flood answered busy, another attempt in flight)
            // is not a failed login, and auditing it would let a flood write a row each.
            if failed.was_checked() {
                audit(
                    &state.core,
                    AuditKind::LoginFailure,
                    None,
                    then.client_id,
                    Some(ip),
                    now,
                )
                .await;
            }
            let busy = matches!(failed, LoginFailure::Busy);
            return Ok(SignIn::Failed(
                jar,
                LoginProblem {
                    message: failed.page_message(now),
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
    if mfa::asks_for_factor(&state.core, &user) {
        let pending = mfa::begin_pending(
            &state.core,
            &user,
            then.purpose,
            then.interaction,
            verified.at,
            now,
        )
        .await?;
        audit(
            &state.core,
            AuditKind::PasswordAccepted,
            Some(&user.id),
            then.client_id,
            Some(ip),
            now,
        )
        .await;
        return Ok(SignIn::SecondFactor(jar, pending, user));
    }
    audit(
        &state.core,
        AuditKind::LoginSuccess,
        Some(&user.id),
        then.client_id,
        Some(ip),
        now,
    )
    .await;
    let (jar, s) =
        session::start(state, jar, &user, SignedIn::password(verified.at), browser).await?;
    Ok(SignIn::Done(jar, s, user))
}

/// Where a second-factor form posts (`action`), the pending sign-in it finishes, and what
/// that endpoint continues with besides (`hidden`).
#[derive(Clone, Copy)]
pub struct FactorForm<'a> {
    pub action: &'a str,
    pub pending: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
}

/// The second-factor page of `user`: a code from their authenticator app or a recovery
/// code, and their passkey when they have one (a new WebAuthn challenge each time the page
/// is drawn).
pub async fn factor_page(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    form: FactorForm<'_>,
    problem: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let now = state.now();
    let factors = mfa::factors(&state.core, &user.id).await.or_page(state)?;
    let has_app = factors.iter().any(|f| f.kind == FactorKind::Totp);
    let passkey = if factors.iter().any(|f| f.kind == FactorKind::Passkey) {
        passkey::start_second_factor(&state.core, user, form.pending, now)
            .await
            .or_page(state)?
    } else {
        None
    };
    let (jar, csrf) = session::csrf(state, jar, Bind::Pending(form.pending));
    let (status, error) = match problem {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let r = page(
        status,
        &FactorPage {
            theme: Theme::from(state),
            action: form.action,
            pending: form.pending,
            hidden: form.hidden,
            csrf: &csrf,
            error,
            has_app,
            passkey: passkey.as_ref(),
        },
    );
    let r = if passkey.is_some() {
        with_scripts(r)
    } else {
        r
    };
    Ok((jar, r).into_response())
}

/// The status and words of a page that refused a code: `wrong` for a code that was not
/// right (401 on a sign-in, 400 on a form of a signed-in page), 429 for a lockout.
pub fn refused_code(failed: FactorFailure, wrong: StatusCode, now: i64) -> (StatusCode, String) {
    let status = match failed {
        FactorFailure::Wrong
        | FactorFailure::Malformed
        | FactorFailure::Gone
        | FactorFailure::PasskeyRefused => wrong,
        FactorFailure::Locked { .. } | FactorFailure::Waiting { .. } | FactorFailure::InFlight => {
            StatusCode::TOO_MANY_REQUESTS
        }
    };
    (status, failed.page_message(now))
}

/// What a posted second-factor form came to.
pub enum FactorStep {
    /// The factor was right: the new session and its user.
    Done(CookieJar, Session, User),
    /// The factor was right and added to the browser's session (a step-up).
    SteppedUp(CookieJar, Session, User),
    /// The page to answer with: the factor page again, saying why.
    Again(Response),
}

/// Check a posted second-factor form: its CSRF value, its pending sign-in (which must be
/// for `then.purpose`, and continue `then.interaction`: the interaction or user code the
/// form carries), then the code or the passkey, audited for `then.client_id`. `action` and
/// `hidden` redraw the page.
pub async fn factor_step(
    state: &AppState,
    jar: CookieJar,
    form: &Params,
    then: Continue<'_>,
    action: &str,
    hidden: &[(&str, &str)],
    browser: &Browser,
) -> Result<FactorStep, PageError> {
    let (purpose, continues) = (then.purpose, then.interaction);
    let token = form.get("pending").unwrap_or_default();
    if !session::csrf_ok(state, &jar, Bind::Pending(token), form.get("csrf")) {
        return Err(PageError::csrf_failed(state));
    }
    let now = state.now();
    let Some((pending, user)) = mfa::pending(&state.core, token, now)
        .await
        .or_page(state)?
        .filter(|(p, _)| {
            p.purpose == purpose
                && p.interaction.as_deref().map(str::as_bytes)
                    == continues.map(hash_token).as_deref().map(str::as_bytes)
        })
    else {
        return Err(PageError::expired(state));
    };
    let ip = browser.ip;
    let client_id = then.client_id;
    let at = browser.at(client_id);
    let checked = match form.get("credential") {
        Some(credential) => {
            let ceremony = form.get("ceremony").unwrap_or_default();
            passkey::check_second_factor(&state.core, &user, token, ceremony, credential, at, now)
                .await
                .or_page(state)?
        }
        None => {
            let code = form.get("code").unwrap_or_default();
            mfa::check_code(&state.core, &user, code, at, now)
                .await
                .or_page(state)?
        }
    };
    let used = match checked {
        Ok(used) => used,
        Err(FactorFailure::Gone) => return Err(PageError::expired(state)),
        Err(failed) => {
            let problem = Some(refused_code(failed, StatusCode::UNAUTHORIZED, now));
            let form = FactorForm {
                action,
                pending: token,
                hidden,
            };
            return Ok(FactorStep::Again(
                factor_page(state, jar, &user, form, problem).await?,
            ));
        }
    };
    // Taken once: of two right codes posted at once, one starts a session.
    let Some(amr) = mfa::finish_pending(&state.core, token, used, now)
        .await
        .or_page(state)?
    else {
        return Err(PageError::expired(state));
    };
    audit(
        &state.core,
        AuditKind::LoginSuccess,
        Some(&user.id),
        client_id,
        Some(ip),
        now,
    )
    .await;
    if let Some(sid) = &pending.sid {
        // A step-up: the factor goes to the session that asked for it, in this browser.
        let current = session::current(state, &jar).await.or_page(state)?;
        let Some((s, _)) = current.filter(|(s, u)| s.sid == *sid && u.id == user.id) else {
            return Err(PageError::expired(state));
        };
        let Some((jar, s)) = session::elevate(state, jar, &s, amr).await.or_page(state)? else {
            return Err(PageError::expired(state));
        };
        return Ok(FactorStep::SteppedUp(jar, s, user));
    }
    let how = SignedIn {
        at: pending.auth_time,
        amr,
        mfa_at: Some(now),
    };
    let (jar, s) = session::start(state, jar, &user, how, browser)
        .await
        .or_page(state)?;
    Ok(FactorStep::Done(jar, s, user))
}

/// The login page, for an authorization request (`action` /login) or a device being
/// connected (/device/login): shown again with the problem's message and status when a
/// sign-in failed, else with `username` filled in.
pub struct Login<'a> {
    pub client_name: &'a str,
    pub action: &'a str,
    /// Where "Sign in with a passkey" posts (with the same hidden fields and CSRF value);
    /// None where passkeys are off.
    pub passkey_action: Option<&'a str>,
    pub hidden: &'a [(&'a str, &'a str)],
    pub csrf: &'a str,
    pub username: String,
}

pub fn login_page(state: &AppState, l: Login<'_>, problem: Option<LoginProblem>) -> Response {
    let (status, error, typed, retry) = match problem {
        Some(p) => (p.status, Some(p.message), p.username, p.retry_after),
        None => (StatusCode::OK, None, l.username, None),
    };
    let mut r = page(
        status,
        &LoginPage {
            theme: Theme::from(state),
            client_name: l.client_name,
            action: l.action,
            passkey_action: l.passkey_action,
            hidden: l.hidden,
            csrf: l.csrf,
            username: &typed,
            error,
        },
    );
    if let Some(s) = retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}
