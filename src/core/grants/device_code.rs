//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4-3.5): the device
//! polls until the user has decided.

use crate::core::Core;
use crate::core::device::SLOW_DOWN_SECS;
use crate::core::tokens::{TokenResponse, UserIssue};
use crate::crypto::secret::hash_token;
use crate::model::{Client, DeviceStatus};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::store::device::Pace;

use super::{active_user, new_family};

pub async fn handle(
    core: &Core,
    client: &Client,
    params: &Params,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let code = params.require("device_code")?;
    let hash = hash_token(code);
    let row = match core.store.device_by_code_hash(&hash).await? {
        Some(r) if r.client_id == client.id => r,
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "this device_code was issued to another client",
            ));
        }
        None => {
            return Err(OAuthError::invalid_grant(
                "unknown device_code; request a new one at the device authorization endpoint",
            ));
        }
    };
    if row.expires_at <= now {
        // §3.5: the client may start again with a new device authorization request.
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device_code has expired before the user approved it; start a new device authorization request",
        ));
    }
    match row.status {
        DeviceStatus::Pending => {
            let description = match core
                .store
                .pace_device_poll(&hash, now, SLOW_DOWN_SECS)
                .await?
            {
                Pace::Ok => {
                    return Err(OAuthError::new(
                        ErrorCode::AuthorizationPending,
                        "the user has not yet approved the request; keep polling at the interval",
                    ));
                }
                Pace::TooFast { interval_secs } => format!(
                    "polling too fast; wait at least {interval_secs} seconds between requests from now on (RFC 8628 §3.5)"
                ),
            };
            Err(OAuthError::new(ErrorCode::SlowDown, description))
        }
        DeviceStatus::Denied => Err(OAuthError::access_denied(
            "the user denied the request on the verification page",
        )),
        DeviceStatus::Consumed => Err(OAuthError::invalid_grant(
            "this device_code was already exchanged for tokens; it can be used only once",
        )),
        DeviceStatus::Approved => {
            let (Some(user_id), Some(grant)) = (row.user_id.as_deref(), row.data.as_ref()) else {
                return Err(OAuthError::internal(
                    "approved device row without its grant",
                ));
            };
            let user = active_user(core, user_id, grant.auth_time, grant.sid.as_deref()).await?;
            let grant_id = uuid::Uuid::new_v4().to_string();
            let issue = UserIssue {
                client,
                user: &user,
                grant_id: &grant_id,
                grant,
                nonce: None,
                family_expires_at: None,
            };
            // Sign first; then consuming the approval and recording the grant family share one
            // short transaction (the store's own): either the tokens exist and the code is
            // spent, or neither, and no transaction (on SQLite, no write lock) spans the
            // signatures.
            let minted = core.tokens.fresh_user_grant(&issue, now)?;
            let family = new_family(core, &issue, minted.refresh_hash.as_deref(), now);
            if !core
                .store
                .redeem_device(&hash, now, family.as_ref())
                .await?
            {
                return Err(OAuthError::invalid_grant(
                    "this device_code was already exchanged for tokens; it can be used only once",
                ));
            }
            Ok(minted.response)
        }
    }
}
