//! Compact JWS: signing with cached key pairs, verification with `jsonwebtoken`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{KeyRing, SigningKey};
use crate::oauth::types::SigningAlg;

/// `typ` of access tokens (RFC 9068 §2.1) and id_tokens.
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";
pub const TYP_ID_TOKEN: &str = "JWT";
/// OpenID Connect Back-Channel Logout 1.0 section 2.4: Logout Tokens are explicitly typed, so
/// one can never pass for an ID token or an access token.
pub const TYP_LOGOUT_TOKEN: &str = "logout+jwt";

pub fn encode<C: Serialize>(key: &SigningKey, typ: &str, claims: &C) -> anyhow::Result<String> {
    let header = serde_json::json!({"alg": key.alg.as_str(), "typ": typ, "kid": key.kid});
    let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(out)
}

fn jwt_alg(alg: SigningAlg) -> jsonwebtoken::Algorithm {
    match alg {
        SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
        SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
        SigningAlg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
    }
}

/// Why a token did not verify; callers map it to their protocol error.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
    WrongType,
}

/// Verify a JWT we issued: known `kid`, the key's own algorithm, our issuer, expected `typ`,
/// and `exp` against `now` (our clock, not the library's). `now = None` accepts expired
/// tokens (an `id_token_hint` may be expired, OIDC Core §3.1.2.1).
pub fn verify<C: DeserializeOwned>(
    keys: &KeyRing,
    issuer: &str,
    token: &str,
    typ: &str,
    now: Option<i64>,
) -> Result<C, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let key = keys.get(kid).ok_or(VerifyError::UnknownKey)?;
    // Never let the token pick the algorithm: it must be the key's (RFC 8725 §3.1).
    if header.alg != jwt_alg(key.alg) {
        return Err(VerifyError::BadSignature);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(typ))
    {
        return Err(VerifyError::WrongType);
    }
    let mut v = jsonwebtoken::Validation::new(jwt_alg(key.alg));
    v.set_issuer(&[issuer]);
    v.validate_aud = false;
    v.validate_exp = false;
    v.leeway = 0;
    v.required_spec_claims = ["iss", "exp"].iter().map(|s| (*s).to_owned()).collect();
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, key.decoding_key(), &v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::BadSignature,
            _ => VerifyError::Malformed,
        })?;
    if let Some(now) = now {
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(VerifyError::Malformed)?;
        if exp <= now {
            return Err(VerifyError::Expired);
        }
    }
    serde_json::from_value(claims).map_err(|_| VerifyError::Malformed)
}

/// `at_hash` / `c_hash` (OIDC Core section 3.3.2.11): the left half of the hash of the ASCII
/// value, base64url, with the hash of the ID token's `alg`. EdDSA names no hash: for Ed25519
/// it is SHA-512 (RFC 8032 section 5.1), as the OpenID Connect working group settled
/// (openid/connect issue 1125) and relying parties such as the `openidconnect` crate check.
pub fn half_hash(alg: SigningAlg, value: &str) -> String {
    match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => {
            URL_SAFE_NO_PAD.encode(&super::secret::sha256(value.as_bytes())[..16])
        }
        SigningAlg::EdDsa => {
            use sha2::Digest;
            URL_SAFE_NO_PAD.encode(&sha2::Sha512::digest(value.as_bytes())[..32])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core Appendix A.3's access token and at_hash.
        assert_eq!(
            half_hash(
                SigningAlg::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn eddsa_hashes_with_sha512() {
        // Left 32 bytes of SHA-512("abc") (FIPS 180-2 Appendix C.1), base64url.
        assert_eq!(
            half_hash(SigningAlg::EdDsa, "abc"),
            "3a81oZNherrMQXNJriBBMRLm-k6JqX6iCp7u5ktV05o"
        );
        assert_eq!(
            half_hash(SigningAlg::Es256, "abc"),
            half_hash(SigningAlg::Rs256, "abc")
        );
    }
}
