//! /.well-known/openid-configuration (OIDC Discovery §3), /.well-known/oauth-authorization-server
//! (RFC 8414 §2) and the JWKS. Built from the same enums the endpoints parse, so the
//! document cannot claim what the server does not do.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::oauth::acr::Level;
use crate::oauth::types::{
    GrantType, ResponseMode, ResponseType, STANDARD_SCOPES, SigningAlg, TokenEndpointAuthMethod,
};
use crate::state::AppState;

pub fn document(state: &AppState) -> Value {
    let auth_methods: Vec<&str> = TokenEndpointAuthMethod::ALL
        .iter()
        .map(|m| m.as_str())
        .collect();
    let secret_methods: Vec<&str> = auth_methods
        .iter()
        .copied()
        .filter(|m| *m != "none")
        .collect();
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    let grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    let mut claims = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "azp",
        "at_hash",
        "sid",
        "amr",
        "acr",
    ];
    for s in &crate::oauth::scope::STANDARD {
        claims.extend_from_slice(s.claims);
    }
    // RFC 7636 section 4.2: plain is refused unless a client allows it (RFC 9700 section
    // 2.1.1), so it is advertised only then.
    let mut pkce_methods = vec![crate::oauth::pkce::Method::S256.as_str()];
    if state
        .core
        .clients
        .cache()
        .any_enabled(|c| c.settings.allow_plain_pkce)
    {
        pkce_methods.push(crate::oauth::pkce::Method::Plain.as_str());
    }
    json!({
        "issuer": state.config.issuer,
        "authorization_endpoint": state.url("/authorize"),
        "token_endpoint": state.url("/token"),
        // RFC 8628 §4.
        "device_authorization_endpoint": state.url("/device/code"),
        "userinfo_endpoint": state.url("/userinfo"),
        "jwks_uri": state.url("/jwks.json"),
        "revocation_endpoint": state.url("/revoke"),
        "introspection_endpoint": state.url("/introspect"),
        // OIDC RP-Initiated Logout 1.0 §2.1.
        "end_session_endpoint": state.url("/logout"),
        // OIDC Back-Channel Logout 1.0 section 2.1: Logout Tokens carry `sid`, as ID tokens do.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        // The standard scopes, then those the config describes (`[[scopes]]`).
        "scopes_supported": STANDARD_SCOPES
            .iter()
            .copied()
            .chain(state.config.scopes.iter().map(|s| s.name.as_str()))
            .collect::<Vec<_>>(),
        "response_types_supported": ResponseType::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "response_modes_supported": ResponseMode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "grant_types_supported": grants,
        "subject_types_supported": ["public"],
        // OIDC Discovery section 3, OIDC Core section 2: the levels `oauth::acr` defines.
        "acr_values_supported": Level::ALL.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": secret_methods.iter().chain(["none"].iter()).collect::<Vec<_>>(),
        "introspection_endpoint_auth_methods_supported": secret_methods,
        "code_challenge_methods_supported": pkce_methods,
        "claims_supported": claims,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": crate::core::authorize::PROMPT_VALUES,
        "display_values_supported": crate::core::authorize::DISPLAY_VALUES,
        "claim_types_supported": ["normal"],
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["en"],
    })
}

fn cacheable(v: &Value, max_age: i64) -> Response {
    let mut r = axum::Json(v).into_response();
    if let Ok(h) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        r.headers_mut().insert(header::CACHE_CONTROL, h);
    }
    r
}

pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    cacheable(&document(&state), 3600)
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    // Rotation pre-publishes keys for longer than this max-age (see crypto::keys).
    cacheable(
        &state.core.tokens.keys().jwks(),
        state.config.keys.jwks_max_age,
    )
}
