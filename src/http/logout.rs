//! OpenID Connect RP-Initiated Logout 1.0: `end_session_endpoint` at /logout.
//!
//! A logout link is easy to plant on any page, so the session ends straight away only when
//! the request proves it comes from an app the user signed in to: an `id_token_hint` we
//! signed, for the user of this browser's session (§2, §6). Anything else gets a
//! confirmation page first.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use crate::crypto::jwt::{self, TYP_ID_TOKEN};
use crate::model::{Client, Session, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::redirect::Delivery;
use crate::state::AppState;

use super::authorize::csrf_failed;
use super::client_ip::ClientIp;
use super::respond::{deliver, error_page, error_page_saying, page};
use super::session;
use super::views::{LogoutPage, MessagePage, Theme};
use crate::core::audit::audit;

/// The claims of an id_token_hint that logout relies on.
#[derive(Debug, Deserialize)]
struct HintClaims {
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

/// A checked logout request: who asked, and where (if anywhere) to send the browser after.
struct Request {
    client: Option<Arc<Client>>,
    hint: Option<HintClaims>,
    /// Registered for `client`, exactly (§3); None means no redirect.
    redirect: Option<String>,
    /// Set when the app asked for a redirect we must refuse, to say why on the page.
    refused_redirect: bool,
    state: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    match Params::parse(raw.as_bytes(), state.config.limits.params()) {
        Ok(p) => run(state, ip, jar, p).await,
        Err(e) => bad_logout_request(&state, &e),
    }
}

/// §2: the OP MUST support both GET and POST (form-encoded) at the endpoint.
pub async fn post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    match Params::parse(&body, state.config.limits.params()) {
        Ok(p) => run(state, ip, jar, p).await,
        Err(e) => bad_logout_request(&state, &e),
    }
}

async fn run(state: AppState, ip: String, jar: CookieJar, params: Params) -> Response {
    let req = match check(&state, &params).await {
        Ok(r) => r,
        Err(e) => return bad_logout_request(&state, &e),
    };
    let session = match session::current(&state, &jar).await {
        Ok(s) => s,
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    match session {
        // Nothing to end: go back to the app, or say so.
        None => finish(&state, jar, &req, false),
        Some((s, user)) if hint_matches(req.hint.as_ref(), &s, &user) => {
            end(&state, jar, &ip, &req, Some(&user)).await
        }
        Some((_, user)) => confirm_page(&state, jar, &req, &user),
    }
}

/// The hint names this browser's user, and this very session when it carries a `sid`.
fn hint_matches(hint: Option<&HintClaims>, s: &Session, user: &User) -> bool {
    hint.is_some_and(|h| h.sub == user.id && h.sid.as_deref().is_none_or(|sid| sid == s.sid))
}

/// Validate the parameters (§2) before anything happens.
async fn check(state: &AppState, params: &Params) -> OAuthResult<Request> {
    let hint = match params.get("id_token_hint") {
        // §2: the OP need not reject a hint whose exp has passed; only its signature and
        // issuer matter here, so expiry is not checked.
        Some(t) => Some(
            jwt::verify::<HintClaims>(state.core.tokens.keys(), state.issuer(), t, TYP_ID_TOKEN, None)
                .map_err(|_| {
                    OAuthError::invalid_request(
                        "id_token_hint is not an ID token issued by this server (bad signature, issuer or format)",
                    )
                })?,
        ),
        None => None,
    };
    let hint_client = hint.as_ref().and_then(|h| h.aud.first());
    let client_id = match (params.get("client_id"), hint_client) {
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
            state
                .core
                .clients
                .get(&id)
                .await?
                .filter(|c| c.enabled)
                .ok_or_else(|| OAuthError::invalid_request(format!("unknown client_id `{id}`")))?,
        ),
        None => None,
    };
    let (redirect, refused_redirect) = match params.get("post_logout_redirect_uri") {
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
    Ok(Request {
        client,
        hint,
        redirect,
        refused_redirect,
        state: params.get("state").map(str::to_owned),
    })
}

fn confirm_page(state: &AppState, jar: CookieJar, req: &Request, user: &User) -> Response {
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
            username: &user.username,
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
) -> Response {
    let Ok(form) = Params::parse(&body, state.config.limits.params()) else {
        return csrf_failed(&state);
    };
    if !session::csrf_ok(&state, &jar, session::Bind::Session, form.get("csrf")) {
        return csrf_failed(&state);
    }
    // The carried redirect is checked again: the form is the browser's to change.
    let pairs: Vec<(String, String)> = ["client_id", "post_logout_redirect_uri", "state"]
        .into_iter()
        .filter_map(|k| {
            form.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let req = match Params::from_pairs(pairs, state.config.limits.params()) {
        Ok(p) => match check(&state, &p).await {
            Ok(r) => r,
            Err(e) => return bad_logout_request(&state, &e),
        },
        Err(e) => return bad_logout_request(&state, &e),
    };
    if form.get("decision") != Some("logout") {
        let body = page(
            StatusCode::OK,
            &MessagePage {
                theme: Theme::from(&state),
                title: "You are still signed in",
                message: "Nothing changed. You can close this page.",
            },
        );
        return (jar, body).into_response();
    }
    let user = match session::current(&state, &jar).await {
        Ok(s) => s.map(|(_, u)| u),
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    end(&state, jar, &ip, &req, user.as_ref()).await
}

/// End the session, revoke what the config says, audit, and finish.
async fn end(
    state: &AppState,
    jar: CookieJar,
    ip: &str,
    req: &Request,
    user: Option<&User>,
) -> Response {
    let (jar, sid) = match session::end(state, jar).await {
        Ok(x) => x,
        Err(e) => return error_page(state, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    tracing::info!(ended = sid.is_some(), "session ended by logout");
    audit(
        &state.core,
        "logout",
        user.map(|u| u.id.as_str()),
        req.client.as_ref().map(|c| c.id.as_str()),
        ip,
        state.now(),
    )
    .await;
    finish(state, jar, req, true)
}

/// Redirect to the registered post-logout URI with `state` (§3), or show a page.
fn finish(state: &AppState, jar: CookieJar, req: &Request, ended: bool) -> Response {
    if let Some(uri) = &req.redirect
        && let Ok(mut url) = url::Url::parse(uri)
    {
        if let Some(s) = &req.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        return (jar, deliver(state, Delivery::Redirect(url.into()))).into_response();
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
fn bad_logout_request(state: &AppState, e: &OAuthError) -> Response {
    error_page_saying(
        state,
        StatusCode::BAD_REQUEST,
        e,
        "This sign-out link is not valid",
        "The app that sent you here asked to sign you out in a way we cannot accept, so nothing was changed. Close this page, or go back to the app and sign out from there again.",
    )
}
