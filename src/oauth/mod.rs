//! Protocol vocabulary: no axum, no SQL.

pub mod client_auth;
pub mod error;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod types;
