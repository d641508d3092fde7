//! Protocol vocabulary: closed enums for what the wire carries as strings.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Grant types this server implements (RFC 6749 §4, RFC 8628 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "implicit")]
    Implicit,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 6] = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::DeviceCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Implicit => "implicit",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// Short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            GrantType::DeviceCode => "device_code",
            g => g.as_str(),
        }
    }
}

impl FromStr for GrantType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or(())
    }
}

/// `latchkey client add --grant-type`: the wire names, nothing else.
impl clap::ValueEnum for GrantType {
    fn value_variants<'a>() -> &'a [Self] {
        &GrantType::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// `response_type` values: the code flow, the implicit flow and the hybrid flow (OIDC Core
/// sections 3.1, 3.2, 3.3). `token` alone is refused (RFC 9700 section 2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseType {
    Code,
    IdToken,
    IdTokenToken,
    CodeIdToken,
    CodeToken,
    CodeIdTokenToken,
}

impl ResponseType {
    pub const ALL: [ResponseType; 6] = [
        ResponseType::Code,
        ResponseType::IdToken,
        ResponseType::IdTokenToken,
        ResponseType::CodeIdToken,
        ResponseType::CodeToken,
        ResponseType::CodeIdTokenToken,
    ];

    /// Order of the space-separated values does not matter (OAuth 2.0 Multiple Response
    /// Type Encoding Practices §2); each may appear once.
    pub fn parse(s: &str) -> Result<Self, ()> {
        let mut parts: Vec<&str> = s.split(' ').collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["code"] => Ok(ResponseType::Code),
            ["id_token"] => Ok(ResponseType::IdToken),
            ["id_token", "token"] => Ok(ResponseType::IdTokenToken),
            ["code", "id_token"] => Ok(ResponseType::CodeIdToken),
            ["code", "token"] => Ok(ResponseType::CodeToken),
            ["code", "id_token", "token"] => Ok(ResponseType::CodeIdTokenToken),
            _ => Err(()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::IdToken => "id_token",
            ResponseType::IdTokenToken => "id_token token",
            ResponseType::CodeIdToken => "code id_token",
            ResponseType::CodeToken => "code token",
            ResponseType::CodeIdTokenToken => "code id_token token",
        }
    }

    /// The authorization response carries a code.
    pub fn has_code(self) -> bool {
        matches!(
            self,
            ResponseType::Code
                | ResponseType::CodeIdToken
                | ResponseType::CodeToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// The authorization response carries an ID token.
    pub fn has_id_token(self) -> bool {
        matches!(
            self,
            ResponseType::IdToken
                | ResponseType::IdTokenToken
                | ResponseType::CodeIdToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// The authorization response carries an access token.
    pub fn has_access_token(self) -> bool {
        matches!(
            self,
            ResponseType::IdTokenToken | ResponseType::CodeToken | ResponseType::CodeIdTokenToken
        )
    }

    /// The authorization response carries a token (an ID token or an access token), so it
    /// must not travel in the query (OAuth 2.0 Multiple Response Type Encoding Practices
    /// sections 2.1 and 5).
    pub fn has_token(self) -> bool {
        self.has_id_token() || self.has_access_token()
    }

    /// The grant types a client must be registered for to use this response type: a code
    /// needs `authorization_code`, a token from the authorization endpoint `implicit` (OIDC
    /// Dynamic Client Registration section 2, the response_types / grant_types table).
    pub fn grant_types(self) -> &'static [GrantType] {
        match (self.has_code(), self.has_token()) {
            (true, false) => &[GrantType::AuthorizationCode],
            (false, _) => &[GrantType::Implicit],
            (true, true) => &[GrantType::AuthorizationCode, GrantType::Implicit],
        }
    }

    /// The default mode for each type: query for `code`, fragment for any type returning a
    /// token (OAuth 2.0 Multiple Response Type Encoding Practices sections 2.1 and 5; OIDC
    /// Core section 3.3.2.5 for the hybrid types).
    pub fn default_mode(self) -> ResponseMode {
        if self.has_token() {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub const ALL: [ResponseMode; 3] = [
        ResponseMode::Query,
        ResponseMode::Fragment,
        ResponseMode::FormPost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
            ResponseMode::FormPost => "form_post",
        }
    }
}

impl FromStr for ResponseMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ResponseMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(())
    }
}

/// JWS algorithms used for id_tokens and access tokens.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub enum SigningAlg {
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }
}

impl FromStr for SigningAlg {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(())
    }
}

