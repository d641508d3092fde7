//! The audit trail: security-relevant events (sign-ins, consents, logouts, device
//! decisions), in the store for `janitor.audit_retention_days` and in the log.

use crate::core::Core;
use crate::model::AuditEvent;
use std::net::IpAddr;

/// What happened. Stored and logged by its `as_str` name, which is what operators query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    LoginSuccess,
    /// A password that was checked and was wrong (refusals before any check are not audited:
    /// a flood would write a row each).
    LoginFailure,
    /// Client credentials refused as invalid_client (unknown client, wrong secret, wrong
    /// method, no secret), each counted by the throttle first; refusals by the throttle are
    /// not audited, for the same reason.
    ClientAuthFailure,
    ConsentGranted,
    ConsentDenied,
    DeviceApproved,
    DeviceDenied,
    Logout,
    /// A right password for an account that signs in with a second factor: the code is
    /// asked next (or, at the password grant, which cannot ask, the sign-in is refused).
    PasswordAccepted,
    /// A person changed their own profile claims on the account page.
    ProfileUpdated,
    /// An authenticator app was set up (its first code confirmed).
    MfaEnrolled,
    /// A second factor was given another name by its user.
    MfaRenamed,
    /// A second factor was removed, by the user or by an admin's reset.
    MfaRemoved,
    /// A second-factor code that was checked and was wrong (or used before).
    MfaFailure,
    /// A recovery code signed in (one fewer left).
    RecoveryCodeUsed,
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesRenewed,
    /// The user signed one of their other sessions out from the account page.
    SessionEnded,
    /// The user signed every other session out from the account page.
    OtherSessionsEnded,
    /// The user took an app's access away: its consent, grants and refresh tokens.
    AppRemoved,
    /// The user changed their password, which signed them out everywhere else.
    PasswordChanged,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSuccess => "login.success",
            AuditKind::LoginFailure => "login.failure",
            AuditKind::ClientAuthFailure => "client_auth.failure",
            AuditKind::ConsentGranted => "consent.granted",
            AuditKind::ConsentDenied => "consent.denied",
            AuditKind::DeviceApproved => "device.approved",
            AuditKind::DeviceDenied => "device.denied",
            AuditKind::Logout => "logout",
            AuditKind::PasswordAccepted => "login.password_accepted",
            AuditKind::ProfileUpdated => "profile.updated",
            AuditKind::MfaEnrolled => "mfa.enrolled",
            AuditKind::MfaRenamed => "mfa.renamed",
            AuditKind::MfaRemoved => "mfa.removed",
            AuditKind::MfaFailure => "mfa.failure",
            AuditKind::RecoveryCodeUsed => "mfa.recovery_code_used",
            AuditKind::RecoveryCodesRenewed => "mfa.recovery_codes_renewed",
            AuditKind::SessionEnded => "session.ended",
            AuditKind::OtherSessionsEnded => "session.others_ended",
            AuditKind::AppRemoved => "consent.revoked",
            AuditKind::PasswordChanged => "password.changed",
        }
    }
}

/// Record an audit event in the store and the log; a failure to record is logged, not fatal.
pub async fn audit(
    core: &Core,
    kind: AuditKind,
    user_id: Option<&str>,
    client_id: Option<&str>,
    ip: Option<IpAddr>,
    now: i64,
) {
    let kind = kind.as_str();
    let ip = ip.map(|ip| ip.to_string());
    tracing::info!(event = kind, user_id, client_id, ip, "audit");
    let e = AuditEvent {
        kind,
        user_id,
        client_id,
        ip: ip.as_deref(),
        detail: serde_json::json!({}),
    };
    if let Err(err) = core.store.audit(&e, now).await {
        tracing::error!(error = %err, "could not write audit event");
    }
}
