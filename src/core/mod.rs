//! The protocol: plain Rust over the store, a token issuer and `now`. Nothing here knows
//! axum or SQL, and nothing here reads a clock: every entry point takes `now` from its
//! caller, so a unit test pins time by passing a number. `http/` parses a request, calls in
//! here and renders what comes back.

pub mod account;
pub mod attempts;
pub mod audit;
pub mod authorize;
pub mod backchannel;
pub mod client_auth;
pub mod clients;
pub mod consent;
pub mod device;
pub mod grants;
pub mod introspection;
pub mod login;
pub mod logout;
pub mod mfa;
pub mod passkey;
pub mod revocation;
pub mod tokens;
pub mod userinfo;

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::aead::MasterKey;
use crate::crypto::password::PasswordHasherPool;
use crate::metrics::Metrics;
use crate::store::Store;

use self::client_auth::SecretCache;
use self::clients::Clients;
use self::tokens::TokenIssuer;

/// What the protocol needs and nothing else: no HTTP state (CSRF keys, CORS origins, proxy
/// lists) and no clock. Built once at start-up; the HTTP state holds it behind an `Arc`, so a
/// background worker can hold it too.
pub struct Core {
    /// The settings the protocol reads (lifetimes, limits, login and device policy). Parsed
    /// and validated once at start-up.
    pub config: Arc<Config>,
    pub store: Store,
    /// The one place that mints and verifies our tokens.
    pub tokens: TokenIssuer,
    /// argon2 runs here, on a bounded pool off the async runtime.
    pub passwords: PasswordHasherPool,
    /// Registered clients: this node's cache over the store.
    pub clients: Clients,
    /// Client secrets this process has already verified with argon2.
    pub secrets: SecretCache,
    pub metrics: Metrics,
    /// Opens the TOTP secrets the store keeps sealed (the master key, with the previous one
    /// during a rotation).
    pub sealing: MasterKey,
    /// The WebAuthn relying party, built once from the issuer; None when the issuer's host
    /// is an IP address (no passkeys there).
    pub passkeys: Option<passkey::Passkeys>,
}

impl Core {
    /// Absolute URL of one of our endpoints.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.base_url(), path)
    }
}
