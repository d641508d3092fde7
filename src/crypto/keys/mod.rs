//! Signing keys: generation, encryption at rest, rotation schedule and the JWKS.
//!
//! Keys live in the store so every node signs with the same key. Each key has an
//! `activates_at`: a rotation inserts the next key with `activates_at = now + prepublish`,
//! so it is in the JWKS (and in relying parties' caches) before it signs anything. For each
//! algorithm the active key is the newest one whose `activates_at` has passed; older keys are
//! "retired" and stay published until every token they signed has expired. Nodes re-read the
//! key set periodically, so a rotation needs no restart and no coordination: every node
//! computes the same active key from the same rows and the same clock.
//!
//! Private keys are parsed once into aws-lc key pairs and kept in memory; signing never
//! re-parses PEM/DER (the trap of re-parsing on every `encode`). `rotation` says which key
//! is in which state; `ring` is the node's parsed copy.

mod ring;
mod rotation;

pub use ring::KeyRing;
pub use rotation::{KeyState, classify};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::oauth::types::SigningAlg;

/// A signing key as the store keeps it: the private key sealed with the master key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_enc: String,
    pub created_at: i64,
    pub activates_at: i64,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed key pair with its id and public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub activates_at: i64,
    pub created_at: i64,
    pub jwk: Value,
    pair: Pair,
    decoding: jsonwebtoken::DecodingKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// A newly generated key: the PKCS#8 document to encrypt and store.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub pkcs8: Vec<u8>,
}

pub fn generate(alg: SigningAlg) -> anyhow::Result<GeneratedKey> {
    let err = |_| anyhow::anyhow!("key generation failed");
    let pkcs8 = match alg {
        SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(err)?
            .as_der()
            .map_err(err)?
            .as_ref()
            .to_vec(),
        SigningAlg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(err)?
            .to_pkcs8v1()
            .map_err(err)?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDsa => Ed25519KeyPair::generate()
            .map_err(err)?
            .to_pkcs8()
            .map_err(err)?
            .as_ref()
            .to_vec(),
    };
    Ok(GeneratedKey {
        kid: super::secret::random_token(12),
        alg,
        pkcs8,
    })
}

impl SigningKey {
    pub fn from_pkcs8(
        kid: String,
        alg: SigningAlg,
        pkcs8: &[u8],
        activates_at: i64,
        created_at: i64,
    ) -> anyhow::Result<Self> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let rejected =
            |e: aws_lc_rs::error::KeyRejected| anyhow::anyhow!("key {kid} rejected: {e}");
        let (pair, jwk, decoding) = match alg {
            SigningAlg::Rs256 => {
                let kp = RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?;
                let public = kp.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                let jwk = json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)});
                let dec = jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e);
                (Pair::Rsa(kp), jwk, dec)
            }
            SigningAlg::Es256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(rejected)?;
                let point = kp.public_key().as_ref();
                // SEC1 uncompressed point: 0x04 || x || y.
                let (x, y) = match point {
                    [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                    _ => anyhow::bail!("unexpected P-256 public key encoding"),
                };
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
                let dec = jsonwebtoken::DecodingKey::from_ec_components(&b64(x), &b64(y))?;
                (Pair::Ec(kp), jwk, dec)
            }
            SigningAlg::EdDsa => {
                let kp = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?;
                let x = b64(kp.public_key().as_ref());
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
                let dec = jsonwebtoken::DecodingKey::from_ed_components(&x)?;
                (Pair::Ed(kp), jwk, dec)
            }
        };
        let mut jwk = jwk;
        if let Some(o) = jwk.as_object_mut() {
            o.insert("kid".into(), json!(kid));
            o.insert("use".into(), json!("sig"));
            o.insert("alg".into(), json!(alg.as_str()));
        }
        Ok(SigningKey {
            kid,
            alg,
            activates_at,
            created_at,
            jwk,
            pair,
            decoding,
            rng: SystemRandom::new(),
        })
    }

    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        match &self.pair {
            Pair::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
                Ok(sig)
            }
            Pair::Ec(kp) => Ok(kp
                .sign(&self.rng, message)
                .map_err(|_| anyhow::anyhow!("ECDSA signing failed"))?
                .as_ref()
                .to_vec()),
            Pair::Ed(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }

    pub fn decoding_key(&self) -> &jsonwebtoken::DecodingKey {
        &self.decoding
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::MasterKey;

    fn rec(kid: &str, alg: &str, activates_at: i64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            alg: alg.parse().expect("a known alg"),
            private_enc: String::new(),
            created_at: 0,
            activates_at,
        }
    }

    #[test]
    fn rotation_states() {
        let recs = [
            rec("a", "RS256", 0),
            rec("b", "RS256", 100),
            rec("c", "RS256", 500),
            rec("e", "ES256", 0),
        ];
        let s: Vec<_> = classify(&recs, 200, 50)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            s,
            [
                KeyState::Expired,
                KeyState::Active,
                KeyState::Next,
                KeyState::Active
            ]
        );
        let s: Vec<_> = classify(&recs, 120, 50)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(s[0], KeyState::Retired);
    }

    #[test]
    fn keys_sign_and_verify_for_every_alg() {
        for alg in SigningAlg::ALL {
            let g = generate(alg).expect("generate");
            let k = SigningKey::from_pkcs8(g.kid, alg, &g.pkcs8, 0, 0).expect("parse");
            let sig = k.sign(b"hello").expect("sign");
            assert!(!sig.is_empty());
            assert_eq!(k.jwk["alg"], alg.as_str());
        }
    }

    #[test]
    fn sealing_round_trips_and_detects_tampering() {
        let m = MasterKey::generate();
        let s = m.encrypt(b"secret").expect("seal");
        assert_eq!(m.decrypt(&s).expect("open"), b"secret");
        assert!(MasterKey::generate().decrypt(&s).is_err());
    }
}
