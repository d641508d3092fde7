//! POST /token (RFC 6749 §3.2), /revoke (RFC 7009) and /introspect (RFC 7662): the
//! client-authenticated machine endpoints. The extractors read the form and authenticate
//! the client; the rules are in `core`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::core::grants::{self, TokenContext};
use crate::core::introspection::{self, IntrospectionResponse};
use crate::core::revocation;
use crate::oauth::error::OAuthError;
use crate::state::AppState;

use super::extract::AuthenticatedClient;
use super::respond::NoStore;

pub async fn token(
    State(state): State<AppState>,
    AuthenticatedClient { client, params, ip }: AuthenticatedClient,
) -> Result<Response, OAuthError> {
    let ctx = TokenContext {
        client_ip: Some(ip),
    };
    let (grant, resp) = grants::handle(&state.core, &client, &params, &ctx, state.now()).await?;
    state
        .core
        .metrics
        .tokens_issued
        .with_label_values(&[grant.label()])
        .inc();
    Ok(NoStore(resp).into_response())
}

/// The empty object RFC 7009 §2.2 answers with.
#[derive(Serialize)]
pub struct Revoked {}

pub async fn revoke(
    State(state): State<AppState>,
    AuthenticatedClient { client, params, .. }: AuthenticatedClient,
) -> Result<NoStore<Revoked>, OAuthError> {
    revocation::revoke(&state.core, &client, &params, state.now()).await?;
    // RFC 7009 §2.2: 200 also for unknown and already invalid tokens.
    Ok(NoStore(Revoked {}))
}

pub async fn introspect(
    State(state): State<AppState>,
    AuthenticatedClient { client, params, .. }: AuthenticatedClient,
) -> Result<NoStore<IntrospectionResponse>, OAuthError> {
    let answer = introspection::introspect(&state.core, &client, &params, state.now()).await?;
    Ok(NoStore(answer))
}
