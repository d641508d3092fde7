//! The one place that mints access tokens (RFC 9068 JWTs), id_tokens (OIDC Core §2) and
//! refresh tokens, and shapes the token response (RFC 6749 §5.1).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::crypto::jwt::{self, TYP_ACCESS_TOKEN, TYP_ID_TOKEN, TYP_LOGOUT_TOKEN};
use crate::crypto::secret;
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::types::{ScopeSet, SigningAlg};
use crate::state::AppState;
use crate::store::model::{Client, GrantData, User, UserClaims};

/// RFC 6749 §5.1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// RFC 9068 §2.2 claims, plus the grant id that makes revocation of a family possible.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Value,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub grant_id: String,
    /// Claims the OIDC Core §5.5 `claims` request asked userinfo to return, beyond the
    /// scopes' claims; carried in the token so userinfo needs no store lookup for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo_claims: Vec<String>,
}

impl AccessClaims {
    /// When the user authenticated for this token (`auth_time`), or when it was issued if
    /// it carries none: what a revocation of the user's tokens is compared with.
    pub fn authenticated_at(&self) -> i64 {
        self.auth_time.unwrap_or(self.iat)
    }

    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.scope).unwrap_or_default()
    }

    /// Audiences as a list, whether `aud` is a string or an array.
    pub fn audiences(&self) -> Vec<String> {
        match &self.aud {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A user's token (as opposed to a client's own, from client_credentials).
    pub fn is_user_token(&self) -> bool {
        self.sub != self.client_id || self.auth_time.is_some()
    }
}

fn signing_key(
    state: &AppState,
    alg: SigningAlg,
    now: i64,
) -> OAuthResult<std::sync::Arc<crate::crypto::keys::SigningKey>> {
    state
        .keys
        .active(alg, now)
        .ok_or_else(|| OAuthError::internal(format!("no active {alg} signing key")))
}

fn audience(list: &[String], fallback: &str) -> Value {
    match list {
        [] => json!(fallback),
        [one] => json!(one),
        many => json!(many),
    }
}

/// What an access token is about.
pub struct AccessSubject<'a> {
    pub client: &'a Client,
    /// The user's `sub`, or None for the client's own token.
    pub user_id: Option<&'a str>,
    pub grant_id: &'a str,
    pub grant: &'a GrantData,
}

/// Mint an access token; returns it with its lifetime.
pub fn access_token(
    state: &AppState,
    s: &AccessSubject<'_>,
    now: i64,
) -> OAuthResult<(String, i64)> {
    let ttl = s
        .client
        .settings
        .access_token_ttl
        .unwrap_or(state.config.tokens.access_token_ttl);
    let alg = s
        .client
        .settings
        .access_token_alg
        .unwrap_or(state.config.keys.default_alg);
    let claims = AccessClaims {
        iss: state.config.issuer.to_string(),
        sub: s.user_id.unwrap_or(&s.client.id).to_owned(),
        aud: audience(&s.grant.audiences, &state.config.issuer),
        exp: now + ttl,
        iat: now,
        jti: secret::random_token(16),
        client_id: s.client.id.clone(),
        scope: s.grant.scope.to_wire(),
        auth_time: s.grant.auth_time,
        acr: s.grant.acr.clone(),
        sid: s.grant.sid.clone(),
        grant_id: s.grant_id.to_owned(),
        userinfo_claims: s
            .grant
            .claims
            .as_ref()
            .and_then(|c| c.get("userinfo"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let key = signing_key(state, alg, now)?;
    Ok((jwt::encode(&key, TYP_ACCESS_TOKEN, &claims)?, ttl))
}

/// Inputs of an id_token beyond the grant.
pub struct IdTokenInput<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub grant: &'a GrantData,
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
    /// Put the scope's user claims in the id_token (no access token to call userinfo with,
    /// OIDC Core §5.4).
    pub include_scope_claims: bool,
}

pub fn id_token(state: &AppState, i: &IdTokenInput<'_>, now: i64) -> OAuthResult<String> {
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.config.issuer));
    c.insert("sub".into(), json!(i.user.id));
    c.insert("aud".into(), json!(i.client.id));
    c.insert("exp".into(), json!(now + state.config.tokens.id_token_ttl));
    c.insert("iat".into(), json!(now));
    // OIDC Core §2: azp is the party the token was issued to.
    c.insert("azp".into(), json!(i.client.id));
    if let Some(t) = i.grant.auth_time {
        c.insert("auth_time".into(), json!(t));
    }
    if let Some(n) = i.nonce {
        c.insert("nonce".into(), json!(n));
    }
    if let Some(sid) = &i.grant.sid {
        c.insert("sid".into(), json!(sid));
    }
    if let Some(acr) = &i.grant.acr {
        c.insert("acr".into(), json!(acr));
    }
    if !i.grant.amr.is_empty() {
        c.insert("amr".into(), json!(i.grant.amr));
    }
    let alg = i.client.settings.id_token_alg.unwrap_or(SigningAlg::Rs256);
    if let Some(at) = i.access_token {
        c.insert("at_hash".into(), json!(jwt::half_hash(alg, at)));
    }
    if let Some(code) = i.code {
        c.insert("c_hash".into(), json!(jwt::half_hash(alg, code)));
    }
    let requested = i
        .grant
        .claims
        .as_ref()
        .and_then(|r| r.get("id_token"))
        .and_then(Value::as_object);
    for (k, v) in user_claims(i.user, &i.grant.scope, i.include_scope_claims, requested) {
        c.entry(k).or_insert(v);
    }
    let key = signing_key(state, alg, now)?;
    Ok(jwt::encode(&key, TYP_ID_TOKEN, &Value::Object(c))?)
}

