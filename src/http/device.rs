//! RFC 8628 over HTTP: the device authorization endpoint (§3.1) and the verification pages
//! a person uses on their phone or computer (§3.3): enter the code, sign in, confirm.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use std::net::IpAddr;

use crate::core::device::{self, CodeProblem, Decided, DeviceAuthorization, display_user_code};
use crate::core::login::wait_words;
use crate::core::mfa;
use crate::core::passkey;
use crate::model::{DeviceRow, PendingPurpose, Session, User};
use crate::oauth::acr::Requested;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;

use super::client_ip::{Browser, ClientIp};
use super::extract::AuthenticatedClient;
use super::pages::{
    Continue, FactorForm, FactorStep, Login, LoginProblem, OrPage, PageError, SignIn, factor_page,
    factor_step, login_page, parse_form, sign_in,
};
use super::passkey::{self as http_passkey, PasskeySignIn};
use super::respond::{NoStore, page};
use super::session::{self, Bind};
use super::views::{DeviceConfirmPage, DeviceEntryPage, MessagePage, Theme, scope_lines};

/// POST /device/code (RFC 8628 §3.1-3.2).
pub async fn device_authorization(
    State(state): State<AppState>,
    AuthenticatedClient { client, params, .. }: AuthenticatedClient,
) -> Result<NoStore<DeviceAuthorization>, OAuthError> {
    let started = device::start(&state.core, &client, &params, state.now()).await?;
    Ok(NoStore(started))
}

/// GET /device, optionally with `?user_code=` from `verification_uri_complete`. The code is
/// only pre-filled: the person still submits it and then confirms (§5.4).
pub async fn entry(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let typed = raw
        .iter()
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    entry_page(&state, jar, typed, None)
}

fn entry_page(
    state: &AppState,
    jar: CookieJar,
    typed: &str,
    problem: Option<CodeProblem>,
) -> Response {
    let (jar, csrf) = session::csrf(state, jar, Bind::Nothing);
    let now = state.now();
    let (status, error) = match problem {
        None => (StatusCode::OK, None),
        Some(CodeProblem::Unknown) => (
            StatusCode::BAD_REQUEST,
            Some("That code is not valid. Check the code on your device and type it again.".to_owned()),
        ),
        Some(CodeProblem::Expired) => (
            StatusCode::BAD_REQUEST,
            Some("That code has expired. Start signing in again on your device to get a new code.".to_owned()),
        ),
        Some(CodeProblem::AlreadyDecided) => (
            StatusCode::BAD_REQUEST,
            Some("That code has already been used. If your device is still waiting, start again on it to get a new code.".to_owned()),
        ),
        Some(CodeProblem::Throttled { until }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Too many wrong codes were entered. For your security, code entry is paused; try again in {}.",
                wait_words(until - now)
            )),
        ),
    };
    let mut r = page(
        status,
        &DeviceEntryPage {
            theme: Theme::from(state),
            csrf: &csrf,
            user_code: typed,
            error,
        },
    );
    if let Some(CodeProblem::Throttled { until }) = problem
        && let Ok(v) = HeaderValue::from_str(&(until - now).max(1).to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    (jar, r).into_response()
}

/// A form posted from one of the device pages, naming a pending authorization.
struct DeviceForm {
    form: Params,
    row: DeviceRow,
}

/// Check the form's CSRF value (before anything else is read), then resolve its user code
/// to a pending authorization. A code that is not (or no longer) pending is answered with
/// the entry page saying why: `Ok(Err(page))`.
async fn pending_form(
    state: &AppState,
    jar: &CookieJar,
    ip: IpAddr,
    body: &[u8],
    bind: Bind<'_>,
) -> Result<Result<DeviceForm, Response>, PageError> {
    let form = parse_form(state, body).or_page(state)?;
    if !session::csrf_ok(state, jar, bind, form.get("csrf")) {
        return Err(PageError::csrf_failed(state));
    }
    let typed = form.get("user_code").unwrap_or_default();
    Ok(
        match device::find_pending(&state.core, typed, ip, state.now())
            .await
            .or_page(state)?
        {
            Ok(row) => Ok(DeviceForm { form, row }),
            Err(problem) => Err(entry_page(state, jar.clone(), typed, Some(problem))),
        },
    )
}

/// POST /device: the code was typed.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let row = match pending_form(&state, &jar, ip, &body, Bind::Nothing).await? {
        Ok(f) => f.row,
        Err(page) => return Ok(page),
    };
    let session = session::current(&state, &jar).await.or_page(&state)?;
    next_step(&state, jar, &row, session, None).await
}

