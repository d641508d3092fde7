//! Parsing and validating an authorization request (RFC 6749 §4.1.1, §4.2.1, OIDC Core
//! §3.1.2.1, §3.2.2.1, §3.3.2.1, RFC 7636 §4.3). Until client_id and redirect_uri are
//! verified, an error is a page; after that it goes back to the client.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::is_loopback;
use crate::core::Core;
use crate::crypto::jwt::{self, TYP_ID_TOKEN};
use crate::model::Client;
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult, wire_safe};
use crate::oauth::params::Params;
use crate::oauth::pkce;
use crate::oauth::prompt::{Display, Prompt};
use crate::oauth::redirect::{Delivery, ReturnTo};
use crate::oauth::scope::request_order;
use crate::oauth::types::{ResponseMode, ResponseType, ScopeSet};

/// A validated authorization request, stored while the user logs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub response_type: ResponseType,
    pub response_mode: ResponseMode,
    pub scope: ScopeSet,
    /// The scopes in the order the request listed them, for the consent page (the set
    /// above is sorted). Empty when the client's defaults were used. Absent from requests
    /// stored by an older version, hence the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_order: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<pkce::Method>,
    pub prompt: Vec<Prompt>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`.
    pub hint_sub: Option<String>,
    pub acr_values: Option<String>,
    pub claims: Option<serde_json::Value>,
}

impl AuthorizationRequest {
    /// Where and how answers to this request go (RFC 9207: with our `iss`).
    pub fn return_to(&self, issuer: &str) -> ReturnTo {
        ReturnTo {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.response_mode,
            state: self.state.clone(),
            iss: issuer.to_owned(),
        }
    }

    pub fn has_prompt(&self, p: Prompt) -> bool {
        self.prompt.contains(&p)
    }
}

/// Longest accepted value, in bytes, of each free-form parameter kept with a pending
/// interaction. An unauthenticated `GET /authorize` is stored for `interaction_ttl` while the
/// user signs in, so these bound what a stranger can make the store keep; each is generous
/// for real clients. Other stored parameters are checked against the client's registration
/// (redirect_uri, scope) or a closed set (response_type, prompt), or have a fixed syntax
/// (code_challenge, max_age); `id_token_hint` is kept only as the `sub` it names, and
/// `ui_locales` and `display` are not kept at all.
const STORED_PARAM_CAPS: &[(&str, usize)] = &[
    // Opaque to us; SDKs send 32-64 characters, some pack a return URL or JSON in it.
    ("state", 2048),
    ("nonce", 512),
    // An e-mail address is at most 254 bytes (RFC 5321 section 4.5.3.1.3).
    ("login_hint", 512),
    ("acr_values", 512),
    // OIDC Core section 5.5: a few requested claims, each with a small object.
    ("claims", 4096),
];

/// Bound on the whole stored request (JSON), the sum of the caps above with room for JSON
/// escaping; checked before the interaction is written.
pub(super) const MAX_STORED_REQUEST_BYTES: usize = 12 * 1024;

/// An error before the redirect URI is trusted: shown as a page, never redirected
/// (RFC 6749 §4.1.2.1).
#[derive(Debug)]
pub struct PageError(pub OAuthError);

/// The outcome of validation: a request, or an error to redirect back with.
pub enum Validated {
    Ok(AuthorizationRequest, Arc<Client>),
    RedirectError(Delivery),
}

/// Redirect URIs match exactly (RFC 9700 §4.1.3: no pattern matching), except that a native
/// app's loopback IP redirect may use any port (RFC 8252 §7.3), because it listens on
/// whatever port the OS gives it.
///
/// Only public clients get the any-port rule: native apps are public clients (RFC 8252
/// §8.4), and a confidential web app registered at a loopback port must not have its codes
/// sent to another local process listening on some other port.
fn redirect_uri_matches(any_loopback_port: bool, registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    if !any_loopback_port {
        return false;
    }
    let (Ok(r), Ok(g)) = (Url::parse(registered), Url::parse(given)) else {
        return false;
    };
    r.scheme() == "http"
        && is_loopback(&r)
        && matches!(
            r.host(),
            Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))
        )
        && r.scheme() == g.scheme()
        && r.host() == g.host()
        && r.path() == g.path()
        && r.query() == g.query()
        && g.fragment().is_none()
}

/// `prompt` values this server acts on (OIDC Core section 3.1.2.1); discovery lists these.
pub const PROMPT_VALUES: [&str; 4] = {
    let [a, b, c, d] = Prompt::ALL;
    [a.as_str(), b.as_str(), c.as_str(), d.as_str()]
};
/// `display` values accepted (section 3.1.2.1): the pages are responsive, so all four are
/// one page.
pub const DISPLAY_VALUES: [&str; 4] = {
    let [a, b, c, d] = Display::ALL;
    [a.as_str(), b.as_str(), c.as_str(), d.as_str()]
};

pub async fn validate(core: &Core, p: &Params) -> Result<Validated, PageError> {
    let page = |d: String| PageError(OAuthError::invalid_request(d));
    let client_id = p.get("client_id").ok_or_else(|| {
        page("The request has no client_id, so we cannot tell which app sent you here.".into())
    })?;
    let client = match core
        .clients
        .get(client_id)
        .await
        .map_err(|e| PageError(e.into()))?
    {
        Some(c) if c.enabled => c,
        _ => {
            return Err(PageError(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "No app is registered with client_id `{client_id}` (or it has been disabled)."
                ),
            )));
        }
    };
    let uris = &client.settings.redirect_uris;
    let any_loopback_port = client.is_public();
    let (redirect_uri, redirect_uri_sent) = match p.get("redirect_uri") {
        Some(given)
            if uris
                .iter()
                .any(|r| redirect_uri_matches(any_loopback_port, r, given)) =>
        {
            (given.to_owned(), true)
        }
        Some(given) => {
            return Err(page(format!(
                "The app asked to send you back to `{given}`, which is not one of its registered redirect URIs. \
                 To protect you, we will not redirect there (RFC 6749 §4.1.2.1)."
            )));
        }
        None if uris.len() == 1 => (uris[0].clone(), false),
        None => {
            return Err(page(
                "The request has no redirect_uri and the app has several registered, so we do not know where to send you back."
                    .into(),
            ));
        }
    };
    // From here on the redirect URI is trusted: errors go back to the client.
    let response_type = p.get("response_type").map(ResponseType::parse);
    let mode_param = p.get("response_mode");
    let default_mode = match response_type {
        Some(Ok(rt)) => rt.default_mode(),
        _ => ResponseMode::Query,
    };
    let parsed_mode = mode_param.map(str::parse::<ResponseMode>);
    let response_mode = match parsed_mode {
        Some(Ok(m)) => m,
        _ => default_mode,
    };
    let ret = ReturnTo {
        redirect_uri: redirect_uri.clone(),
        mode: response_mode,
        state: p.get("state").map(str::to_owned),
        iss: core.tokens.issuer().to_owned(),
    };
    match check(
        core,
        &client,
        p,
        response_type,
        parsed_mode,
        response_mode,
        redirect_uri,
        redirect_uri_sent,
    ) {
        Ok(req) => Ok(Validated::Ok(req, client)),
        Err(e) => Ok(Validated::RedirectError(ret.error(&e))),
    }
}

#[allow(clippy::too_many_arguments)]
fn check(
    core: &Core,
    client: &Client,
    p: &Params,
    response_type: Option<Result<ResponseType, ()>>,
    parsed_mode: Option<Result<ResponseMode, ()>>,
    response_mode: ResponseMode,
    redirect_uri: String,
    redirect_uri_sent: bool,
) -> OAuthResult<AuthorizationRequest> {
    // RFC 6749 section 4.1.2.1: a malformed (here: oversized) request is invalid_request,
    // sent back to the verified redirect URI.
    for (name, max) in STORED_PARAM_CAPS {
        if p.get(name).is_some_and(|v| v.len() > *max) {
            return Err(OAuthError::invalid_request(format!(
                "the `{name}` parameter is longer than {max} bytes"
            )));
        }
    }
    // OIDC Core §6: request objects are optional; say so with the specific codes.
    if p.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects (the `request` parameter) are not supported",
        ));
    }
    if p.get("request_uri").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "the `request_uri` parameter is not supported",
        ));
    }
    let response_type = match response_type {
        None => {
            return Err(OAuthError::invalid_request(
                "response_type is required (use `code`)",
            ));
        }
        Some(Ok(rt)) => rt,
        Some(Err(())) => {
            let raw = p.get("response_type").unwrap_or_default();
            let why = if raw == "token" {
                "response_type=token is not supported: the implicit grant returning access tokens in the URL is deprecated by RFC 9700 §2.1.2. Use the authorization code flow with PKCE."
                    .to_owned()
            } else {
                format!(
                    "response_type `{}` is not supported; use one of: {}",
                    wire_safe(raw, 40),
                    ResponseType::ALL
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(OAuthError::new(ErrorCode::UnsupportedResponseType, why));
        }
    };
    if !client.allows_response_type(response_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "client `{}` is not registered for response_type `{}`",
            client.id,
            response_type.as_str()
        )));
    }
    if let Some(Err(())) = parsed_mode {
        return Err(OAuthError::invalid_request(
            "response_mode must be query, fragment or form_post",
        ));
    }
    // OAuth 2.0 Multiple Response Types sections 2.1 and 5: tokens must never travel in the
    // query. The error goes back in the mode asked for: it carries no token.
    if response_type.has_token() && response_mode == ResponseMode::Query {
        return Err(OAuthError::invalid_request(
            "response_mode=query cannot carry tokens (they would end up in logs and Referer headers); use form_post or fragment",
        ));
    }
    let scope = client.requested_scope(p.get("scope"))?;
    // RFC 6749 section 3.3: without `scope` the server uses the client's registered default
    // or fails. An empty grant would go past the consent page (nothing new to ask about)
    // and still issue a token bound to the user, so only a client that skips consent by
    // registration may have one.
    if scope.is_empty() && !client.settings.skip_consent {
        return Err(OAuthError::invalid_scope(format!(
            "no scope was requested and client `{}` has no default_scopes; send the scope parameter (RFC 6749 section 3.3)",
            client.id
        )));
    }
    let nonce = p.get("nonce").map(str::to_owned);
    // Only OpenID Connect defines the implicit and hybrid response types (OIDC Core sections
    // 3.2.2.1 and 3.3.2.1 rest on 3.1.2.1: scope MUST contain openid); without it `code
    // token` would be the bare front-channel access token RFC 9700 section 2.1.2 retires.
    if response_type.has_token() && !scope.contains("openid") {
        return Err(OAuthError::invalid_scope(format!(
            "response_type `{}` needs the `openid` scope",
            response_type.as_str()
        )));
    }
    // OIDC Core sections 3.2.2.1 and 3.3.2.1: nonce is REQUIRED when the authorization
    // response carries an ID token, and OPTIONAL for `code token`.
    if response_type.has_id_token() && nonce.is_none() {
        return Err(OAuthError::invalid_request(format!(
            "nonce is required for response_type `{}` (OIDC Core section {}): it binds the ID token to this browser session",
            response_type.as_str(),
            if response_type.has_code() {
                "3.3.2.1"
            } else {
                "3.2.2.1"
            }
        )));
    }
    // PKCE (RFC 7636 §4.3), required for public clients (RFC 9700 §2.1.1).
    let challenge = p.get("code_challenge").map(str::to_owned);
    let method = match (p.get("code_challenge_method"), &challenge) {
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method was sent without code_challenge",
            ));
        }
        (None, Some(_)) => Some(pkce::Method::Plain), // RFC 7636 §4.3: defaults to plain
        (Some(m), Some(_)) => Some(pkce::Method::parse(m).ok_or_else(|| {
            OAuthError::invalid_request(
                "code_challenge_method must be S256 (or plain where allowed)",
            )
        })?),
        (None, None) => None,
    };
    // The hybrid flow's code is redeemed as in the code flow (OIDC Core section 3.3.3), so
    // it is bound the same way.
    if response_type.has_code() {
        if let (Some(c), Some(m)) = (&challenge, method) {
            if m == pkce::Method::Plain && !client.settings.allow_plain_pkce {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method=plain is not allowed for this client; use S256 (RFC 7636 §4.2)",
                ));
            }
            pkce::validate_challenge(c, m)?;
        } else if client.is_public() || client.settings.require_pkce {
            return Err(OAuthError::invalid_request(
                "PKCE is required for this client: send code_challenge and code_challenge_method=S256 (RFC 7636, RFC 9700 §2.1.1)",
            ));
        }
    }
    let mut prompt: Vec<Prompt> = Vec::new();
    for v in p.get("prompt").unwrap_or_default().split(' ') {
        if v.is_empty() {
            continue;
        }
        let Some(value) = Prompt::parse(v) else {
            return Err(OAuthError::invalid_request(format!(
                "unknown prompt value `{}`",
                wire_safe(v, 40)
            )));
        };
        if !prompt.contains(&value) {
            prompt.push(value);
        }
    }
    // OIDC Core §3.1.2.1: none with any other value is an error.
    if prompt.contains(&Prompt::None) && prompt.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other prompt values",
        ));
    }
    let max_age = match p.get("max_age") {
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative number of seconds")
        })?),
        None => None,
    };
    let claims = match p.get("claims") {
        Some(raw) => {
            let v: serde_json::Value = serde_json::from_str(raw).map_err(|_| {
                OAuthError::invalid_request(
                    "the claims parameter is not valid JSON (OIDC Core §5.5)",
                )
            })?;
            if !v.is_object() {
                return Err(OAuthError::invalid_request(
                    "the claims parameter must be a JSON object (OIDC Core §5.5)",
                ));
            }
            Some(v)
        }
        None => None,
    };
    if let Some(d) = p.get("display")
        && Display::parse(d).is_none()
    {
        return Err(OAuthError::invalid_request(
            "display must be page, popup, touch or wap",
        ));
    }
    let hint_sub = match p.get("id_token_hint") {
        Some(t) => {
            #[derive(Deserialize)]
            struct Hint {
                sub: String,
            }
            // OIDC Core §3.1.2.1: an expired hint is still a valid hint.
            let h: Hint = jwt::verify(
                core.tokens.keys(),
                core.tokens.issuer(),
                t,
                TYP_ID_TOKEN,
                None,
            )
            .map_err(|_| {
                OAuthError::invalid_request("id_token_hint is not an id_token this server issued")
            })?;
            Some(h.sub)
        }
        None => None,
    };
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_sent,
        response_type,
        response_mode,
        scope_order: request_order(p.get("scope")),
        scope,
        state: p.get("state").map(str::to_owned),
        nonce,
        code_challenge: challenge,
        code_challenge_method: method,
        prompt,
        max_age,
        login_hint: p.get("login_hint").map(str::to_owned),
        hint_sub,
        acr_values: p.get("acr_values").map(str::to_owned),
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ip_redirects_may_change_port_only() {
        assert!(redirect_uri_matches(
            true,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51000/cb"
        ));
        assert!(redirect_uri_matches(
            true,
            "http://[::1]:80/cb",
            "http://[::1]:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            true,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51000/other"
        ));
        assert!(!redirect_uri_matches(
            true,
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(!redirect_uri_matches(
            true,
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
    }

    #[test]
    fn only_public_clients_may_change_the_loopback_port() {
        assert!(!redirect_uri_matches(
            false,
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:4444/cb"
        ));
        assert!(redirect_uri_matches(
            false,
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:3000/cb"
        ));
    }
}

#[cfg(test)]
mod validate_tests {
    use super::*;
    use crate::core::tokens::IdTokenInput;
    use crate::model::GrantData;
    use crate::testing::{CHALLENGE, Fixture, NOW, SPA_REDIRECT, WEB_REDIRECT, delivered, params};

    async fn page_error(f: &Fixture, form: &str) -> OAuthError {
        match validate(&f.core, &params(form)).await {
            Err(PageError(e)) => e,
            Ok(Validated::Ok(..)) => panic!("{form}: accepted"),
            Ok(Validated::RedirectError(d)) => panic!("{form}: redirected {d:?}"),
        }
    }

    /// The error sent back to the client, and the delivery it travels in.
    async fn redirect_error(f: &Fixture, form: &str) -> (String, Delivery) {
        match validate(&f.core, &params(form)).await {
            Ok(Validated::RedirectError(d)) => (
                delivered(&d, "error").unwrap_or_else(|| panic!("no error in {d:?}")),
                d,
            ),
            Ok(Validated::Ok(..)) => panic!("{form}: accepted"),
            Err(e) => panic!("{form}: page {e:?}"),
        }
    }

    #[tokio::test]
    async fn an_unknown_client_or_redirect_uri_is_a_page_never_a_redirect() {
        let f = Fixture::new().await;
        let e = page_error(
            &f,
            "response_type=code&redirect_uri=https://evil.example/cb",
        )
        .await;
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = page_error(
            &f,
            "client_id=nobody&response_type=code&redirect_uri=https://evil.example/cb",
        )
        .await;
        assert!(e.description.contains("nobody"), "{e:?}");
        // Even with an otherwise broken request: the redirect URI is checked first.
        let e = page_error(
            &f,
            "client_id=web&response_type=bogus&redirect_uri=https://evil.example/cb",
        )
        .await;
        assert!(e.description.contains("evil.example"), "{e:?}");
        // A confidential client's loopback URI is exact: no other port.
        let e = page_error(
            &f,
            "client_id=web&response_type=code&redirect_uri=http://localhost:3001/callback",
        )
        .await;
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[tokio::test]
    async fn errors_after_the_redirect_uri_is_trusted_go_back_to_the_client() {
        let f = Fixture::new().await;
        let (error, d) = redirect_error(
            &f,
            &format!("client_id=web&response_type=bogus&redirect_uri={WEB_REDIRECT}&state=s1"),
        )
        .await;
        assert_eq!(error, "unsupported_response_type");
        assert_eq!(delivered(&d, "state").as_deref(), Some("s1"));
        assert_eq!(
            delivered(&d, "iss").as_deref(),
            Some(f.core.tokens.issuer())
        );
        let Delivery::Redirect(url) = &d else {
            panic!("{d:?}")
        };
        assert!(url.starts_with(&format!("{WEB_REDIRECT}?")), "{url}");

        for (form, code) in [
            (
                "client_id=web&response_type=token",
                "unsupported_response_type",
            ),
            ("client_id=web&scope=openid", "invalid_request"),
            (
                "client_id=web&response_type=code&scope=api.read",
                "invalid_scope",
            ),
            (
                "client_id=web&response_type=code&scope=openid&prompt=none+login",
                "invalid_request",
            ),
            (
                "client_id=web&response_type=code&scope=openid&max_age=-1",
                "invalid_request",
            ),
            (
                "client_id=web&response_type=code&scope=openid&request=eyJ",
                "request_not_supported",
            ),
            (
                "client_id=web&response_type=code&scope=openid&id_token_hint=not-a-jwt",
                "invalid_request",
            ),
            // The web app is registered for `code` only.
            (
                "client_id=web&response_type=id_token&scope=openid&nonce=n",
                "unauthorized_client",
            ),
            // RFC 9700 §2.1.1: a public client must use PKCE, and S256.
            (
                "client_id=spa&response_type=code&scope=openid",
                "invalid_request",
            ),
            (
                "client_id=spa&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
                "invalid_request",
            ),
            // OIDC Core §3.2.2.1: nonce is required with an ID token from /authorize.
            (
                "client_id=implicit&response_type=id_token&scope=openid",
                "invalid_request",
            ),
        ] {
            let (error, _) = redirect_error(&f, form).await;
            assert_eq!(error, code, "{form}");
        }
    }

    #[tokio::test]
    async fn implicit_errors_travel_in_the_fragment() {
        let f = Fixture::new().await;
        let (error, d) = redirect_error(
            &f,
            "client_id=implicit&response_type=id_token+token&scope=openid",
        )
        .await;
        assert_eq!(error, "invalid_request");
        let Delivery::Redirect(url) = &d else {
            panic!("{d:?}")
        };
        assert!(
            url.starts_with("http://localhost:3000/implicit#error="),
            "{url}"
        );
    }

    #[tokio::test]
    async fn a_valid_request_is_parsed() {
        let f = Fixture::new().await;
        let (req, client) = f
            .request(&format!(
                "client_id=spa&response_type=code&redirect_uri={SPA_REDIRECT}&scope=openid+profile\
                 &code_challenge={CHALLENGE}&code_challenge_method=S256&state=s&nonce=n\
                 &prompt=consent&max_age=300&login_hint=alice&claims=%7B%22userinfo%22%3A%7B%7D%7D"
            ))
            .await;
        assert_eq!(client.id, "spa");
        assert_eq!(req.redirect_uri, SPA_REDIRECT);
        assert!(req.redirect_uri_sent);
        assert_eq!(req.scope.to_wire(), "openid profile");
        assert_eq!(req.code_challenge.as_deref(), Some(CHALLENGE));
        assert_eq!(req.code_challenge_method, Some(pkce::Method::S256));
        assert_eq!(req.prompt, [Prompt::Consent]);
        assert_eq!(req.max_age, Some(300));
        assert_eq!(req.login_hint.as_deref(), Some("alice"));
        assert_eq!(req.claims, Some(serde_json::json!({"userinfo": {}})));
        assert_eq!(req.response_mode, ResponseMode::Query);
        // RFC 8252 §7.3: a native app's loopback redirect may use any port.
        let (req, _) = f
            .request(&format!(
                "client_id=spa&response_type=code&redirect_uri=http://127.0.0.1:51234/spa-callback\
                 &scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256"
            ))
            .await;
        assert_eq!(req.redirect_uri, "http://127.0.0.1:51234/spa-callback");
        // With one registered URI, redirect_uri may be left out (and is then not required
        // at the token endpoint).
        let (req, _) = f
            .request("client_id=web&response_type=code&scope=openid")
            .await;
        assert_eq!(req.redirect_uri, WEB_REDIRECT);
        assert!(!req.redirect_uri_sent);
    }

    #[tokio::test]
    async fn id_token_hint_is_kept_as_its_subject() {
        let f = Fixture::new().await;
        let web = f.client("web").await;
        let alice = f.user("alice").await;
        let hint = f
            .core
            .tokens
            .id_token(
                &IdTokenInput {
                    client: &web,
                    user: &alice,
                    grant: &GrantData::default(),
                    nonce: None,
                    access_token: None,
                    code: None,
                    include_scope_claims: false,
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        let (req, _) = f
            .request(&format!(
                "client_id=web&response_type=code&scope=openid&id_token_hint={hint}"
            ))
            .await;
        assert_eq!(req.hint_sub.as_deref(), Some(alice.id.as_str()));
    }
}
