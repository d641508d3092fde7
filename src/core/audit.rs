//! The audit trail: security-relevant events (sign-ins, consents, logouts, device
//! decisions), in the store for `janitor.audit_retention_days` and in the log.

use crate::core::Core;
use crate::model::AuditEvent;

/// Record an audit event in the store and the log; a failure to record is logged, not fatal.
pub async fn audit(
    core: &Core,
    kind: &str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    ip: &str,
    now: i64,
) {
    tracing::info!(event = kind, user_id, client_id, ip, "audit");
    let e = AuditEvent {
        kind,
        user_id,
        client_id,
        ip: Some(ip),
        detail: serde_json::json!({}),
    };
    if let Err(err) = core.store.audit(&e, now).await {
        tracing::error!(error = %err, "could not write audit event");
    }
}