/// `latchkey keys rotate --alg`: the JWS names (RFC 7518 §3.1, RFC 8037 §3.1).
impl clap::ValueEnum for SigningAlg {
    fn value_variants<'a>() -> &'a [Self] {
        &SigningAlg::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 7591 §2 / OIDC Core §9 client authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenEndpointAuthMethod {
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
    #[serde(rename = "none")]
    None,
}

impl TokenEndpointAuthMethod {
    pub const ALL: [TokenEndpointAuthMethod; 3] = [
        TokenEndpointAuthMethod::ClientSecretBasic,
        TokenEndpointAuthMethod::ClientSecretPost,
        TokenEndpointAuthMethod::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
            TokenEndpointAuthMethod::None => "none",
        }
    }
}

impl FromStr for TokenEndpointAuthMethod {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        TokenEndpointAuthMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(())
    }
}

/// Scopes the server itself understands (OIDC Core §5.4, §11), named by the scope table.
pub const STANDARD_SCOPES: [&str; 6] = {
    let t = &super::scope::STANDARD;
    [
        t[0].name, t[1].name, t[2].name, t[3].name, t[4].name, t[5].name,
    ]
};

/// A set of scope tokens (RFC 6749 §3.3), kept sorted so equal sets print equally.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// RFC 6749 §3.3: space-delimited, case-sensitive tokens of `%x21 / %x23-5B / %x5D-7E`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            if !super::scope::is_scope_token(tok) {
                return Err(format!(
                    "`{tok}` contains characters not allowed in a scope (RFC 6749 §3.3)"
                ));
            }
            set.insert(tok.to_owned());
        }
        Ok(ScopeSet(set))
    }

    pub fn from_scopes<I: IntoIterator<Item = S>, S: Into<String>>(it: I) -> Self {
        ScopeSet(it.into_iter().map(Into::into).collect())
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn difference<'a>(&'a self, other: &'a ScopeSet) -> impl Iterator<Item = &'a str> {
        self.0.difference(&other.0).map(String::as_str)
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn to_wire(&self) -> String {
        self.0
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>(), Ok(g));
        }
        assert!("magic".parse::<GrantType>().is_err());
    }

    /// The CLI accepts exactly the names the wire and the config file use.
    #[test]
    fn cli_values_are_the_wire_names() {
        use clap::ValueEnum;
        for g in GrantType::ALL {
            assert_eq!(<GrantType as ValueEnum>::from_str(g.as_str(), false), Ok(g));
        }
        assert!(<GrantType as ValueEnum>::from_str("device_code", false).is_err());
        for a in SigningAlg::ALL {
            assert_eq!(
                <SigningAlg as ValueEnum>::from_str(a.as_str(), false),
                Ok(a)
            );
        }
        assert!(<SigningAlg as ValueEnum>::from_str("HS256", false).is_err());
    }

    #[test]
    fn response_type_order_does_not_matter() {
        assert_eq!(
            ResponseType::parse("token id_token"),
            Ok(ResponseType::IdTokenToken)
        );
        assert_eq!(
            ResponseType::parse("id_token code"),
            Ok(ResponseType::CodeIdToken)
        );
        assert_eq!(
            ResponseType::parse("token code"),
            Ok(ResponseType::CodeToken)
        );
        for s in [
            "code id_token token",
            "code token id_token",
            "id_token code token",
            "id_token token code",
            "token code id_token",
            "token id_token code",
        ] {
            assert_eq!(ResponseType::parse(s), Ok(ResponseType::CodeIdTokenToken));
        }
        for bad in [
            "token",
            "",
            "code code",
            "code  id_token",
            "code id_token id_token",
            "code none",
            "CODE",
        ] {
            assert!(ResponseType::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn response_types_round_trip_and_map_to_grants() {
        for rt in ResponseType::ALL {
            assert_eq!(ResponseType::parse(rt.as_str()), Ok(rt));
            // Tokens never default to the query.
            assert_eq!(rt.default_mode() == ResponseMode::Query, !rt.has_token());
        }
        assert_eq!(
            ResponseType::Code.grant_types(),
            &[GrantType::AuthorizationCode]
        );
        assert_eq!(ResponseType::IdToken.grant_types(), &[GrantType::Implicit]);
        for hybrid in [
            ResponseType::CodeIdToken,
            ResponseType::CodeToken,
            ResponseType::CodeIdTokenToken,
        ] {
            assert!(hybrid.has_code() && hybrid.has_token());
            assert_eq!(
                hybrid.grant_types(),
                &[GrantType::AuthorizationCode, GrantType::Implicit]
            );
        }
        assert!(!ResponseType::CodeToken.has_id_token());
        assert!(ResponseType::CodeIdTokenToken.has_access_token());
    }

    #[test]
    fn scopes_parse_and_reject_bad_characters() {
        let s = ScopeSet::parse("openid  email openid").expect("valid");
        assert_eq!(s.to_wire(), "email openid");
        assert!(ScopeSet::parse("bad\"scope").is_err());
        assert!(ScopeSet::parse("caf\u{e9}").is_err());
    }
}
