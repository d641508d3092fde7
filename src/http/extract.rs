//! Extractors for the machine endpoints: the form body (RFC 6749 §3.2), the client it
//! authenticates (§2.3), and a bearer token (RFC 6750 §2). Each rejects with the protocol's
//! JSON error, so a handler starts from typed values and never shapes an error itself.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};

use crate::core::client_auth;
use crate::model::Client;
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::state::AppState;

use super::client_ip::ClientIp;

/// Why an API extractor refused a request: the protocol's error, or a body that could not
/// be read at all (too large: 413, as axum answers it), which is not a protocol matter.
pub enum ApiRejection {
    OAuth(OAuthError),
    Body(BytesRejection),
}

impl From<OAuthError> for ApiRejection {
    fn from(e: OAuthError) -> Self {
        ApiRejection::OAuth(e)
    }
}

impl IntoResponse for ApiRejection {
    fn into_response(self) -> Response {
        match self {
            ApiRejection::OAuth(e) => e.into_response(),
            ApiRejection::Body(e) => e.into_response(),
        }
    }
}

/// Whether the body is a form. Media types are case-insensitive (RFC 9110 §8.3.1).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

async fn body(req: Request, state: &AppState) -> Result<Bytes, ApiRejection> {
    Bytes::from_request(req, state)
        .await
        .map_err(ApiRejection::Body)
}

/// A form body, as RFC 6749 §3.2 requires for the token endpoint and the endpoints built
/// like it, within the configured parameter limits; a repeated parameter is refused (§3.2).
pub struct OAuthForm(pub Params);

impl FromRequest<AppState> for OAuthForm {
    type Rejection = ApiRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiRejection> {
        let form = is_form(req.headers());
        let bytes = body(req, state).await?;
        if !form {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded (RFC 6749 section 3.2)",
            )
            .into());
        }
        Ok(OAuthForm(Params::parse(
            &bytes,
            state.config.limits.params(),
        )?))
    }
}

/// The form of a client-authenticated endpoint (token, revocation, introspection, device
/// authorization) and the client it authenticated, checked once (RFC 6749 §2.3).
pub struct AuthenticatedClient {
    pub client: Arc<Client>,
    pub params: Params,
    /// Where the request came from, for the throttles and the audit log.
    pub ip: IpAddr,
}

impl FromRequest<AppState> for AuthenticatedClient {
    type Rejection = ApiRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiRejection> {
        let (mut parts, body) = req.into_parts();
        let ClientIp(ip) = ClientIp::from_request_parts(&mut parts, state).await?;
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let OAuthForm(params) =
            OAuthForm::from_request(Request::from_parts(parts, body), state).await?;
        let client = client_auth::authenticate(
            &state.core,
            authorization.as_deref(),
            &params,
            ip,
            state.now(),
        )
        .await?;
        Ok(AuthenticatedClient { client, params, ip })
    }
}

/// The access token of a protected-resource request (RFC 6750 §2): from the
/// `Authorization` header or, on a POST, the form body; never both.
pub struct BearerToken(pub String);

impl FromRequest<AppState> for BearerToken {
    type Rejection = ApiRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiRejection> {
        let from_header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials)
            .map(str::to_owned);
        let from_body = if req.method() == Method::POST && is_form(req.headers()) {
            let bytes = body(req, state).await?;
            Params::parse(&bytes, state.config.limits.params())?
                .get("access_token")
                .map(str::to_owned)
        } else {
            None
        };
        Ok(BearerToken(one_token(from_header, from_body)?))
    }
}

/// The credentials of a `Bearer` Authorization header; the scheme name is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn one_token(from_header: Option<String>, from_body: Option<String>) -> OAuthResult<String> {
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "the access token was sent twice (header and body); RFC 6750 §2 allows one method",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(OAuthError::invalid_token(
            "no access token: send it as `Authorization: Bearer <token>` (RFC 6750 §2.1)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_credentials("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("bearer abc "), Some("abc"));
        assert_eq!(bearer_credentials("BEARER abc"), Some("abc"));
        assert_eq!(bearer_credentials("Basic abc"), None);
        assert_eq!(bearer_credentials("Bearerabc"), None);
    }

    #[test]
    fn form_media_type_is_case_insensitive() {
        let mut h = HeaderMap::new();
        assert!(!is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
                .parse()
                .expect("header"),
        );
        assert!(is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json".parse().expect("header"),
        );
        assert!(!is_form(&h));
    }
}
