//! The one protocol error type. RFC wire strings are spelled in `ErrorCode::as_str` only,
//! HTTP statuses in `ErrorCode::status` only.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Error codes of RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 8628 §3.5
/// and OIDC Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    InvalidTarget,
    /// OpenID Connect Core Unmet Authentication Requirements 1.0 section 2: the sign-in
    /// could not reach what the request required (an essential `acr`).
    UnmetAuthenticationRequirements,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
        }
    }

    /// HTTP status when the error is the body of a direct response.
    pub fn status(self) -> u16 {
        match self {
            // RFC 6749 §5.2: invalid_client MAY be 401; MUST be when Authorization was used.
            // RFC 6750 §3.1: invalid_token is 401.
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which `WWW-Authenticate` challenge a 401/403 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    None,
    /// RFC 6749 §5.2 / RFC 9110 §11.6.1 for client authentication.
    Basic,
    /// RFC 6750 §3 for protected resources.
    Bearer,
}

#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Human-readable text for the developer (`error_description`); never secrets or internals.
    pub description: Cow<'static, str>,
    pub challenge: Challenge,
    /// Seconds for `Retry-After` (RFC 9110 section 10.2.3), and whether the caller is being
    /// rate limited (429, RFC 6585 section 4) rather than the server being busy (503).
    pub retry: Option<Retry>,
    /// What went wrong inside, for `server_error`: logged once where the response is made
    /// (`http::log_internal_errors`), never sent to the client. Kept rather than logged when
    /// the error is built, because a caller may still handle the error (fall back, map it to
    /// another code), and the log line should learn the status the client finally got.
    cause: Option<Arc<Cause>>,
}

/// The text of an internal failure, as an error so `source()` chains show it.
#[derive(Debug)]
struct Cause(String);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// 503: the server cannot take more of this work right now.
    Busy(u64),
    /// 429: this caller (or this client, or this address) has made too many failed attempts.
    Throttled(u64),
}

pub type OAuthResult<T> = Result<T, OAuthError>;

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        let challenge = match code {
            ErrorCode::InvalidClient => Challenge::Basic,
            ErrorCode::InvalidToken | ErrorCode::InsufficientScope => Challenge::Bearer,
            _ => Challenge::None,
        };
        OAuthError {
            code,
            description: wire_description(description.into()),
            challenge,
            retry: None,
            cause: None,
        }
    }

    /// 503 `temporarily_unavailable` with `Retry-After`.
    pub fn busy(d: impl Into<Cow<'static, str>>, retry_after: u64) -> Self {
        let mut e = Self::new(ErrorCode::TemporarilyUnavailable, d);
        e.retry = Some(Retry::Busy(retry_after.max(1)));
        e
    }

    /// 429 with `Retry-After`: too many failed attempts from this caller.
    pub fn throttled(d: impl Into<Cow<'static, str>>, retry_after: u64) -> Self {
        let mut e = Self::new(ErrorCode::TemporarilyUnavailable, d);
        e.retry = Some(Retry::Throttled(retry_after.max(1)));
        e
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn access_denied(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::AccessDenied, d)
    }
    pub fn invalid_token(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidToken, d)
    }

    /// An internal failure. The client only ever sees a fixed text; the cause travels with
    /// the error and is logged once, inside the request's span, by whoever turns it into a
    /// response.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut e = Self::new(
            ErrorCode::ServerError,
            "The server hit an unexpected problem; it has been logged. Try again.",
        );
        e.cause = Some(Arc::new(Cause(cause.to_string())));
        e
    }

    /// The internal cause of a `server_error`, for the log only.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref().map(|c| c.0.as_str())
    }

    pub fn status(&self) -> u16 {
        match self.retry {
            Some(Retry::Throttled(_)) => 429,
            _ => self.code.status(),
        }
    }
}

/// RFC 6749 section 5.2: error_description uses only %x20-21 / %x23-5B / %x5D-7E (printable
/// ASCII without `"` and `\`).
fn wire_char(c: char) -> bool {
    matches!(c, ' '..='!' | '#'..='[' | ']'..='~')
}

pub fn is_wire_safe(s: &str) -> bool {
    s.chars().all(wire_char)
}

