//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2).
//!
//! Every use rotates the token. Presenting a rotated token again normally means it leaked,
//! so the whole grant family is revoked. Real clients race, though (two tabs, a retry after
//! a timeout), so within `refresh_grace_period` a repeat returns the *same* new pair. That
//! pair is kept sealed (AES-GCM) under a key derived from the old refresh token itself: only
//! a holder of the old token can open it, and nothing readable is stored.

use crate::core::Core;
use crate::core::tokens::{TokenResponse, UserIssue};
use crate::crypto::aead::{open, seal};
use crate::crypto::secret::{hash_token, sha256};
use crate::model::{Client, GrantData, RefreshRow};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::types::ScopeSet;
use crate::store::grants::NewRefresh;

use super::active_user;

fn successor_key(refresh_token: &str) -> [u8; 32] {
    sha256(format!("latchkey refresh successor\0{refresh_token}").as_bytes())
}

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let token = params.require("refresh_token")?;
    let hash = hash_token(token);
    let Some(row) = core.store.get_refresh(&hash).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is not valid"));
    };
    if row.rotated_at.is_some() {
        return repeat(core, client, token, &row, now).await;
    }
    // Nothing is written until every check has passed: a refused request leaves the token
    // as it was.
    check_usable(&row, client, now)?;
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
    let user = active_user(core, user_id, row.data.auth_time, None).await?;
    // OIDC Core §12.2: the refreshed id_token keeps auth_time and carries no nonce.
    let grant = GrantData {
        scope,
        ..row.data.clone()
    };
    let minted = core.tokens.user_grant(
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
    let resp = minted.response;
    let new_hash = minted
        .refresh_hash
        .ok_or_else(|| OAuthError::internal("rotation minted no refresh token"))?;
    let sealed = seal(
        &successor_key(token),
        &serde_json::to_vec(&resp).map_err(OAuthError::internal)?,
    )?;
    let rotated = core
        .store
        .rotate_refresh(
            &hash,
            &sealed,
            &NewRefresh {
                token_hash: &new_hash,
                grant_id: &row.grant_id,
                client_id: &client.id,
                user_id: Some(&user.id),
                // RFC 6749 §6: the new refresh token keeps the original scope.
                data: &row.data,
                expires_at: (now + core.tokens.lifetimes().refresh_token_idle_ttl)
                    .min(row.family_expires_at),
                family_expires_at: row.family_expires_at,
            },
            now,
        )
        .await?;
    if rotated {
        return Ok(resp);
    }
    // Something changed since we read the token: a concurrent request rotated it (answer as
    // for a repeat: the same pair within the grace window), or it was revoked or expired.
    // The pair minted above was never stored and is dropped.
    match core.store.get_refresh(&hash).await? {
        Some(row) if row.rotated_at.is_some() => repeat(core, client, token, &row, now).await,
        Some(row) => {
            check_usable(&row, client, now)?;
            Err(OAuthError::invalid_grant("the refresh token is not valid"))
        }
        None => Err(OAuthError::invalid_grant("the refresh token is not valid")),
    }
}

/// The checks on an unrotated refresh token.
fn check_usable(row: &RefreshRow, client: &Client, now: i64) -> OAuthResult<()> {
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
    Ok(())
}

/// A token that was rotated before: a racing repeat within the grace window, or reuse.
async fn repeat(
    core: &Core,
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
        && now - rotated_at <= core.tokens.lifetimes().refresh_grace_period
        && let Some(sealed) = &row.successor
    {
        let plain = open(&successor_key(token), sealed)?;
        return serde_json::from_slice(&plain).map_err(OAuthError::internal);
    }
    core.store
        .revoke_grant(&row.grant_id, &row.client_id, now, row.family_expires_at)
        .await?;
    tracing::warn!(client_id = %client.id, "refresh token reused; grant family revoked");
    Err(OAuthError::invalid_grant(
        "this refresh token was already used; as a precaution the whole grant has been revoked and the user must sign in again (RFC 9700 §4.14.2)",
    ))
}
