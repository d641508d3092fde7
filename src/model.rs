//! Rows and the JSON documents stored inside them.

use serde::{Deserialize, Serialize};

use crate::crypto::secret::SecretHash;
use crate::oauth::acr::Level;
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::pkce;
use crate::oauth::types::{GrantType, ResponseType, ScopeSet, SigningAlg, TokenEndpointAuthMethod};

/// A registered client, as the protocol code sees it.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub source: Source,
    pub enabled: bool,
    pub secret_hash: Option<SecretHash>,
    pub settings: ClientSettings,
}

/// Who owns a registration, a client's or a user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The config file: applied at every start, so the CLI must not change it.
    Config,
    /// `latchkey client add` or `latchkey user add`.
    Cli,
}

impl Source {
    /// As stored in `clients.source` and `users.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Cli => "cli",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "config" => Some(Source::Config),
            "cli" => Some(Source::Cli),
            _ => None,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so `{:<8}` lines up a table.
        f.pad(self.as_str())
    }
}

/// Everything about a client except its id and secret; stored as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClientSettings {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<ResponseType>,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub auth_method: Option<TokenEndpointAuthMethod>,
    pub require_pkce: bool,
    pub allow_plain_pkce: bool,
    pub skip_consent: bool,
    /// Sign-ins for this client need a second factor.
    pub require_mfa: bool,
    pub always_issue_refresh_token: bool,
    /// Put the granted scopes' claims in the ID token even when an access token is issued;
    /// None: the server default (`tokens.id_token_scope_claims`).
    pub id_token_scope_claims: Option<bool>,
    pub introspection: bool,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub id_token_alg: Option<SigningAlg>,
    pub access_token_alg: Option<SigningAlg>,
    /// OpenID Connect Back-Channel Logout 1.0 section 2.2.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

impl Client {
    /// Would these two copies of a client accept exactly the same credentials?
    pub fn same_credentials(&self, other: &Client) -> bool {
        self.enabled == other.enabled
            && self.secret_hash == other.secret_hash
            && self.auth_method() == other.auth_method()
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        self.settings
            .auth_method
            .unwrap_or(if self.secret_hash.is_some() {
                TokenEndpointAuthMethod::ClientSecretBasic
            } else {
                TokenEndpointAuthMethod::None
            })
    }

    pub fn is_public(&self) -> bool {
        self.auth_method() == TokenEndpointAuthMethod::None
    }

    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.settings.grant_types.contains(&g)
    }

    /// The response types a client may use: configured ones, else those its grants imply;
    /// either way only with every grant type the response type needs.
    pub fn allows_response_type(&self, rt: ResponseType) -> bool {
        (self.settings.response_types.is_empty() || self.settings.response_types.contains(&rt))
            && rt.grant_types().iter().all(|g| self.allows_grant(*g))
    }

    /// Scopes this client may request: the standard OIDC ones plus its configured ones.
    /// An empty `scopes` list allows the standard set only.
    pub fn allows_scope(&self, s: &str) -> bool {
        if self.settings.scopes.is_empty() {
            crate::oauth::types::STANDARD_SCOPES.contains(&s)
        } else {
            self.settings.scopes.iter().any(|x| x == s)
        }
    }

    pub fn default_scopes(&self) -> ScopeSet {
        ScopeSet::from_scopes(self.settings.default_scopes.iter().cloned())
    }

    /// Scopes for a request: the requested ones (each must be allowed for this client), or
    /// the client's defaults when `scope` is omitted (RFC 6749 §3.3). Every endpoint that
    /// takes `scope` (authorize, token, device) asks this one rule.
    pub fn requested_scope(&self, raw: Option<&str>) -> OAuthResult<ScopeSet> {
        let Some(raw) = raw else {
            return Ok(self.default_scopes());
        };
        let scope = ScopeSet::parse(raw).map_err(OAuthError::invalid_scope)?;
        let refused: Vec<&str> = scope.iter().filter(|s| !self.allows_scope(s)).collect();
        if !refused.is_empty() {
            return Err(OAuthError::invalid_scope(format!(
                "scope {} is not allowed for client `{}`",
                refused.join(", "),
                self.id
            )));
        }
        Ok(scope)
    }
}

/// The standard claims of OIDC Core §5.1 that scopes release (§5.4).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UserClaims {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub preferred_username: Option<String>,
    pub profile: Option<String>,
    pub picture: Option<String>,
    pub website: Option<String>,
    pub gender: Option<String>,
    pub birthdate: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub phone_number: Option<String>,
    pub phone_number_verified: Option<bool>,
    pub address: Option<Address>,
}