/// The member of `events` that makes a JWT a Logout Token (Back-Channel Logout 1.0 section 2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a Logout Token is about: one session of one user, at one client.
pub struct LogoutSubject<'a> {
    pub client: &'a Client,
    pub sub: &'a str,
    pub sid: &'a str,
    pub jti: &'a str,
}

/// A Logout Token (Back-Channel Logout 1.0 section 2.4), signed with the key the client's ID
/// tokens are signed with. `sid` always goes in, besides `sub`: every delivery is for one
/// session, whose `sid` the client's ID tokens carried (section 2.4 allows both). No
/// `nonce`, ever, so it cannot pass for an ID token.
pub fn logout_token(state: &AppState, s: &LogoutSubject<'_>, now: i64) -> OAuthResult<String> {
    let claims = json!({
        "iss": state.config.issuer,
        "sub": s.sub,
        "aud": s.client.id,
        "iat": now,
        "exp": now + state.config.backchannel_logout.token_ttl,
        "jti": s.jti,
        "sid": s.sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    let alg = s.client.settings.id_token_alg.unwrap_or(SigningAlg::Rs256);
    let key = signing_key(state, alg, now)?;
    Ok(jwt::encode(&key, TYP_LOGOUT_TOKEN, &claims)?)
}

/// Claims released by each scope (OIDC Core §5.4).
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

/// The user's claims that go out: every claim the granted scopes release (when
/// `with_scope_claims`), and every individually requested claim (OIDC Core section 5.5)
/// that a granted scope covers. A `claims` request never releases more than the scopes the
/// user consented to (section 5.5: the request asks; consent decides). `sub` is always
/// handled by the caller.
pub fn user_claims(
    user: &User,
    granted: &ScopeSet,
    with_scope_claims: bool,
    requested: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let all = user_claim_map(&user.claims, user.updated_at);
    let consented: Vec<&str> = granted.iter().flat_map(scope_claims).copied().collect();
    let mut wanted: Vec<&str> = if with_scope_claims {
        consented.clone()
    } else {
        Vec::new()
    };
    if let Some(r) = requested {
        wanted.extend(
            r.keys()
                .map(String::as_str)
                .filter(|name| consented.contains(name)),
        );
    }
    let mut out = Map::new();
    for name in wanted {
        if let Some(v) = all.get(name) {
            out.insert(name.to_owned(), v.clone());
        }
    }
    out
}

fn user_claim_map(c: &UserClaims, updated_at: i64) -> Map<String, Value> {
    let mut m = match serde_json::to_value(c) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    m.retain(|_, v| !v.is_null());
    if let Some(Value::Object(addr)) = m.get_mut("address") {
        addr.retain(|_, v| !v.is_null());
    }
    m.insert("updated_at".into(), json!(updated_at));
    m
}

/// Whether the ID token carries the granted scopes' claims. Always when no access token is
/// issued (nothing to call userinfo with, OIDC Core section 5.4); otherwise as the client or
/// the server default says.
pub fn id_token_has_scope_claims(
    state: &AppState,
    client: &Client,
    with_access_token: bool,
) -> bool {
    !with_access_token
        || client
            .settings
            .id_token_scope_claims
            .unwrap_or(state.config.tokens.id_token_scope_claims)
}

/// Whether a refresh token goes with this grant (RFC 6749 §6, OIDC Core §11).
pub fn wants_refresh(state: &AppState, client: &Client, scope: &ScopeSet) -> bool {
    client.allows_grant(crate::oauth::types::GrantType::RefreshToken)
        && (scope.contains("offline_access")
            || client.settings.always_issue_refresh_token
            || state.config.tokens.issue_refresh_without_offline_access)
}

/// Lifetime of a refresh token family, from the client or the server default.
pub fn refresh_ttl(state: &AppState, client: &Client) -> i64 {
    client
        .settings
        .refresh_token_ttl
        .unwrap_or(state.config.tokens.refresh_token_ttl)
}
