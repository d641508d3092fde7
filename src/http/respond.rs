//! Turning protocol results into HTTP: JSON errors (RFC 6749 §5.2, RFC 6750 §3), redirects,
//! form_post pages and HTML error pages. The only place error responses are shaped.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::crypto::secret::sha256;
use crate::oauth::error::{Challenge, ErrorCode, OAuthError, Retry};
use crate::oauth::redirect::Delivery;
use crate::state::AppState;

use super::views::{ErrorPage, FormPostPage, Theme};

/// RFC 6749 §5.1: token responses (and errors) must not be cached.
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A JSON answer of a machine endpoint (token, device authorization, revocation,
/// introspection), never cached.
pub fn json_no_store(v: &impl serde::Serialize) -> Response {
    let mut r = axum::Json(v).into_response();
    no_store(r.headers_mut());
    r
}

/// RFC 6750 section 3: the quoted error_description allows what RFC 6749 section 5.2
/// allows, which every description already is; the header applies the same rule again
/// rather than trust that `description` was never changed after it was built.
fn quote(s: &str) -> String {
    crate::oauth::error::wire_description(std::borrow::Cow::Owned(s.to_owned())).into_owned()
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        no_store(h);
        let challenge = match self.challenge {
            Challenge::Basic => Some("Basic realm=\"latchkey\"".to_owned()),
            // RFC 6750 §3: the Bearer challenge names the error.
            Challenge::Bearer => Some(format!(
                "Bearer realm=\"latchkey\", error=\"{}\", error_description=\"{}\"",
                self.code.as_str(),
                quote(&self.description)
            )),
            Challenge::None => None,
        };
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        if let Some(Retry::Busy(s) | Retry::Throttled(s)) = self.retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// The one inline script of the site: submits the form_post form.
pub const FORM_POST_SCRIPT: &str = "document.getElementById('f').submit();";

fn script_hash() -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(sha256(FORM_POST_SCRIPT.as_bytes()))
    )
}

/// The page CSP: nothing from elsewhere, no inline script except a hashed one.
pub fn csp(with_script: bool) -> String {
    let script = if with_script {
        script_hash()
    } else {
        "'none'".to_owned()
    };
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; script-src {script}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Render a page with its status; security headers are added by the layer in `http::mod`.
pub fn page<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (status, axum::response::Html(html)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
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

/// An HTML error page for errors that must not be redirected (RFC 6749 §4.1.2.1).
pub fn error_page(state: &AppState, status: StatusCode, e: &OAuthError) -> Response {
    let (title, message) = human(e.code);
    error_page_saying(state, status, e, title, message)
}

/// An error page whose words for the person (`title`, `message`) say what happened where
/// the error code alone cannot (an expired form, a form that failed its CSRF check, a
/// sign-out link): the technical code and description stay below, for the developer.
pub fn error_page_saying(
    state: &AppState,
    status: StatusCode,
    e: &OAuthError,
    title: &str,
    message: &str,
) -> Response {
    // Descriptions quote names in backticks, which read as Markdown; a page shows quotes.
    let description = e.description.replace('`', "\"");
    page(
        status,
        &ErrorPage {
            theme: Theme::from(state),
            title,
            message,
            code: e.code.as_str(),
            description: &description,
        },
    )
}

/// Send the user back to the client.
pub fn deliver(state: &AppState, d: Delivery) -> Response {
    match d {
        // RFC 9700 §4.12: 303 so a POSTed login form is never re-posted to the client.
        Delivery::Redirect(url) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&url) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Delivery::FormPost { action, fields } => {
            let mut r = page(
                StatusCode::OK,
                &FormPostPage {
                    theme: Theme::from(state),
                    action: &action,
                    fields: &fields,
                    script: FORM_POST_SCRIPT,
                },
            );
            if let Ok(v) = HeaderValue::from_str(&csp(true)) {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
    }
}
