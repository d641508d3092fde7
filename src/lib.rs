//! Latchkey: an OAuth 2.0 and OpenID Connect authorization server.
//!
//! Protocol logic is plain Rust that takes a store and `now`; the `http` layer only
//! translates HTTP to and from it. See README.md for the map.

// `Result<_, ()>` is used for FromStr-like parsers whose only failure is "not one of these";
// callers always turn it into a specific message.
#![allow(clippy::result_unit_err)]
// Request/response enums are short-lived values on the stack; boxing would not pay.
#![allow(clippy::large_enum_variant)]

pub mod admin;
pub mod app;
#[cfg(feature = "bench")]
pub mod ceilings;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod crypto;
pub mod explorer;
pub mod files;
pub mod http;
#[cfg(test)]
mod layers;
pub mod metrics;
pub mod model;
pub mod oauth;
pub mod server;
pub mod state;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
