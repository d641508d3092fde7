//! /userinfo (OIDC Core §5.3), a protected resource (RFC 6750): the token comes from
//! `BearerToken`, the claims from `core::userinfo`.

use axum::extract::State;
use serde_json::{Map, Value};

use crate::core::userinfo;
use crate::oauth::error::OAuthError;
use crate::state::AppState;

use super::extract::BearerToken;
use super::respond::NoStore;

pub async fn userinfo(
    State(state): State<AppState>,
    BearerToken(token): BearerToken,
) -> Result<NoStore<Map<String, Value>>, OAuthError> {
    let claims = userinfo::claims(&state.core, &token, state.now()).await?;
    Ok(NoStore(claims))
}
