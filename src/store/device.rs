//! Device authorizations (RFC 8628): the pending request a device polls for, and the user's
//! decision on it. Every rule that must hold across nodes (one decision, one issuance, the
//! polling pace) is a conditional UPDATE, so the database arbitrates races.

use crate::oauth::scope::{ordered, request_order};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::grants::{NewFamily, insert_family};
use super::{DbResult, Store, StoreError, encode_err, json_err};
use crate::model::{DeviceRow, DeviceStatus, GrantData};
use crate::oauth::types::ScopeSet;

/// A device authorization to record.
pub struct NewDevice<'a> {
    pub device_code_hash: &'a str,
    pub user_code: &'a str,
    pub client_id: &'a str,
    pub scope: &'a ScopeSet,
    /// The scopes in the order the device asked for them, for the confirmation page.
    pub scope_order: &'a [String],
    pub interval_secs: i64,
    pub expires_at: i64,
}

/// What a poll at the pace check found (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// The client waited its interval; its poll time is recorded.
    Ok,
    /// Too soon: the interval was raised by `slow_down_secs` and is now this many seconds.
    TooFast { interval_secs: i64 },
}

const SELECT: &str = "SELECT device_code_hash, user_code, client_id, scope, status, user_id, data,
        interval_secs, last_polled_at, created_at, expires_at
     FROM device_authorizations";

fn from_row(row: &AnyRow) -> DbResult<DeviceRow> {
    let scope: String = row.try_get("scope")?;
    let status: String = row.try_get("status")?;
    let data: Option<String> = row.try_get("data")?;
    Ok(DeviceRow {
        device_code_hash: row.try_get("device_code_hash")?,
        user_code: row.try_get("user_code")?,
        client_id: row.try_get("client_id")?,
        scope: ScopeSet::parse(&scope).map_err(|e| StoreError::corrupt("device scope", e))?,
        scope_order: request_order(Some(&scope)),
        status: DeviceStatus::parse(&status).ok_or_else(|| {
            StoreError::corrupt("device status", format!("unknown status `{status}`"))
        })?,
        user_id: row.try_get("user_id")?,
        data: data
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(json_err)?,
        interval_secs: row.try_get("interval_secs")?,
        last_polled_at: row.try_get("last_polled_at")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    /// Record a new device authorization. Returns false when the user code is taken by a
    /// live authorization (the caller draws another); an expired holder of the same code is
    /// removed first, since the janitor may not have reached it yet.
    pub async fn insert_device(&self, d: &NewDevice<'_>, now: i64) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM device_authorizations WHERE user_code = $1 AND expires_at <= $2")
            .bind(d.user_code)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO device_authorizations
               (device_code_hash, user_code, client_id, scope, status, interval_secs, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (user_code) DO NOTHING",
        )
        .bind(d.device_code_hash)
        .bind(d.user_code)
        .bind(d.client_id)
        // Stored in the order asked (the set is read back sorted; the order is for display).
        .bind(ordered(d.scope, d.scope_order).join(" "))
        .bind(DeviceStatus::Pending.as_str())
        .bind(d.interval_secs)
        .bind(now)
        .bind(d.expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Look up by the normalised user code the person typed.
    pub async fn device_by_user_code(&self, user_code: &str) -> DbResult<Option<DeviceRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE user_code = $1"
        )))
        .bind(user_code)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn device_by_code_hash(&self, hash: &str) -> DbResult<Option<DeviceRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE device_code_hash = $1"
        )))
        .bind(hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Record the user's decision, once: only a pending, unexpired authorization changes.
    /// `grant` is Some for an approval. Returns whether this call decided it.
    pub async fn decide_device(
        &self,
        user_code: &str,
        user_id: &str,
        grant: Option<&GrantData>,
        now: i64,
    ) -> DbResult<bool> {
        let status = if grant.is_some() {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        let data = grant
            .map(serde_json::to_string)
            .transpose()
            .map_err(encode_err)?;
        let done = sqlx::query(
            "UPDATE device_authorizations SET status = $2, user_id = $3, data = $4
             WHERE user_code = $1 AND status = $5 AND expires_at > $6",
        )
        .bind(user_code)
        .bind(status.as_str())
        .bind(user_id)
        .bind(data)
        .bind(DeviceStatus::Pending.as_str())
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Enforce the polling interval (RFC 8628 §3.5): a poll at least `interval_secs` after
    /// the previous one is recorded; an earlier one raises the interval by `slow_down_secs`
    /// for this and every later poll. Both are single statements, so nodes agree.
    pub async fn pace_device_poll(
        &self,
        hash: &str,
        now: i64,
        slow_down_secs: i64,
    ) -> DbResult<Pace> {
        let on_time = sqlx::query(
            "UPDATE device_authorizations SET last_polled_at = $2
             WHERE device_code_hash = $1
               AND (last_polled_at IS NULL OR last_polled_at + interval_secs <= $2)",
        )
        .bind(hash)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        if on_time == 1 {
            return Ok(Pace::Ok);
        }
        let row = sqlx::query(
            "UPDATE device_authorizations
             SET interval_secs = interval_secs + $3, last_polled_at = $2
             WHERE device_code_hash = $1
             RETURNING interval_secs",
        )
        .bind(hash)
        .bind(now)
        .bind(slow_down_secs)
        .fetch_one(self.pool())
        .await?;
        Ok(Pace::TooFast {
            interval_secs: row.try_get("interval_secs")?,
        })
    }

    /// Redeem an approved device authorization (RFC 8628 §3.5): mark it consumed and record
    /// `family`, if any (a grant with a refresh token), in one transaction that this call
    /// opens and commits. Either the authorization is spent and the family exists, or
    /// neither. True for exactly one of any number of concurrent callers; false, having
    /// written nothing, when it is not (or no longer) approved: already redeemed, or unknown.
    /// Expiry is the caller's to check against its `now`; `now` here dates the family.
    ///
    /// The caller signs its tokens *before* this, so no transaction (on SQLite, no write
    /// lock) is held across RSA signatures.
    pub async fn redeem_device(
        &self,
        hash: &str,
        now: i64,
        family: Option<&NewFamily<'_>>,
    ) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        let won = sqlx::query(
            "UPDATE device_authorizations SET status = $2 WHERE device_code_hash = $1 AND status = $3",
        )
        .bind(hash)
        .bind(DeviceStatus::Consumed.as_str())
        .bind(DeviceStatus::Approved.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !won {
            return Ok(false);
        }
        if let Some(f) = family {
            insert_family(&mut tx, f, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
