//! The one place that mints access tokens (RFC 9068 JWTs), id_tokens (OIDC Core §2),
//! Logout Tokens and refresh tokens, and shapes the token response (RFC 6749 §5.1): the
//! [`TokenIssuer`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{Config, TokenSettings};
use crate::crypto::jwt::{self, TYP_ACCESS_TOKEN, TYP_ID_TOKEN, TYP_LOGOUT_TOKEN};
use crate::crypto::keys::{KeyRing, SigningKey};
use crate::crypto::secret;
use crate::model::{Client, GrantData, User, UserClaims};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::scope::claims_of;
use crate::oauth::types::{ScopeSet, SigningAlg};

/// RFC 6749 §5.1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// RFC 6749 §7.1: the only access token type we issue (RFC 6750 bearer tokens).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum TokenType {
    Bearer,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Bearer => "Bearer",
        }
    }
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

/// What a user grant issues at the token endpoint: an access token always, an id_token with
/// `openid`, a refresh token when the grant allows it.
pub struct UserIssue<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub grant_id: &'a str,
    pub grant: &'a GrantData,
    pub nonce: Option<&'a str>,
    /// When this grant family ends; None for a fresh family (now + refresh ttl).
    pub family_expires_at: Option<i64>,
}

/// A minted user grant: the response to send, and the new refresh token's hash (if one was
/// issued) for the caller to store in the same transaction that records the grant.
pub struct Minted {
    pub response: TokenResponse,
    pub refresh_hash: Option<String>,
}

/// What the authorization endpoint hands out directly (OIDC Core 3.2.2.5 and 3.3.2.5):
/// the parameters of the front-channel response, without the code.
pub struct FrontChannel<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub grant_id: &'a str,
    pub grant: &'a GrantData,
    pub nonce: Option<&'a str>,
    /// The code issued with these tokens (hybrid flow), for `c_hash`.
    pub code: Option<&'a str>,
    pub access_token: bool,
    pub id_token: bool,
}

/// Mints and verifies our tokens. Holds the signing keys and the lifetimes; nothing else in
/// the crate signs a token or writes a token response.
pub struct TokenIssuer {
    issuer: String,
    keys: KeyRing,
    lifetimes: TokenSettings,
    default_alg: SigningAlg,
    logout_token_ttl: i64,
}

impl TokenIssuer {
    pub fn new(config: &Config, keys: KeyRing) -> Self {
        TokenIssuer {
            issuer: config.issuer.to_string(),
            keys,
            lifetimes: config.tokens.clone(),
            default_alg: config.keys.default_alg,
            logout_token_ttl: config.backchannel_logout.token_ttl,
        }
    }

    /// Our `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signing keys: for verifying our own tokens, and for the JWKS.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The server's token lifetimes.
    pub fn lifetimes(&self) -> &TokenSettings {
        &self.lifetimes
    }

    fn signing_key(&self, alg: SigningAlg, now: i64) -> OAuthResult<std::sync::Arc<SigningKey>> {
        self.keys
            .active(alg, now)
            .ok_or_else(|| OAuthError::internal(format!("no active {alg} signing key")))
    }

    /// Mint an access token; returns it with its lifetime.
    pub fn access_token(&self, s: &AccessSubject<'_>, now: i64) -> OAuthResult<(String, i64)> {
        let ttl = s
            .client
            .settings
            .access_token_ttl
            .unwrap_or(self.lifetimes.access_token_ttl);
        let alg = s
            .client
            .settings
            .access_token_alg
            .unwrap_or(self.default_alg);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: s.user_id.unwrap_or(&s.client.id).to_owned(),
            aud: audience(&s.grant.audiences, &self.issuer),
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
        let key = self.signing_key(alg, now)?;
        Ok((jwt::encode(&key, TYP_ACCESS_TOKEN, &claims)?, ttl))
    }

