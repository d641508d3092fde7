//! Protocol vocabulary: no axum, no SQL.

pub mod acr;
pub mod error;
pub mod params;
pub mod pkce;
pub mod prompt;
pub mod redirect;
pub mod scope;
pub mod types;