/// OIDC Core §5.1.1.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Address {
    pub formatted: Option<String>,
    pub street_address: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub claims: UserClaims,
    pub updated_at: i64,
    /// Who owns the account: the config file or the CLI.
    pub source: Source,
    /// Tokens issued at or before this time are revoked (0: none).
    pub tokens_revoked_at: i64,
    /// Whether the user has a confirmed second factor: read with the user (one round trip
    /// for the session and everything the sign-in decision needs).
    pub has_factor: bool,
}

impl User {
    /// Whether a token whose user authenticated at `authenticated_at` still stands: not
    /// after a password change, a disable or a sign-out everywhere since, and never for a
    /// disabled user. The time of authentication, not of issue, so that a token minted from
    /// a login that was being checked when the admin acted is revoked too.
    pub fn honours_authentication_at(&self, authenticated_at: i64) -> bool {
        !self.disabled && authenticated_at > self.tokens_revoked_at
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    /// When the second factor was checked; None for a password-only session.
    pub mfa_at: Option<i64>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    /// Where the browser signed in from, and its user agent (cut to 256 bytes): for the
    /// account page's list of sessions.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A user's remembered consent to a client: the scopes they allowed it, and when they last
/// added to them.
#[derive(Debug, Clone)]
pub struct Consent {
    pub client_id: String,
    pub scopes: ScopeSet,
    pub updated_at: i64,
}

/// What kind of second factor a user enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    /// An authenticator app: time-based one-time codes (RFC 6238).
    Totp,
    /// A WebAuthn credential: a security key, or a passkey of a phone, laptop or password
    /// manager.
    Passkey,
}

impl FactorKind {
    /// As stored in `mfa_factors.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(FactorKind::Totp),
            "passkey" => Some(FactorKind::Passkey),
            _ => None,
        }
    }
}

/// A confirmed second factor, as the account page and `latchkey user show` list it: never
/// its secret.
#[derive(Debug, Clone)]
pub struct Factor {
    pub id: String,
    pub user_id: String,
    pub kind: FactorKind,
    pub name: String,
    pub created_at: i64,
    pub confirmed_at: i64,
    pub last_used_at: Option<i64>,
    /// A passkey the browser said is discoverable: it can sign in without a password.
    pub discoverable: bool,
}

/// A passkey as a ceremony needs it: its owner and webauthn-rs's `Passkey` JSON.
#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    pub credential: String,
}

/// A TOTP factor as the check needs it: its sealed secret and the last step it accepted.
#[derive(Debug, Clone)]
pub struct TotpRow {
    pub id: String,
    pub secret_enc: String,
    pub last_step: i64,
}

/// Where a sign-in that waits for its second factor goes on once the factor is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingPurpose {
    /// An authorization request: the pending row names its interaction.
    Authorize,
    /// A device being connected: the form carries the user code.
    Device,
    /// The account page.
    Account,
}

impl PendingPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingPurpose::Authorize => "authorize",
            PendingPurpose::Device => "device",
            PendingPurpose::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorize" => Some(PendingPurpose::Authorize),
            "device" => Some(PendingPurpose::Device),
            "account" => Some(PendingPurpose::Account),
            _ => None,
        }
    }
}

/// A sign-in whose password was checked, waiting for the second factor.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub user_id: String,
    pub purpose: PendingPurpose,
    /// The SHA-256 of what it continues: an authorization request's interaction id, or a
    /// device's user code (normalized). The form carries the value; it must hash to this.
    pub interaction: Option<String>,
    /// A step-up of a signed-in session (its public `sid`): the factor is added to that
    /// session rather than starting a new one.
    pub sid: Option<String>,
    /// The factors done so far (`pwd`).
    pub amr: Vec<String>,
    /// When the password was checked: the session's `auth_time`.
    pub auth_time: i64,
    pub expires_at: i64,
}

pub use crate::crypto::keys::KeyRecord;

/// What a grant carries from the authorization to every token minted under it.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GrantData {
    pub scope: ScopeSet,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// The OIDC Core §5.5 `claims` request, kept for id_tokens and userinfo.
    pub claims: Option<serde_json::Value>,
    pub audiences: Vec<String>,
    /// `acr_values` the client asked for (OIDC Core §3.1.2.1), recorded with the grant; the
    /// level reached is `acr`.
    pub requested_acr_values: Option<String>,
}