    pub fn id_token(&self, i: &IdTokenInput<'_>, now: i64) -> OAuthResult<String> {
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.issuer));
        c.insert("sub".into(), json!(i.user.id));
        c.insert("aud".into(), json!(i.client.id));
        c.insert("exp".into(), json!(now + self.lifetimes.id_token_ttl));
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
        // OIDC Dynamic Client Registration section 2: id_token_signed_response_alg defaults
        // to RS256, whatever the server's default for access tokens.
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
        let key = self.signing_key(alg, now)?;
        Ok(jwt::encode(&key, TYP_ID_TOKEN, &Value::Object(c))?)
    }

    /// A Logout Token (Back-Channel Logout 1.0 section 2.4), signed with the key the client's
    /// ID tokens are signed with. `sid` always goes in, besides `sub`: every delivery is for
    /// one session, whose `sid` the client's ID tokens carried (section 2.4 allows both). No
    /// `nonce`, ever, so it cannot pass for an ID token.
    pub fn logout_token(&self, s: &LogoutSubject<'_>, now: i64) -> OAuthResult<String> {
        let claims = json!({
            "iss": self.issuer,
            "sub": s.sub,
            "aud": s.client.id,
            "iat": now,
            "exp": now + self.logout_token_ttl,
            "jti": s.jti,
            "sid": s.sid,
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        });
        let alg = s.client.settings.id_token_alg.unwrap_or(SigningAlg::Rs256);
        let key = self.signing_key(alg, now)?;
        Ok(jwt::encode(&key, TYP_LOGOUT_TOKEN, &claims)?)
    }

    /// The token response of a user grant (code, refresh, password, device). The refresh
    /// token, when `with_refresh`, is minted here and returned with its hash, not yet stored.
    pub fn user_grant(
        &self,
        i: &UserIssue<'_>,
        with_refresh: bool,
        now: i64,
    ) -> OAuthResult<Minted> {
        let (access_token, expires_in) = self.access_token(
            &AccessSubject {
                client: i.client,
                user_id: Some(&i.user.id),
                grant_id: i.grant_id,
                grant: i.grant,
            },
            now,
        )?;
        let id_token = if i.grant.scope.contains("openid") {
            Some(self.id_token(
                &IdTokenInput {
                    client: i.client,
                    user: i.user,
                    grant: i.grant,
                    nonce: i.nonce,
                    access_token: Some(&access_token),
                    code: None,
                    include_scope_claims: self.id_token_has_scope_claims(i.client, true),
                },
                now,
            )?)
        } else {
            None
        };
        let refresh = with_refresh.then(secret::new_token);
        let refresh_hash = refresh.as_deref().map(secret::hash_token);
        Ok(Minted {
            response: TokenResponse {
                access_token,
                token_type: TokenType::Bearer,
                expires_in,
                scope: Some(i.grant.scope.to_wire()),
                id_token,
                refresh_token: refresh,
            },
            refresh_hash,
        })
    }

    /// The token response of a fresh user grant: a refresh token goes with it when the
    /// client and scope call for one.
    pub fn fresh_user_grant(&self, i: &UserIssue<'_>, now: i64) -> OAuthResult<Minted> {
        self.user_grant(i, self.wants_refresh(i.client, &i.grant.scope), now)
    }

    /// A client's own token (RFC 6749 section 4.4.3): an access token only.
    pub fn client_grant(
        &self,
        client: &Client,
        grant: &GrantData,
        now: i64,
    ) -> OAuthResult<TokenResponse> {
        let (access_token, expires_in) = self.access_token(
            &AccessSubject {
                client,
                user_id: None,
                grant_id: &secret::random_token(16),
                grant,
            },
            now,
        )?;
        Ok(TokenResponse {
            access_token,
            token_type: TokenType::Bearer,
            expires_in,
            // RFC 6749 §5.1: the scope granted (the client's defaults when none was asked
            // for), and no member at all rather than `""` when nothing was granted.
            scope: (!grant.scope.is_empty()).then(|| grant.scope.to_wire()),
            id_token: None,
            refresh_token: None,
        })
    }

    /// The tokens the authorization endpoint returns directly (implicit and hybrid), as
    /// response parameters in the order they are sent.
    pub fn front_channel(
        &self,
        f: &FrontChannel<'_>,
        now: i64,
    ) -> OAuthResult<Vec<(String, String)>> {
        let access = if f.access_token {
            Some(self.access_token(
                &AccessSubject {
                    client: f.client,
                    user_id: Some(&f.user.id),
                    grant_id: f.grant_id,
                    grant: f.grant,
                },
                now,
            )?)
        } else {
            None
        };
        let id_token =
            if f.id_token {
                Some(self.id_token(
                    &IdTokenInput {
                        client: f.client,
                        user: f.user,
                        grant: f.grant,
                        nonce: f.nonce,
                        // OIDC Core section 3.3.2.11: at_hash and c_hash bind what came with it.
                        access_token: access.as_ref().map(|(at, _)| at.as_str()),
                        code: f.code,
                        // OIDC Core §5.4: the scope's claims go in the ID token when no access
                        // token results from the request at all (`id_token`); otherwise they are
                        // at userinfo, and in the ID token as configured.
                        include_scope_claims: self.id_token_has_scope_claims(
                            f.client,
                            f.access_token || f.code.is_some(),
                        ),
                    },
                    now,
                )?)
            } else {
                None
            };
        let mut out = Vec::new();
        if let Some((at, expires_in)) = access {
            out.push(("access_token".to_owned(), at));
            out.push((
                "token_type".to_owned(),
                TokenType::Bearer.as_str().to_owned(),
            ));
            out.push(("expires_in".to_owned(), expires_in.to_string()));
            out.push(("scope".to_owned(), f.grant.scope.to_wire()));
        }
        if let Some(id) = id_token {
            out.push(("id_token".to_owned(), id));
        }
        Ok(out)
    }

    /// Whether the ID token carries the granted scopes' claims. Always when no access token
    /// is issued (nothing to call userinfo with, OIDC Core section 5.4); otherwise as the
    /// client or the server default says.
    pub fn id_token_has_scope_claims(&self, client: &Client, with_access_token: bool) -> bool {
        !with_access_token
            || client
                .settings
                .id_token_scope_claims
                .unwrap_or(self.lifetimes.id_token_scope_claims)
    }

    /// Whether a refresh token goes with this grant (RFC 6749 §6, OIDC Core §11).
    pub fn wants_refresh(&self, client: &Client, scope: &ScopeSet) -> bool {
        client.allows_grant(crate::oauth::types::GrantType::RefreshToken)
            && (scope.contains("offline_access")
                || client.settings.always_issue_refresh_token
                || self.lifetimes.issue_refresh_without_offline_access)
    }

    /// Lifetime of a refresh token family, from the client or the server default.
    pub fn refresh_ttl(&self, client: &Client) -> i64 {
        client
            .settings
            .refresh_token_ttl
            .unwrap_or(self.lifetimes.refresh_token_ttl)
    }
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
    let consented: Vec<&str> = granted.iter().flat_map(claims_of).copied().collect();
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{Fixture, NOW, jwt_claims, jwt_header};

    async fn alice_grant(f: &Fixture, scope: &str) -> (User, GrantData) {
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW - 100).await;
        (alice, Fixture::grant(&session, scope))
    }

    fn access(f: &Fixture, client: &Client, user: &User, grant: &GrantData) -> (String, i64) {
        f.core
            .tokens
            .access_token(
                &AccessSubject {
                    client,
                    user_id: Some(&user.id),
                    grant_id: "g-1",
                    grant,
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn id_token(f: &Fixture, i: &IdTokenInput<'_>) -> Value {
        let t = f
            .core
            .tokens
            .id_token(i, NOW)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(jwt_header(&t)["typ"], TYP_ID_TOKEN);
        jwt_claims(&t)
    }

    #[tokio::test]
    async fn access_token_claims() {
        let f = Fixture::new().await;
        let web = f.client("web").await;
        let (alice, grant) = alice_grant(&f, "openid profile").await;
        let (token, ttl) = access(&f, &web, &alice, &grant);
        assert_eq!(ttl, f.core.tokens.lifetimes().access_token_ttl);
        let h = jwt_header(&token);
        assert_eq!(h["typ"], "at+jwt");
        assert_eq!(h["alg"], "RS256");
        let c = jwt_claims(&token);
        assert_eq!(c["iss"], f.core.tokens.issuer());
        assert_eq!(c["sub"], alice.id.as_str());
        // RFC 9068 §3: no registered audience, so the token is for us.
        assert_eq!(c["aud"], f.core.tokens.issuer());
        assert_eq!(c["iat"], NOW);
        assert_eq!(c["exp"], NOW + ttl);
        assert_eq!(c["scope"], "openid profile");
        assert_eq!(c["client_id"], "web");
        assert_eq!(c["grant_id"], "g-1");
        assert_eq!(c["auth_time"], NOW - 100);
        assert_eq!(c["sid"], grant.sid.as_deref().unwrap_or_default());
        assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
        // Two tokens never share a jti.
        assert_ne!(
            jwt_claims(&access(&f, &web, &alice, &grant).0)["jti"],
            c["jti"]
        );
    }

    #[tokio::test]
    async fn access_token_audiences_and_requested_userinfo_claims() {
        let f = Fixture::new().await;
        let web = f.client("web").await;
        let (alice, mut grant) = alice_grant(&f, "openid email").await;
        grant.audiences = vec!["https://api.example.com".into()];
        grant.claims = Some(json!({"userinfo": {"email": null, "name": {"essential": true}}}));
        let c = jwt_claims(&access(&f, &web, &alice, &grant).0);
        assert_eq!(c["aud"], "https://api.example.com");
        assert_eq!(c["userinfo_claims"], json!(["email", "name"]));
        grant.audiences.push("https://other.example.com".into());
        let c = jwt_claims(&access(&f, &web, &alice, &grant).0);
        assert_eq!(
            c["aud"],
            json!(["https://api.example.com", "https://other.example.com"])
        );
    }

    #[tokio::test]
    async fn a_client_may_have_its_own_access_token_lifetime_and_algorithm() {
        let f = Fixture::with(|c| c.keys.default_alg = SigningAlg::EdDsa).await;
        let (alice, grant) = alice_grant(&f, "openid").await;
        let web = f.client("web").await;
        let token = access(&f, &web, &alice, &grant).0;
        assert_eq!(jwt_header(&token)["alg"], "EdDSA", "the server default");
        let mut custom = (*web).clone();
        custom.settings.access_token_ttl = Some(90);
        custom.settings.access_token_alg = Some(SigningAlg::Es256);
        let (token, ttl) = access(&f, &custom, &alice, &grant);
        assert_eq!(ttl, 90);
        assert_eq!(jwt_header(&token)["alg"], "ES256");
        assert_eq!(jwt_claims(&token)["exp"], NOW + 90);
    }

    #[tokio::test]
    async fn id_token_claims_and_hashes() {
        let f = Fixture::with(|c| c.keys.default_alg = SigningAlg::Es256).await;
        let web = f.client("web").await;
        let (alice, grant) = alice_grant(&f, "openid").await;
        let input = |access_token, code| IdTokenInput {
            client: &web,
            user: &alice,
            grant: &grant,
            nonce: Some("n-0S6"),
            access_token,
            code,
            include_scope_claims: false,
        };
        let t = f
            .core
            .tokens
            .id_token(&input(Some("the-access-token"), Some("the-code")), NOW)
            .unwrap_or_else(|e| panic!("{e:?}"));
        // OIDC Dynamic Client Registration §2: RS256 unless the client asks, whatever the
        // server's default for access tokens.
        assert_eq!(jwt_header(&t)["alg"], "RS256");
        let c = jwt_claims(&t);
        assert_eq!(c["iss"], f.core.tokens.issuer());
        assert_eq!(c["sub"], alice.id.as_str());
        assert_eq!(c["aud"], "web");
        assert_eq!(c["azp"], "web");
        assert_eq!(c["iat"], NOW);
        assert_eq!(c["exp"], NOW + f.core.tokens.lifetimes().id_token_ttl);
        assert_eq!(c["nonce"], "n-0S6");
        assert_eq!(c["auth_time"], NOW - 100);
        assert_eq!(c["sid"], grant.sid.as_deref().unwrap_or_default());
        assert_eq!(c["amr"], json!(["pwd"]));
        assert_eq!(
            c["at_hash"],
            jwt::half_hash(SigningAlg::Rs256, "the-access-token")
        );
        assert_eq!(c["c_hash"], jwt::half_hash(SigningAlg::Rs256, "the-code"));

        let c = id_token(&f, &input(None, None));
        assert!(c.get("at_hash").is_none() && c.get("c_hash").is_none());

        let mut es = (*web).clone();
        es.settings.id_token_alg = Some(SigningAlg::Es256);
        let t = f
            .core
            .tokens
            .id_token(
                &IdTokenInput {
                    client: &es,
                    ..input(None, None)
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(jwt_header(&t)["alg"], "ES256");
    }

    #[tokio::test]
    async fn id_token_carries_only_consented_scope_claims() {
        let f = Fixture::new().await;
        let web = f.client("web").await;
        let (alice, mut grant) = alice_grant(&f, "openid email").await;
        // A claims request for `name` without the profile scope releases nothing more.
        grant.claims = Some(json!({"id_token": {"name": null, "email": null}}));
        let input = |include_scope_claims| IdTokenInput {
            client: &web,
            user: &alice,
            grant: &grant,
            nonce: None,
            access_token: None,
            code: None,
            include_scope_claims,
        };
        let c = id_token(&f, &input(true));
        assert_eq!(c["email"], "alice@example.com");
        assert_eq!(c["email_verified"], true);
        assert!(c.get("name").is_none(), "{c}");
        let c = id_token(&f, &input(false));
        assert_eq!(c["email"], "alice@example.com", "requested and consented");
        assert!(c.get("email_verified").is_none(), "{c}");
        assert!(c.get("name").is_none(), "{c}");
    }

    #[tokio::test]
    async fn user_claims_release_what_the_scopes_cover() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let scope = |s| ScopeSet::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let c = user_claims(&alice, &scope("openid email"), true, None);
        assert_eq!(
            Value::Object(c),
            json!({"email": "alice@example.com", "email_verified": true})
        );
        let c = user_claims(&alice, &scope("openid profile"), true, None);
        assert_eq!(c.get("name"), Some(&json!("Alice Example")));
        assert_eq!(c.get("updated_at"), Some(&json!(alice.updated_at)));
        assert!(!c.contains_key("email"));
        // Without the scope claims, only what was requested and consented to.
        let requested = json!({"name": null, "email": null, "phone_number": null});
        let requested = requested.as_object();
        let c = user_claims(&alice, &scope("openid profile"), false, requested);
        assert_eq!(Value::Object(c), json!({"name": "Alice Example"}));
        // Nothing consented: nothing released, whatever is asked for.
        let c = user_claims(&alice, &scope("openid"), true, requested);
        assert!(c.is_empty(), "{c:?}");
    }

    #[tokio::test]
    async fn client_grant_has_no_scope_member_when_nothing_was_granted() {
        let f = Fixture::new().await;
        let service = f.client("service").await;
        let resp = f
            .core
            .tokens
            .client_grant(&service, &GrantData::default(), NOW)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resp.scope, None);
        assert!(resp.id_token.is_none() && resp.refresh_token.is_none());
        let c = jwt_claims(&resp.access_token);
        assert_eq!(c["sub"], "service");
        assert!(c.get("scope").is_none(), "{c}");
        assert!(c.get("auth_time").is_none(), "{c}");
        let wire = serde_json::to_value(&resp).unwrap_or_default();
        assert!(wire.get("scope").is_none(), "{wire}");
        assert_eq!(wire["token_type"], "Bearer");

        let grant = GrantData {
            scope: ScopeSet::parse("api.read").unwrap_or_default(),
            ..GrantData::default()
        };
        let resp = f
            .core
            .tokens
            .client_grant(&service, &grant, NOW)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resp.scope.as_deref(), Some("api.read"));
    }

    #[tokio::test]
    async fn refresh_tokens_go_with_offline_access_to_clients_that_may_refresh() {
        let f = Fixture::new().await;
        let tokens = &f.core.tokens;
        let offline = ScopeSet::parse("openid offline_access").unwrap_or_default();
        let online = ScopeSet::parse("openid").unwrap_or_default();
        let web = f.client("web").await;
        assert!(tokens.wants_refresh(&web, &offline));
        assert!(!tokens.wants_refresh(&web, &online));
        let implicit = f.client("implicit").await;
        assert!(
            !tokens.wants_refresh(&implicit, &offline),
            "no refresh_token grant"
        );
        let mut always = (*web).clone();
        always.settings.always_issue_refresh_token = true;
        assert!(tokens.wants_refresh(&always, &online));

        let f = Fixture::with(|c| c.tokens.issue_refresh_without_offline_access = true).await;
        assert!(f.core.tokens.wants_refresh(&web, &online));
        assert!(!f.core.tokens.wants_refresh(&implicit, &online));
    }

    #[tokio::test]
    async fn user_grant_mints_an_id_token_only_with_openid() {
        let f = Fixture::new().await;
        let web = f.client("web").await;
        let (alice, grant) = alice_grant(&f, "openid offline_access").await;
        let issue = UserIssue {
            client: &web,
            user: &alice,
            grant_id: "g-2",
            grant: &grant,
            nonce: Some("n"),
            family_expires_at: None,
        };
        let minted = f
            .core
            .tokens
            .fresh_user_grant(&issue, NOW)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let refresh = minted.response.refresh_token.as_deref().unwrap_or_default();
        assert_eq!(
            minted.refresh_hash.as_deref(),
            Some(secret::hash_token(refresh).as_str())
        );
        let id = jwt_claims(minted.response.id_token.as_deref().unwrap_or_default());
        assert_eq!(
            id["at_hash"],
            jwt::half_hash(SigningAlg::Rs256, &minted.response.access_token)
        );
        assert_eq!(id["nonce"], "n");

        let (_, grant) = alice_grant(&f, "profile").await;
        let minted = f
            .core
            .tokens
            .fresh_user_grant(
                &UserIssue {
                    grant: &grant,
                    ..issue
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(minted.response.id_token.is_none());
        assert!(minted.response.refresh_token.is_none() && minted.refresh_hash.is_none());
    }

    #[tokio::test]
    async fn logout_token_has_the_event_and_sid_and_never_a_nonce() {
        let f = Fixture::new().await;
        let web = f.client("web").await;
        let t = f
            .core
            .tokens
            .logout_token(
                &LogoutSubject {
                    client: &web,
                    sub: "user-1",
                    sid: "sid-1",
                    jti: "jti-1",
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        let h = jwt_header(&t);
        assert_eq!(h["typ"], "logout+jwt");
        assert_eq!(h["alg"], "RS256");
        let c = jwt_claims(&t);
        assert_eq!(c["iss"], f.core.tokens.issuer());
        assert_eq!(c["aud"], "web");
        assert_eq!(c["sub"], "user-1");
        assert_eq!(c["sid"], "sid-1");
        assert_eq!(c["jti"], "jti-1");
        assert_eq!(c["iat"], NOW);
        assert_eq!(c["exp"], NOW + f.core.config.backchannel_logout.token_ttl);
        assert_eq!(c["events"], json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
        assert!(c.get("nonce").is_none());
    }

    #[tokio::test]
    async fn front_channel_tokens_are_bound_together() {
        let f = Fixture::new().await;
        let implicit = f.client("implicit").await;
        let (alice, grant) = alice_grant(&f, "openid profile").await;
        let out = f
            .core
            .tokens
            .front_channel(
                &FrontChannel {
                    client: &implicit,
                    user: &alice,
                    grant_id: "g-3",
                    grant: &grant,
                    nonce: Some("n"),
                    code: None,
                    access_token: true,
                    id_token: true,
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "access_token",
                "token_type",
                "expires_in",
                "scope",
                "id_token"
            ]
        );
        let at = &out[0].1;
        assert_eq!(out[1].1, "Bearer");
        assert_eq!(out[3].1, "openid profile");
        let id = jwt_claims(&out[4].1);
        assert_eq!(id["at_hash"], jwt::half_hash(SigningAlg::Rs256, at));
        assert_eq!(jwt_claims(at)["grant_id"], "g-3");
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;
    use crate::testing::{Fixture, NOW, jwt_claims};

    /// The ID token of a browser grant names the session it came from (OIDC Core section 2,
    /// Back-Channel Logout 1.0 section 2.1), and the time the user signed in, not the time
    /// of issue.
    #[tokio::test]
    async fn a_session_grant_carries_its_sid_and_auth_time() {
        let f = Fixture::new().await;
        let (web, alice) = (f.client("web").await, f.user("alice").await);
        let session = f.session(&alice, NOW - 300).await;
        let grant = Fixture::grant(&session, "openid email");
        let minted = f
            .core
            .tokens
            .fresh_user_grant(
                &UserIssue {
                    client: &web,
                    user: &alice,
                    grant_id: "g1",
                    grant: &grant,
                    nonce: Some("n-1"),
                    family_expires_at: None,
                },
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        let id = jwt_claims(minted.response.id_token.as_deref().unwrap_or_default());
        assert_eq!(id["sid"], session.sid.as_str());
        assert_eq!(id["auth_time"], NOW - 300);
        assert_eq!(id["iat"], NOW);
        assert_eq!(id["nonce"], "n-1");
        assert_eq!(id["email"], "alice@example.com");
        // No offline_access: no refresh token, and nothing for the store to record.
        assert!(minted.response.refresh_token.is_none() && minted.refresh_hash.is_none());
        let at = jwt_claims(&minted.response.access_token);
        assert_eq!(
            (at["sub"].as_str(), at["sid"].as_str()),
            (Some(alice.id.as_str()), Some(session.sid.as_str()))
        );
    }
}
