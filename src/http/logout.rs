//! OpenID Connect RP-Initiated Logout 1.0: `end_session_endpoint` at /logout, and its
//! confirmation page. What a request may do is decided in `core::logout`; this reads the
//! request, checks the confirmation form's CSRF value and renders.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use std::net::IpAddr;

use crate::core::logout::{self, Action, LogoutParams, LogoutRequest};
use crate::model::User;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::redirect::Delivery;
use crate::state::AppState;

use super::client_ip::ClientIp;
use super::pages::{OrPage, PageError, parse_form};
use super::respond::{deliver, page};
use super::session;
use super::views::{LogoutPage, MessagePage, Theme};

pub async fn get(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let raw = raw.unwrap_or_default();
    let params = Params::parse(raw.as_bytes(), state.config.limits.params())
        .map_err(|e| bad_logout_request(&state, e))?;
    run(&state, ip, jar, &params).await
}

/// §2: the OP MUST support both GET and POST (form-encoded) at the endpoint.
pub async fn post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let params = parse_form(&state, &body).map_err(|e| bad_logout_request(&state, e))?;
    run(&state, ip, jar, &params).await
}

async fn run(
    state: &AppState,
    ip: IpAddr,
    jar: CookieJar,
    params: &Params,
) -> Result<Response, PageError> {
    let req = logout::check(&state.core, LogoutParams::from(params))
        .await
        .map_err(|e| bad_logout_request(state, e))?;
    let session = session::current(state, &jar).await.or_page(state)?;
    let user = session.as_ref().map(|(_, u)| u);
    match logout::decide(&req, session.as_ref().map(|(s, u)| (s, u))) {
        // Nothing to end: go back to the app, or say so.
        Action::NotSignedIn => Ok(finish(state, jar, &req, false)),
        Action::End => end(state, jar, ip, &req, user).await,
        Action::Confirm => Ok(confirm_page(state, jar, &req, user)),
    }
}

fn confirm_page(
    state: &AppState,
    jar: CookieJar,
    req: &LogoutRequest,
    user: Option<&User>,
) -> Response {
    let (jar, csrf) = session::csrf(state, jar, session::Bind::Session);
    let client_id = req.client.as_ref().map(|c| c.id.as_str()).unwrap_or("");
    let mut hidden: Vec<(&str, &str)> = vec![("client_id", client_id)];
    if let Some(r) = &req.redirect {
        hidden.push(("post_logout_redirect_uri", r));
    }
    if let Some(s) = &req.state {
        hidden.push(("state", s));
    }
    let body = page(
        StatusCode::OK,
        &LogoutPage {
            theme: Theme::from(state),
            client_name: req.client.as_ref().map(|c| c.name()),
            username: user.map_or("", |u| u.username.as_str()),
            csrf: &csrf,
            hidden: &hidden,
        },
    );
    (jar, body).into_response()
}

/// POST /logout/confirm: the person pressed a button on the confirmation page.
pub async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = parse_form(&state, &body).map_err(|_| PageError::csrf_failed(&state))?;
    if !session::csrf_ok(&state, &jar, session::Bind::Session, form.get("csrf")) {
        return Err(PageError::csrf_failed(&state));
    }
    // The carried request is checked again: the form is the browser's to change.
    let carried = |k: &str| form.get(k).filter(|v| !v.is_empty());
    let params = LogoutParams {
        id_token_hint: None,
        client_id: carried("client_id"),
        post_logout_redirect_uri: carried("post_logout_redirect_uri"),
        state: carried("state"),
    };
    let req = logout::check(&state.core, params)
        .await
        .map_err(|e| bad_logout_request(&state, e))?;
    if form.get("decision") != Some("logout") {
        let body = page(
            StatusCode::OK,
            &MessagePage {
                theme: Theme::from(&state),
                title: "You are still signed in",
                message: "Nothing changed. You can close this page.",
            },
        );
        return Ok((jar, body).into_response());
    }
    let session = session::current(&state, &jar).await.or_page(&state)?;
    end(&state, jar, ip, &req, session.as_ref().map(|(_, u)| u)).await
}

/// End the browser's session (revoking what the config says, auditing), and finish.
async fn end(
    state: &AppState,
    jar: CookieJar,
    ip: IpAddr,
    req: &LogoutRequest,
    user: Option<&User>,
) -> Result<Response, PageError> {
    let id = session::id_hash(state, &jar);
    logout::end(&state.core, id.as_deref(), req, user, ip, state.now())
        .await
        .or_page(state)?;
    Ok(finish(state, session::clear(state, jar), req, true))
}

/// Redirect to the registered post-logout URI with `state` (§3), or show a page.
fn finish(state: &AppState, jar: CookieJar, req: &LogoutRequest, ended: bool) -> Response {
    if let Some(url) = req.return_uri() {
        return (jar, deliver(state, Delivery::Redirect(url))).into_response();
    }
    let mut message = if ended {
        "You have been signed out. You can close this page.".to_owned()
    } else {
        "You are not signed in here. You can close this page.".to_owned()
    };
    if req.refused_redirect {
        message.push_str(
            " The app asked to send you to an address it has not registered for after sign-out, so you stay here.",
        );
    }
    let body = page(
        StatusCode::OK,
        &MessagePage {
            theme: Theme::from(state),
            title: "Signed out",
            message: &message,
        },
    );
    (jar, body).into_response()
}

/// A sign-out request we cannot act on: worded for signing out, not signing in.
fn bad_logout_request(state: &AppState, e: OAuthError) -> PageError {
    PageError::new(state, e).saying(
        "This sign-out link is not valid",
        "The app that sent you here asked to sign you out in a way we cannot accept, so nothing was changed. Close this page, or go back to the app and sign out from there again.",
    )
}