impl GrantData {
    /// A grant the signed-in user makes in this browser session: it carries the session's
    /// `sid` (for logout), `auth_time` and `amr`.
    pub fn from_session(
        session: &Session,
        scope: &ScopeSet,
        claims: Option<serde_json::Value>,
        requested_acr_values: Option<String>,
    ) -> Self {
        GrantData {
            scope: scope.clone(),
            auth_time: Some(session.auth_time),
            sid: Some(session.sid.clone()),
            // OIDC Core section 2: the level the session reached (`oauth::acr`).
            acr: Some(Level::of_amr(&session.amr).as_str().to_owned()),
            amr: session.amr.clone(),
            claims,
            audiences: Vec::new(),
            requested_acr_values,
        }
    }
}

/// The authorization code's binding (RFC 6749 §4.1.3, RFC 7636 §4.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeData {
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri` (RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    pub code_challenge: Option<String>,
    /// Stored as RFC 7636 spells it (`S256`, `plain`); any other value fails to read.
    pub code_challenge_method: Option<pkce::Method>,
    pub nonce: Option<String>,
    pub grant: GrantData,
}

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub data: CodeData,
    pub expires_at: i64,
}

/// Why a code cannot be redeemed (RFC 6749 §4.1.2: short-lived and single-use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Used before: the grant it started must be revoked (RFC 6749 §4.1.2), if `issued`.
    /// `issued` is false when a failed token request used it up, so nothing came of it.
    AlreadyUsed {
        grant_id: String,
        issued: bool,
    },
    Expired,
    /// Never issued, or purged since.
    Unknown,
}

/// What reading a code found (`Store::peek_code`): nothing is used up.
#[derive(Debug)]
pub enum CodeLookup {
    /// Unused and unexpired: it can be redeemed, if the token request matches it.
    Redeemable(CodeRow),
    Refused(CodeRefusal),
}

/// What redeeming a code did (`Store::redeem_code`).
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// This call used the code up and recorded its grant family.
    Redeemed,
    /// Nothing was written; why the code could not be redeemed (at the time of the attempt:
    /// a concurrent request may have redeemed it since it was read).
    Refused(CodeRefusal),
}

#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub data: GrantData,
    pub created_at: i64,
    pub expires_at: i64,
    pub family_expires_at: i64,
    pub rotated_at: Option<i64>,
    pub successor: Option<String>,
    pub grant_revoked: bool,
}

/// Where a device authorization stands (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    /// Approved and its tokens issued: a later poll is `invalid_grant`.
    Consumed,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Consumed => "consumed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            "consumed" => DeviceStatus::Consumed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub device_code_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: ScopeSet,
    /// The same scopes in the order the device asked for them.
    pub scope_order: Vec<String>,
    pub status: DeviceStatus,
    pub user_id: Option<String>,
    /// The approved grant (who, when, how they authenticated); None until approved.
    pub data: Option<GrantData>,
    pub interval_secs: i64,
    pub last_polled_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub kind: &'a str,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_json(method: &str) -> String {
        format!(
            r#"{{"redirect_uri":"http://localhost/cb","redirect_uri_sent":true,"code_challenge":"c","code_challenge_method":{method},"nonce":null,"grant":{{}}}}"#
        )
    }

    /// Codes stored before the method was typed hold RFC 7636's spelling; they still read,
    /// and anything else is an error, never a silent `plain` (which would weaken the check).
    #[test]
    fn stored_pkce_methods_read_back_and_unknown_ones_fail() {
        let read = |m: &str| serde_json::from_str::<CodeData>(&code_json(m));
        let s256 = read(r#""S256""#).unwrap();
        assert_eq!(s256.code_challenge_method, Some(pkce::Method::S256));
        let plain = read(r#""plain""#).unwrap();
        assert_eq!(plain.code_challenge_method, Some(pkce::Method::Plain));
        assert_eq!(read("null").unwrap().code_challenge_method, None);
        for bad in [r#""s256""#, r#""PLAIN""#, r#""""#, "1"] {
            assert!(read(bad).is_err(), "{bad}");
        }
        // Written exactly as it is read.
        let json = serde_json::to_value(&s256).unwrap();
        assert_eq!(json["code_challenge_method"], "S256");
    }

    #[test]
    fn client_sources_round_trip_and_pad() {
        for s in [Source::Config, Source::Cli] {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Source::parse("other"), None);
        assert_eq!(format!("{:<8}|", Source::Cli), "cli     |");
    }
}
