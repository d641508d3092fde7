//! Random values, token hashing and constant-time comparison.
//!
//! Codes, tokens, session ids and generated client secrets carry at least 256 bits from the
//! OS CSRNG. For such values a single SHA-256 is a sound at-rest hash: there is nothing to
//! brute-force, so a memory-hard KDF would only cost CPU on the hot path. Human-chosen
//! secrets (passwords, hand-written client secrets) get argon2id instead.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The default: 32 bytes (256 bits), 43 characters.
pub fn new_token() -> String {
    random_token(32)
}

/// The at-rest form of a high-entropy token: base64url(SHA-256(token)).
pub fn hash_token(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A stored client secret hash, as accepted in config and printed by `hash-secret`.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretHash {
    /// `sha256:<hex>`: only for generated, high-entropy secrets (see module docs).
    Sha256([u8; 32]),
    /// An argon2id PHC string, for secrets a person chose.
    Argon2(String),
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretHash::Sha256(_) => f.write_str("SecretHash::Sha256(..)"),
            SecretHash::Argon2(_) => f.write_str("SecretHash::Argon2(..)"),
        }
    }
}

/// Generated secrets are at least this long (32 random bytes in base64url).
pub const MIN_FAST_SECRET_LEN: usize = 43;

impl SecretHash {
    pub fn parse(s: &str) -> Result<Self, ()> {
        if let Some(hex) = s.strip_prefix("sha256:") {
            let bytes = decode_hex(hex).ok_or(())?;
            return Ok(SecretHash::Sha256(bytes.try_into().map_err(|_| ())?));
        }
        if s.starts_with("$argon2id$") && argon2::PasswordHash::new(s).is_ok() {
            return Ok(SecretHash::Argon2(s.to_owned()));
        }
        Err(())
    }

    /// For a freshly generated secret.
    pub fn fast(secret: &str) -> Self {
        SecretHash::Sha256(sha256(secret.as_bytes()))
    }

    pub fn encode(&self) -> String {
        match self {
            SecretHash::Sha256(b) => format!("sha256:{}", encode_hex(b)),
            SecretHash::Argon2(s) => s.clone(),
        }
    }
}

pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
    }

    #[test]
    fn secret_hash_round_trips() {
        let h = SecretHash::fast("s3cret");
        assert_eq!(SecretHash::parse(&h.encode()), Ok(h));
        assert!(SecretHash::parse("sha256:zz").is_err());
        assert!(SecretHash::parse("hunter2").is_err());
    }
}
