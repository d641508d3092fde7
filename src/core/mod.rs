//! The protocol: plain Rust over the store, a token issuer and `now`. Nothing here knows
//! axum or SQL; `http/` parses a request, calls in here and renders what comes back.

pub mod attempts;
pub mod audit;
pub mod authorize;
pub mod backchannel;
pub mod client_auth;
pub mod clients;
pub mod device;
pub mod grants;
pub mod login;
pub mod tokens;