/// Sign in first if needed, else ask for confirmation.
async fn next_step(
    state: &AppState,
    jar: CookieJar,
    row: &DeviceRow,
    session: Option<(Session, User)>,
    login_error: Option<LoginProblem>,
) -> Result<Response, PageError> {
    let Some(client) = state
        .core
        .clients
        .get(&row.client_id)
        .await
        .or_page(state)?
        .filter(|c| c.enabled)
    else {
        return Err(PageError::new(
            state,
            OAuthError::invalid_request(
                "The app that asked for this code is no longer registered here.",
            ),
        ));
    };
    // The rule the device decision holds (`mfa::shortfall`): a session that owes its user's
    // second factor gives it first; a user with none, whom the client requires to have one,
    // sets one up on the account page first.
    if let Some((s, user)) = &session
        && let Ok(Some(short)) = mfa::shortfall(&state.core, &client, &Requested::Nothing, s, user)
    {
        if short == mfa::Shortfall::SecondFactor {
            let shown = display_user_code(&row.user_code);
            let token = mfa::begin_step_up(
                &state.core,
                user,
                s,
                PendingPurpose::Device,
                Some(&row.user_code),
                state.now(),
            )
            .await
            .or_page(state)?;
            let form = FactorForm {
                action: FACTOR_ACTION,
                pending: &token,
                hidden: &[("user_code", &shown)],
            };
            return factor_page(state, jar, user, form, None).await;
        }
        return Err(PageError::new(
            state,
            OAuthError::access_denied(
                "This app needs a second sign-in step, and the account has none set up.",
            ),
        )
        .status(StatusCode::FORBIDDEN)
        .saying(
            "Set up two-step sign-in first",
            "This app asks for a code from an authenticator app after your password. Set one up on your account page (/account), then enter the code from your device again.",
        ));
    }
    // The login form is bound to nothing (nobody is signed in yet), the confirmation to
    // the session that confirms.
    let bind = if session.is_some() {
        Bind::Session
    } else {
        Bind::Nothing
    };
    let (jar, csrf) = session::csrf(state, jar, bind);
    let shown = display_user_code(&row.user_code);
    let body = match session {
        None => {
            let login = Login {
                client_name: client.name(),
                action: "/device/login",
                passkey_action: passkey::available(&state.core).map(|_| PASSKEY_ACTION),
                hidden: &[("user_code", &shown)],
                csrf: &csrf,
                username: String::new(),
            };
            login_page(state, login, login_error)
        }
        Some((_, user)) => page(
            StatusCode::OK,
            &DeviceConfirmPage {
                theme: Theme::from(state),
                client_name: client.name(),
                username: &user.username,
                csrf: &csrf,
                user_code: &shown,
                scopes: scope_lines(
                    &state.config.scopes,
                    row.scope_order.iter().map(String::as_str),
                ),
            },
        ),
    };
    Ok((jar, body).into_response())
}

/// POST /device/login: sign in on the way to confirming a device.
pub async fn login(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let DeviceForm { form, row } =
        match pending_form(&state, &jar, browser.ip, &body, Bind::Nothing).await? {
            Ok(f) => f,
            Err(page) => return Ok(page),
        };
    let then = Continue {
        purpose: PendingPurpose::Device,
        interaction: Some(&row.user_code),
        client_id: Some(&row.client_id),
    };
    match sign_in(&state, jar, &form, then, &browser)
        .await
        .or_page(&state)?
    {
        SignIn::Done(jar, s, user) => next_step(&state, jar, &row, Some((s, user)), None).await,
        SignIn::SecondFactor(jar, token, user) => {
            let shown = display_user_code(&row.user_code);
            let form = FactorForm {
                action: FACTOR_ACTION,
                pending: &token,
                hidden: &[("user_code", &shown)],
            };
            factor_page(&state, jar, &user, form, None).await
        }
        SignIn::Failed(jar, failure) => next_step(&state, jar, &row, None, Some(failure)).await,
    }
}

const FACTOR_ACTION: &str = "/device/login/factor";
const PASSKEY_ACTION: &str = "/device/login/passkey";
const PASSKEY_FINISH: &str = "/device/login/passkey/finish";

/// POST /device/login/passkey: "Sign in with a passkey" on the way to confirming a device.
pub async fn login_passkey(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let row = match pending_form(&state, &jar, ip, &body, Bind::Nothing).await? {
        Ok(f) => f.row,
        Err(page) => return Ok(page),
    };
    let then = Continue {
        purpose: PendingPurpose::Device,
        interaction: Some(&row.user_code),
        client_id: Some(&row.client_id),
    };
    let shown = display_user_code(&row.user_code);
    let hidden = [("user_code", shown.as_str())];
    http_passkey::sign_in_page(&state, jar, then, PASSKEY_FINISH, &hidden, Bind::Nothing).await
}

