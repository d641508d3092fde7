//! Turning protocol results into HTTP: JSON errors (RFC 6749 §5.2, RFC 6750 §3), redirects
//! and form_post pages. With `pages::PageError` (the HTML error page), the only place error
//! responses are shaped.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::crypto::secret::sha256;
use crate::oauth::error::{Challenge, OAuthError, Retry};
use crate::oauth::redirect::{Delivery, ReturnTo};
use crate::state::AppState;

use super::views::{FormPostPage, Theme};

/// The cause of an internal error, carried from the response to the one place that logs it
/// (`http::log_internal_errors`, inside the request's span). Never serialized.
#[derive(Clone)]
pub struct InternalCause(pub String);

/// Attach `e`'s internal cause, if it has one, for the log.
pub fn with_cause(mut r: Response, e: &OAuthError) -> Response {
    if let Some(c) = e.cause() {
        r.extensions_mut().insert(InternalCause(c.to_owned()));
    }
    r
}

/// RFC 6749 §5.1: token responses (and errors) must not be cached.
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The JSON answer of a machine endpoint (token, device authorization, revocation,
/// introspection, UserInfo), never cached.
pub struct NoStore<T>(pub T);

impl<T: serde::Serialize> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut r = axum::Json(self.0).into_response();
        no_store(r.headers_mut());
        r
    }
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
        with_cause(resp, &self)
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

/// What script a page may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripts {
    None,
    /// The form_post page's one inline script, by its hash.
    FormPost,
    /// This server's own script files (the passkey pages' `/static/webauthn.js`), never
    /// inline script.
    OwnFiles,
}

/// The page CSP: nothing from elsewhere, and script only as `scripts` allows.
pub fn csp(scripts: Scripts) -> String {
    let script = match scripts {
        Scripts::None => "'none'".to_owned(),
        Scripts::FormPost => script_hash(),
        Scripts::OwnFiles => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; script-src {script}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A page that runs this server's own scripts (a passkey ceremony).
pub fn with_scripts(mut r: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&csp(Scripts::OwnFiles)) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
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
            if let Ok(v) = HeaderValue::from_str(&csp(Scripts::FormPost)) {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
    }
}

/// Send the user back to the client with an error (after the redirect URI is verified,
/// RFC 6749 §4.1.2.1).
pub fn deliver_error(state: &AppState, ret: &ReturnTo, e: &OAuthError) -> Response {
    with_cause(deliver(state, ret.error(e)), e)
}

/// Send the user back to the client with whatever came of the request.
pub fn deliver_result(
    state: &AppState,
    ret: &ReturnTo,
    result: Result<Delivery, OAuthError>,
) -> Response {
    match result {
        Ok(d) => deliver(state, d),
        Err(e) => deliver_error(state, ret, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An internal error's cause rides on the response for the log, never in it.
    #[tokio::test]
    async fn internal_causes_stay_out_of_the_response() {
        let r = OAuthError::internal("pool exploded at db.internal:5432").into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = r.extensions().get::<InternalCause>().map(|c| c.0.clone());
        assert_eq!(cause.as_deref(), Some("pool exploded at db.internal:5432"));
        let headers = format!("{:?}", r.headers());
        let body = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("server_error"), "{body}");
        assert!(!body.contains("db.internal") && !headers.contains("db.internal"));
        let plain = OAuthError::invalid_request("x").into_response();
        assert!(plain.extensions().get::<InternalCause>().is_none());
    }
}
