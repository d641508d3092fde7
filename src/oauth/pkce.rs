//! PKCE (RFC 7636).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::error::{OAuthError, OAuthResult};
// The crates directly, not crate::crypto: the protocol vocabulary sits below every other
// module and imports none of them.
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Serialized as RFC 7636 §4.3 spells it, which is also how stored codes hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "S256")]
    S256,
    #[serde(rename = "plain")]
    Plain,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::S256 => "S256",
            Method::Plain => "plain",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "S256" => Some(Method::S256),
            "plain" => Some(Method::Plain),
            _ => None,
        }
    }
}

/// RFC 7636 §4.1: 43-128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
/// The same grammar applies to the challenge (§4.2 for S256 yields 43 chars).
pub fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

pub fn validate_challenge(challenge: &str, method: Method) -> OAuthResult<()> {
    let ok = match method {
        // base64url of a SHA-256 digest is exactly 43 characters.
        Method::S256 => challenge.len() == 43 && is_valid_verifier(challenge),
        Method::Plain => is_valid_verifier(challenge),
    };
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "code_challenge is malformed: RFC 7636 §4.2 requires 43-128 characters from A-Z a-z 0-9 - . _ ~ (for S256: base64url of the SHA-256 of the verifier, 43 characters)",
        ))
    }
}

/// RFC 7636 §4.6.
pub fn verify(verifier: &str, challenge: &str, method: Method) -> bool {
    if !is_valid_verifier(verifier) {
        return false;
    }
    match method {
        Method::S256 => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            computed.as_bytes().ct_eq(challenge.as_bytes()).into()
        }
        Method::Plain => verifier.as_bytes().ct_eq(challenge.as_bytes()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(verifier, challenge, Method::S256));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge,
            Method::S256
        ));
        assert!(validate_challenge(challenge, Method::S256).is_ok());
        assert!(validate_challenge("short", Method::S256).is_err());
    }
}