/// Every description goes through here (`OAuthError::new`), so no message, present or
/// future, can put a character on the wire that RFC 6749 section 5.2 forbids: a section
/// sign becomes the word, anything else not allowed becomes `?`.
pub fn wire_description(d: Cow<'static, str>) -> Cow<'static, str> {
    if is_wire_safe(&d) {
        return d;
    }
    Cow::Owned(
        d.replace('\u{a7}', "section ")
            .replace("section  ", "section ")
            .chars()
            .map(|c| if wire_char(c) { c } else { '?' })
            .collect(),
    )
}

/// Untrusted text (a parameter name, a value) made fit to quote in an error_description:
/// characters RFC 6749 section 5.2 does not allow become `?`, and it is cut to `max` chars.
pub fn wire_safe(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if wire_char(c) { c } else { '?' })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        OAuthError::internal(format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever text a code path builds a description from, the wire gets only what RFC 6749
    /// section 5.2 allows, and the teaching text survives.
    #[test]
    fn every_description_is_wire_safe() {
        let e = OAuthError::invalid_request(
            "see RFC 6749 \u{a7}3.1 and \u{a7} 5.2, \"quoted\" \\ caf\u{e9}\n",
        );
        assert!(is_wire_safe(&e.description), "{:?}", e.description);
        assert_eq!(
            e.description,
            "see RFC 6749 section 3.1 and section 5.2, ?quoted? ? caf??"
        );
        let fine = OAuthError::invalid_grant("already fine");
        assert!(matches!(fine.description, Cow::Borrowed("already fine")));
        for e in [
            OAuthError::busy("busy \u{a7}1", 2),
            OAuthError::throttled("slow \u{a7}1", 2),
            OAuthError::internal("x \u{a7}"),
        ] {
            assert!(is_wire_safe(&e.description), "{:?}", e.description);
        }
    }

    /// The cause of an internal error stays out of everything the client sees.
    #[test]
    fn internal_causes_are_kept_not_shown() {
        let e = OAuthError::internal("disk on fire at /var/lib/x");
        assert_eq!(e.cause(), Some("disk on fire at /var/lib/x"));
        assert!(!e.description.contains("disk"));
        assert!(!e.to_string().contains("disk"));
        let chained = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(chained.as_deref(), Some("disk on fire at /var/lib/x"));
        assert_eq!(OAuthError::invalid_request("x").cause(), None);
    }

    #[test]
    fn untrusted_text_is_made_wire_safe() {
        assert_eq!(wire_safe("a\u{a7}\"\\\nb", 10), "a????b");
        assert_eq!(wire_safe("abcdef", 3), "abc...");
        assert!(is_wire_safe(&wire_safe("\u{a7}\u{7f}\0x", 10)));
        assert!(!is_wire_safe("RFC 6749 \u{a7}3.1"));
    }

    #[test]
    fn wire_strings_and_statuses_are_pinned() {
        let cases = [
            (ErrorCode::InvalidRequest, "invalid_request", 400),
            (ErrorCode::InvalidClient, "invalid_client", 401),
            (ErrorCode::InvalidGrant, "invalid_grant", 400),
            (ErrorCode::UnauthorizedClient, "unauthorized_client", 400),
            (
                ErrorCode::UnsupportedGrantType,
                "unsupported_grant_type",
                400,
            ),
            (
                ErrorCode::UnsupportedResponseType,
                "unsupported_response_type",
                400,
            ),
            (ErrorCode::InvalidScope, "invalid_scope", 400),
            (ErrorCode::AccessDenied, "access_denied", 400),
            (ErrorCode::ServerError, "server_error", 500),
            (
                ErrorCode::TemporarilyUnavailable,
                "temporarily_unavailable",
                503,
            ),
            (ErrorCode::LoginRequired, "login_required", 400),
            (ErrorCode::ConsentRequired, "consent_required", 400),
            (ErrorCode::InteractionRequired, "interaction_required", 400),
            (ErrorCode::RequestNotSupported, "request_not_supported", 400),
            (
                ErrorCode::RequestUriNotSupported,
                "request_uri_not_supported",
                400,
            ),
            (ErrorCode::InvalidToken, "invalid_token", 401),
            (ErrorCode::InsufficientScope, "insufficient_scope", 403),
            (
                ErrorCode::UnsupportedTokenType,
                "unsupported_token_type",
                400,
            ),
            (
                ErrorCode::AuthorizationPending,
                "authorization_pending",
                400,
            ),
            (ErrorCode::SlowDown, "slow_down", 400),
            (ErrorCode::ExpiredToken, "expired_token", 400),
            (ErrorCode::InvalidTarget, "invalid_target", 400),
            (
                ErrorCode::UnmetAuthenticationRequirements,
                "unmet_authentication_requirements",
                400,
            ),
        ];
        for (code, s, status) in cases {
            assert_eq!(code.as_str(), s);
            assert_eq!(code.status(), status, "{s}");
        }
    }
}
