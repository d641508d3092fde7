//! `[[clients]]` and `[[users]]` entries, typed as they are read.

use serde::Deserialize;

use super::values;
use crate::crypto::secret::SecretHash;
use crate::oauth::types::{GrantType, ResponseType, SigningAlg, TokenEndpointAuthMethod};

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    pub name: String,
    /// The hash printed by `latchkey hash-secret`.
    #[serde(default, deserialize_with = "values::optional")]
    pub client_secret_hash: Option<SecretHash>,
    /// Name of an environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Refused: accepted by the parser only to explain how to hash it.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default, deserialize_with = "values::list")]
    pub grant_types: Vec<GrantType>,
    #[serde(default, deserialize_with = "values::list")]
    pub response_types: Vec<ResponseType>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Default: `client_secret_basic` with a secret, `none` without (`auth_method`).
    #[serde(default, deserialize_with = "values::optional")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    #[serde(default)]
    pub require_pkce: bool,
    #[serde(default)]
    pub allow_plain_pkce: bool,
    #[serde(default)]
    pub skip_consent: bool,
    /// Every sign-in for this client needs two factors (README "Two-step sign-in").
    #[serde(default)]
    pub require_mfa: bool,
    #[serde(default)]
    pub always_issue_refresh_token: bool,
    /// Overrides `tokens.id_token_scope_claims` for this client.
    #[serde(default)]
    pub id_token_scope_claims: Option<bool>,
    /// May call `/introspect` (a resource server).
    #[serde(default)]
    pub introspection: bool,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub refresh_token_ttl: Option<i64>,
    #[serde(default, deserialize_with = "values::optional")]
    pub id_token_signed_response_alg: Option<SigningAlg>,
    #[serde(default, deserialize_with = "values::optional")]
    pub access_token_signed_response_alg: Option<SigningAlg>,
    /// Where Logout Tokens are POSTed when a session this client was signed in to ends
    /// (OpenID Connect Back-Channel Logout 1.0 section 2.2).
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in Logout Tokens (section 2.2). Latchkey always sends it.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// The value of `secret_env`, read from the environment the file was loaded with
    /// (`Config::from_toml`), so that start-up never reads the environment a second time.
    #[serde(skip)]
    pub env_secret: Option<EnvSecret>,
}

impl ClientConfig {
    /// A client with a secret (a hash, or one from the environment).
    pub fn is_confidential(&self) -> bool {
        self.client_secret_hash.is_some() || self.secret_env.is_some()
    }

    /// The method it authenticates with at the token endpoint (RFC 7591 §2): as registered,
    /// or `client_secret_basic` for a client with a secret and `none` for one without.
    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        self.token_endpoint_auth_method
            .unwrap_or(if self.is_confidential() {
                TokenEndpointAuthMethod::ClientSecretBasic
            } else {
                TokenEndpointAuthMethod::None
            })
    }

    pub(super) fn resolve_secret(&mut self, env: &[(String, String)]) {
        self.env_secret = self.secret_env.as_ref().and_then(|var| {
            env.iter()
                .find(|(k, v)| k == var && !v.is_empty())
                .map(|(_, v)| EnvSecret(v.clone()))
        });
    }
}

/// A plaintext client secret taken from the environment; `Debug` never prints it.
#[derive(Clone)]
pub struct EnvSecret(String);

impl EnvSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvSecret(..)")
    }
}

/// One `[[scopes]]` entry: a scope of this deployment (an API's `orders.read`, say), with the
/// words the consent page uses for it. Listed in discovery's `scopes_supported`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    pub name: String,
    /// What the user is asked to allow, in plain words: "Read your orders".
    pub description: String,
}

/// One `[[users]]` entry (demo or bootstrap accounts).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    /// argon2id PHC string from `latchkey hash-secret`.
    pub password_hash: String,
    #[serde(default)]
    pub claims: crate::model::UserClaims,
    #[serde(default)]
    pub disabled: bool,
}
