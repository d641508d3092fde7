//! Keys, JWTs, password hashing, random values and constant-time comparison.

pub mod aead;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod recovery;
pub mod secret;
pub mod totp;
