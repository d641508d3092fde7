//! RFC 8628 over HTTP: the device authorization endpoint (§3.1) and the verification pages
//! a person uses on their phone or computer (§3.3): enter the code, sign in, confirm.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::core::device::{self, CodeProblem, display_user_code};
use crate::core::login::wait_words;
use crate::model::{DeviceRow, GrantData, Session, User};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;

use super::authorize::{LoginProblem, SignIn, csrf_failed, set_retry_after, sign_in};
use super::client_ip::ClientIp;
use super::respond::{error_page, json_no_store, page};
use super::session::{self, Bind};
use super::token::authenticated_form;
use super::views::{
    DeviceConfirmPage, DeviceEntryPage, LoginPage, MessagePage, Theme, scope_lines,
};
use crate::core::audit::audit;

/// POST /device/code (RFC 8628 §3.1-3.2).
pub async fn device_authorization(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let (params, client) = authenticated_form(&state, &headers, &body, &ip).await?;
        device::start(&state.core, &client, &params, state.now()).await
    }
    .await;
    match result {
        Ok(auth) => json_no_store(&auth),
        Err(e) => e.into_response(),
    }
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
    ip: String,
    jar: CookieJar,
    row: DeviceRow,
}

/// Check the form's CSRF token (before anything else is read), then resolve its user code to
/// a pending authorization; anything else is answered with a page.
async fn pending_form(
    state: &AppState,
    jar: CookieJar,
    ip: String,
    body: &[u8],
    bind: Bind<'_>,
) -> Result<DeviceForm, Box<Response>> {
    let form = Params::parse(body, state.config.limits.params())
        .map_err(|e| Box::new(error_page(state, StatusCode::BAD_REQUEST, &e)))?;
    if !session::csrf_ok(state, &jar, bind, form.get("csrf")) {
        return Err(Box::new(csrf_failed(state)));
    }
    let typed = form.get("user_code").unwrap_or_default();
    match device::find_pending(&state.core, typed, &ip, state.now()).await {
        Ok(Ok(row)) => Ok(DeviceForm { form, ip, jar, row }),
        Ok(Err(problem)) => Err(Box::new(entry_page(state, jar, typed, Some(problem)))),
        Err(e) => Err(Box::new(error_page(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            &e,
        ))),
    }
}

/// POST /device: the code was typed.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    let DeviceForm { jar, row, .. } =
        match pending_form(&state, jar, ip, &body, Bind::Nothing).await {
            Ok(f) => f,
            Err(r) => return *r,
        };
    match session::current(&state, &jar).await {
        Ok(session) => next_step(&state, jar, &row, session, None).await,
        Err(e) => error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// Sign in first if needed, else ask for confirmation.
async fn next_step(
    state: &AppState,
    jar: CookieJar,
    row: &DeviceRow,
    session: Option<(Session, User)>,
    login_error: Option<LoginProblem>,
) -> Response {
    let client = match state.core.clients.get(&row.client_id).await {
        Ok(Some(c)) if c.enabled => c,
        Ok(_) => {
            return error_page(
                state,
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request(
                    "The app that asked for this code is no longer registered here.",
                ),
            );
        }
        Err(e) => return error_page(state, StatusCode::INTERNAL_SERVER_ERROR, &e.into()),
    };
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
            let (status, error, typed, retry) = match login_error {
                Some(p) => (p.status, Some(p.message), p.username, p.retry_after),
                None => (StatusCode::OK, None, String::new(), None),
            };
            let mut r = page(
                status,
                &LoginPage {
                    theme: Theme::from(state),
                    client_name: client.name(),
                    action: "/device/login",
                    hidden: &[("user_code", &shown)],
                    csrf: &csrf,
                    username: &typed,
                    error,
                },
            );
            set_retry_after(&mut r, retry);
            r
        }
        Some((_, user)) => page(
            StatusCode::OK,
            &DeviceConfirmPage {
                theme: Theme::from(state),
                client_name: client.name(),
                username: &user.username,
                csrf: &csrf,
                user_code: &shown,
                scopes: scope_lines(row.scope.iter()),
            },
        ),
    };
    (jar, body).into_response()
}

/// POST /device/login: sign in on the way to confirming a device.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    let DeviceForm { form, ip, jar, row } =
        match pending_form(&state, jar, ip, &body, Bind::Nothing).await {
            Ok(f) => f,
            Err(r) => return *r,
        };
    match sign_in(&state, jar, &form, &row.client_id, &ip).await {
        Ok(SignIn::Done(jar, s, user)) => next_step(&state, jar, &row, Some((s, user)), None).await,
        Ok(SignIn::Failed(jar, failure)) => next_step(&state, jar, &row, None, Some(failure)).await,
        Err(e) => error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// POST /device/confirm: Allow or Deny.
pub async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    let DeviceForm { form, ip, jar, row } =
        match pending_form(&state, jar, ip, &body, Bind::Session).await {
            Ok(f) => f,
            Err(r) => return *r,
        };
    let (s, user) = match session::current(&state, &jar).await {
        Ok(Some(x)) => x,
        // The session ended between the pages: sign in again, then confirm.
        Ok(None) => return next_step(&state, jar, &row, None, None).await,
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let client = match state.core.clients.get(&row.client_id).await {
        Ok(c) => c,
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.into()),
    };
    let client_name = client
        .as_ref()
        .map_or_else(|| row.client_id.clone(), |c| c.name().to_owned());
    let allow = form.get("decision") == Some("allow");
    let now = state.now();
    // Back-Channel Logout 1.0 section 2.3: the device's tokens carry this session's sid, so
    // the client is told when the session ends.
    if allow
        && client
            .as_ref()
            .is_some_and(|c| c.settings.backchannel_logout_uri.is_some())
    {
        match state
            .core
            .store
            .remember_logged_in_client(&s.sid, &row.client_id, now)
            .await
        {
            Ok(true) => {}
            // The session ended a moment ago: sign in again, then confirm.
            Ok(false) => return next_step(&state, jar, &row, None, None).await,
            Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.into()),
        }
    }
    let grant = allow.then(|| GrantData {
        scope: row.scope.clone(),
        auth_time: Some(s.auth_time),
        sid: Some(s.sid.clone()),
        acr: None,
        amr: s.amr.clone(),
        claims: None,
        audiences: Vec::new(),
        requested_acr_values: None,
    });
    match state
        .core
        .store
        .decide_device(&row.user_code, &user.id, grant.as_ref(), now)
        .await
    {
        Ok(true) => {}
        // Decided in another tab or on another node a moment ago.
        Ok(false) => {
            let typed = form.get("user_code").unwrap_or_default();
            return entry_page(&state, jar, typed, Some(CodeProblem::AlreadyDecided));
        }
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.into()),
    }
    let kind = if allow {
        "device.approved"
    } else {
        "device.denied"
    };
    audit(
        &state.core,
        kind,
        Some(&user.id),
        Some(&row.client_id),
        &ip,
        state.now(),
    )
    .await;
    let (title, message) = if allow {
        (
            "Device connected".to_owned(),
            format!(
                "{client_name} can now use your account on your device. Return to your device: it continues on its own within a few seconds. You can close this page."
            ),
        )
    } else {
        (
            "Request denied".to_owned(),
            format!(
                "{client_name} was not given access. Your device will say the request was denied. If you did not start it, there is nothing else to do."
            ),
        )
    };
    let body = page(
        StatusCode::OK,
        &MessagePage {
            theme: Theme::from(&state),
            title: &title,
            message: &message,
        },
    );
    (jar, body).into_response()
}