/// POST /device/login/passkey/finish: the browser's answer; on success the confirmation
/// page follows.
pub async fn login_passkey_finish(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let DeviceForm { form, row } =
        match pending_form(&state, &jar, browser.ip, &body, Bind::Nothing).await? {
            Ok(f) => f,
            Err(page) => return Ok(page),
        };
    let then = Continue {
        purpose: PendingPurpose::Device,
        interaction: Some(&row.user_code),
        client_id: Some(&row.client_id),
    };
    match http_passkey::finish_sign_in(&state, jar, &form, then, &browser).await? {
        PasskeySignIn::Done(jar, s, user) => {
            next_step(&state, jar, &row, Some((s, user)), None).await
        }
        PasskeySignIn::Failed(jar, problem) => {
            next_step(&state, jar, &row, None, Some(problem)).await
        }
    }
}

/// POST /device/login/factor: the second factor, on the way to confirming a device.
pub async fn login_factor(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = parse_form(&state, &body).or_page(&state)?;
    let typed = form.get("user_code").unwrap_or_default().to_owned();
    let code = device::normalize_user_code(&typed);
    let step = factor_step(
        &state,
        jar,
        &form,
        Continue {
            purpose: PendingPurpose::Device,
            interaction: Some(code.as_deref().unwrap_or_default()),
            client_id: None,
        },
        FACTOR_ACTION,
        &[("user_code", &typed)],
        &browser,
    )
    .await?;
    let (jar, s, user) = match step {
        FactorStep::Done(jar, s, user) | FactorStep::SteppedUp(jar, s, user) => (jar, s, user),
        FactorStep::Again(page) => return Ok(page),
    };
    match device::find_pending(&state.core, &typed, browser.ip, state.now())
        .await
        .or_page(&state)?
    {
        Ok(row) => next_step(&state, jar, &row, Some((s, user)), None).await,
        Err(problem) => Ok(entry_page(&state, jar, &typed, Some(problem))),
    }
}

/// POST /device/confirm: Allow or Deny.
pub async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let DeviceForm { form, row } =
        match pending_form(&state, &jar, ip, &body, Bind::Session).await? {
            Ok(f) => f,
            Err(page) => return Ok(page),
        };
    let Some((s, user)) = session::current(&state, &jar).await.or_page(&state)? else {
        // The session ended between the pages: sign in again, then confirm.
        return next_step(&state, jar, &row, None, None).await;
    };
    let client = state
        .core
        .clients
        .get(&row.client_id)
        .await
        .or_page(&state)?;
    let allow = form.get("decision") == Some("allow");
    let decided = device::decide(
        &state.core,
        &row,
        client.as_deref(),
        &s,
        &user,
        allow,
        ip,
        state.now(),
    )
    .await
    .or_page(&state)?;
    let client_name = client.map_or_else(|| row.client_id.clone(), |c| c.name().to_owned());
    match decided {
        // The session ended a moment ago: sign in again, then confirm.
        Decided::SessionEnded => next_step(&state, jar, &row, None, None).await,
        // The confirmation page asks for the second factor first.
        Decided::NeedsSecondFactor => next_step(&state, jar, &row, Some((s, user)), None).await,
        Decided::AlreadyDecided => {
            let typed = form.get("user_code").unwrap_or_default();
            Ok(entry_page(
                &state,
                jar,
                typed,
                Some(CodeProblem::AlreadyDecided),
            ))
        }
        Decided::Approved => Ok((jar, decided_page(&state, &client_name, true)).into_response()),
        Decided::Denied => Ok((jar, decided_page(&state, &client_name, false)).into_response()),
    }
}

/// What the person sees once the device has its answer.
fn decided_page(state: &AppState, client_name: &str, approved: bool) -> Response {
    let (title, message) = if approved {
        (
            "Device connected",
            format!(
                "{client_name} can now use your account on your device. Return to your device: it continues on its own within a few seconds. You can close this page."
            ),
        )
    } else {
        (
            "Request denied",
            format!(
                "{client_name} was not given access. Your device will say the request was denied. If you did not start it, there is nothing else to do."
            ),
        )
    };
    page(
        StatusCode::OK,
        &MessagePage {
            theme: Theme::from(state),
            title,
            message: &message,
        },
    )
}
