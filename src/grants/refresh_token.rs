//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2).
//!
//! Every use rotates the token. Presenting a rotated token again normally means it leaked,
//! so the whole grant family is revoked. Real clients race, though (two tabs, a retry after
//! a timeout), so within `refresh_grace_period` a repeat returns the *same* new pair. That
//! pair is kept sealed (AES-GCM) under a key derived from the old refresh token itself: only
//! a holder of the old token can open it, and nothing readable is stored.

use crate::crypto::keys::{open, seal};
use crate::crypto::secret::{hash_token, sha256};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::ScopeSet;
use crate::state::AppState;
use crate::store::Store;
use crate::store::grants::{NewRefresh, Rotation};
use crate::store::model::{Client, GrantData, RefreshRow};
use crate::tokens::TokenResponse;

use super::{UserIssue, active_user_in, mint_user_tokens};

fn successor_key(refresh_token: &str) -> [u8; 32] {
    sha256(format!("latchkey refresh successor\0{refresh_token}").as_bytes())
}

pub async fn handle(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenResponse> {
    let token = params.require("refresh_token")?;
    let hash = hash_token(token);
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let row = match Store::begin_rotation(&mut tx, &hash, now).await? {
        Rotation::Unknown => {
            return Err(OAuthError::invalid_grant("the refresh token is not valid"));
        }
        Rotation::AlreadyRotated(row) => {
            drop(tx);
            return repeat(state, client, token, &row, now).await;
        }
        Rotation::Won(row) => row,
    };
    // Checks that leave the token untouched when they fail: the transaction rolls back.
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.grant_revoked {
        return Err(OAuthError::invalid_grant(
            "the grant behind this refresh token has been revoked",
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the refresh token has expired; the user must sign in again",
        ));
    }
    // RFC 6749 §6: a refresh may narrow the scope, never widen it.
    let scope = match params.get("scope") {
        None => row.data.scope.clone(),
        Some(raw) => {
            let s = ScopeSet::parse(raw).map_err(OAuthError::invalid_scope)?;
            if !s.is_subset(&row.data.scope) {
                return Err(OAuthError::invalid_scope(format!(
                    "a refresh cannot add scopes; the grant has `{}`",
                    row.data.scope
                )));
            }
            s
        }
    };
    let user_id = row
        .user_id
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token has no user"))?;
    // On the transaction's own connection: see `Store::get_user_in`.
    let user = active_user_in(&mut tx, user_id).await?;
    // OIDC Core §12.2: the refreshed id_token keeps auth_time and carries no nonce.
    let grant = GrantData {
        scope,
        ..row.data.clone()
    };
    let (resp, new_hash) = mint_user_tokens(
        state,
        &UserIssue {
            client,
            user: &user,
            grant_id: &row.grant_id,
            grant: &grant,
            nonce: None,
            family_expires_at: Some(row.family_expires_at),
        },
        true,
        now,
    )?;
    let new_hash =
        new_hash.ok_or_else(|| OAuthError::internal("rotation minted no refresh token"))?;
    let sealed = seal(
        &successor_key(token),
        &serde_json::to_vec(&resp).map_err(OAuthError::internal)?,
    )?;
    Store::finish_rotation(
        &mut tx,
        &hash,
        &sealed,
        &NewRefresh {
            token_hash: &new_hash,
            grant_id: &row.grant_id,
            client_id: &client.id,
            user_id: Some(&user.id),
            // RFC 6749 §6: the new refresh token keeps the original scope.
            data: &row.data,
            expires_at: (now + state.config.tokens.refresh_token_idle_ttl)
                .min(row.family_expires_at),
            family_expires_at: row.family_expires_at,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(resp)
}

/// A token that was rotated before: a racing repeat within the grace window, or reuse.
async fn repeat(
    state: &AppState,
    client: &Client,
    token: &str,
    row: &RefreshRow,
    now: i64,
) -> OAuthResult<TokenResponse> {
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let rotated_at = row.rotated_at.unwrap_or(0);
    if !row.grant_revoked
        && now - rotated_at <= state.config.tokens.refresh_grace_period
        && let Some(sealed) = &row.successor
    {
        let plain = open(&successor_key(token), sealed)?;
        return serde_json::from_slice(&plain).map_err(OAuthError::internal);
    }
    state
        .store
        .revoke_grant(&row.grant_id, &row.client_id, now, row.family_expires_at)
        .await?;
    tracing::warn!(client_id = %client.id, "refresh token reused; grant family revoked");
    Err(OAuthError::invalid_grant(
        "this refresh token was already used; as a precaution the whole grant has been revoked and the user must sign in again (RFC 9700 §4.14.2)",
    ))
}
