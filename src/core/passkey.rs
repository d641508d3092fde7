//! Passkeys (WebAuthn Level 2): adding them on the account page, and using them as the
//! second factor of a sign-in or to sign in without a password.
//!
//! `webauthn-rs` (from the Kanidm project) runs the ceremonies; this module keeps their
//! state, binds each to what it belongs to, and decides what a result means: which account,
//! which `amr`, whether to write the credential back. A ceremony of an account (adding a
//! passkey in a session, a passkey as the second factor of a pending sign-in) keeps its state
//! in the store, taken once. A sign-in with a passkey alone, which anyone can start, stores
//! nothing until a passkey answers: its state travels in the page sealed under the master
//! key (AES-256-GCM, bound to what it continues and when it expires), and a ceremony that
//! signed someone in is spent in the store, so its answer works once.
//!
//! A passkey check is not a guess (a signature over a fresh challenge cannot be found by
//! trying), so it is not counted against the account as codes are: a lockout tripped by
//! someone else's wrong codes must not also lock the owner's passkey out. Refused answers
//! are counted against the client address only, which bounds what a flood writes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

use crate::config::MfaMode;
use crate::core::Core;
use crate::core::attempts::{Attempt, Refusal};
use crate::core::audit::AuditKind;
use crate::core::mfa::{FactorFailure, Used, Where, address_guard, with_passkey};
use crate::crypto::secret::{hash_token, new_token};
use crate::model::{PasskeyRow, PendingPurpose, Session, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::store::passkeys::{Ceremony, CeremonyKind, NewPasskey};

/// The relying party: this server, as WebAuthn names it.
pub struct Passkeys {
    webauthn: Webauthn,
    /// The RP ID (WebAuthn Level 2 section 4): the issuer's host.
    pub rp_id: String,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("rp_id", &self.rp_id)
            .finish()
    }
}

impl Passkeys {
    /// The relying party of an issuer: its host is the RP ID and its origin the one origin
    /// accepted (WebAuthn Level 2 sections 5.1.3 and 7.1, step 9). None when the host is an
    /// IP address, which cannot be an RP ID (section 4: an RP ID is a valid domain
    /// string), so an issuer such as `http://127.0.0.1:8080` has no passkeys.
    pub fn for_issuer(issuer: &Url, rp_name: &str) -> Option<Self> {
        let rp_id = issuer.domain()?.to_owned();
        let origin = Url::parse(&issuer.origin().ascii_serialization()).ok()?;
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .ok()?
            .rp_name(rp_name)
            .build()
            .ok()?;
        Some(Passkeys { webauthn, rp_id })
    }
}

/// A ceremony begun: the value its page's form carries, and the options (JSON) for the
/// browser's `navigator.credentials` call.
#[derive(Debug)]
pub struct Started {
    pub token: String,
    pub options: String,
}

/// Why a passkey ceremony came to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyFailure {
    /// Its page expired, or was answered already: start again.
    Gone,
    /// The answer was not a WebAuthn credential.
    Malformed,
    /// The answer did not verify: wrong origin or challenge, a bad signature, no user
    /// verification, a signature counter that did not move on (a cloned authenticator, or
    /// two uses at once).
    Refused,
    /// A registration of a credential that is registered already.
    Taken,
    /// A sign-in with a passkey this server does not know (removed, or another site's).
    Unknown,
    /// Passkeys are off: the issuer's host is an IP address, or second factors are off.
    Unavailable,
    /// Too many refused passkeys from this address, or another being checked right now.
    Throttled,
}

impl PasskeyFailure {
    pub fn page_message(self) -> &'static str {
        match self {
            PasskeyFailure::Gone => "That passkey request expired. Try again.",
            PasskeyFailure::Malformed | PasskeyFailure::Refused => {
                crate::core::mfa::PASSKEY_REFUSED
            }
            PasskeyFailure::Taken => "That passkey is registered already.",
            PasskeyFailure::Unknown => {
                "This passkey is not registered here: it may have been removed. Sign in with your password."
            }
            PasskeyFailure::Unavailable => "Passkeys cannot be used on this server.",
            PasskeyFailure::Throttled => {
                "Too many sign-ins from your network failed. For your security, try again in a few minutes."
            }
        }
    }
}

/// The passkeys of this server, when it has them and second factors are on.
pub fn available(core: &Core) -> Option<&Passkeys> {
    if core.config.mfa.mode == MfaMode::Off {
        return None;
    }
    core.passkeys.as_ref()
}

/// The WebAuthn user handle of an account (section 5.4.3: opaque, at most 64 bytes, no
/// personal information): its id, which is a random UUID; any other id (none today) maps to
/// a UUID made from its hash, so every account has one.
pub fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        let digest = Sha256::digest(user_id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> OAuthResult<String> {
    serde_json::to_string(v).map_err(OAuthError::internal)
}

fn parse_passkey(row: &PasskeyRow) -> OAuthResult<Passkey> {
    serde_json::from_str(&row.credential).map_err(OAuthError::internal)
}

fn credential_id(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn begin(core: &Core, ceremony: Ceremony, options: String, now: i64) -> OAuthResult<Started> {
    let token = new_token();
    core.store
        .insert_ceremony(&hash_token(&token), &ceremony, now)
        .await?;
    Ok(Started { token, options })
}

/// Count a passkey check against the client address, as wrong passwords and codes are: not
/// because a passkey can be guessed, but so that a flood of refused answers adds at most the
/// address's limit of audit rows, and then waits. Never against the account: someone else's
/// refused answers must not lock its owner out.
async fn counted(core: &Core, at: Where<'_>, now: i64) -> OAuthResult<Result<Attempt, Refusal>> {
    let lease = core.config.limits.attempt_lease();
    Ok(Attempt::begin(&core.store, now, vec![address_guard(core, at.ip)], lease).await?)
}

fn lifetime(core: &Core, now: i64) -> i64 {
    now + core.config.sessions.interaction_ttl
}

/// Start adding a passkey named `name` to the account, in the signed-in `session` (only it
/// can finish the ceremony). Credentials it has already are excluded (section 5.4.3,
/// `excludeCredentials`), so one authenticator is not added twice.
pub async fn start_registration(
    core: &Core,
    user: &User,
    session: &Session,
    name: &str,
    now: i64,
) -> OAuthResult<Result<Started, PasskeyFailure>> {
    let Some(pk) = available(core) else {
        return Ok(Err(PasskeyFailure::Unavailable));
    };
    let mut exclude = Vec::new();
    for row in core.store.passkeys(&user.id).await? {
        exclude.push(parse_passkey(&row)?.cred_id().clone());
    }
    let (options, state) = pk
        .webauthn
        .start_passkey_registration(
            user_handle(&user.id),
            &user.username,
            &user.username,
            Some(exclude),
        )
        .map_err(OAuthError::internal)?;
    let ceremony = Ceremony {
        kind: CeremonyKind::Register,
        user_id: user.id.clone(),
        bound: registration_bound(session, user.has_factor),
        name: Some(name.to_owned()),
        state: to_json(&state)?,
        expires_at: lifetime(core, now),
    };
    Ok(Ok(begin(core, ceremony, to_json(&options)?, now).await?))
}

/// What a registration ceremony is bound to: the session adding the passkey, and whether
/// the account had a second factor when it started.
fn registration_bound(session: &Session, had_factor: bool) -> String {
    hash_token(&format!("{}|{had_factor}", session.sid))
}

/// A passkey added: whether it is the account's first second factor (its recovery codes
/// are made now, and this session counts as two-factor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub first: bool,
}

/// Finish adding a passkey with the browser's answer (`credential`, the JSON of
/// `PublicKeyCredential.toJSON()`) in the session that started it, and store it.
pub async fn finish_registration(
    core: &Core,
    user: &User,
    session: &Session,
    token: &str,
    credential: &str,
    at: Where<'_>,
    now: i64,
) -> OAuthResult<Result<Registered, PasskeyFailure>> {
    let Some(pk) = available(core) else {
        return Ok(Err(PasskeyFailure::Unavailable));
    };
    // Started in this session, and with the account as it is now: a registration started
    // before the account had a factor (with the password alone) does not finish after one
    // was added, which asks for that factor too.
    let first = !core.store.has_factor(&user.id).await?;
    let bound = registration_bound(session, !first);
    let Some(c) = core
        .store
        .take_ceremony(&hash_token(token), CeremonyKind::Register, now)
        .await?
        .filter(|c| c.user_id == user.id && c.bound == bound)
    else {
        return Ok(Err(PasskeyFailure::Gone));
    };
    let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else {
        return Ok(Err(PasskeyFailure::Malformed));
    };
    let state: PasskeyRegistration =
        serde_json::from_str(&c.state).map_err(OAuthError::internal)?;
    let passkey = match pk.webauthn.finish_passkey_registration(&answer, &state) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "passkey registration refused");
            return Ok(Err(PasskeyFailure::Refused));
        }
    };
    // credProps (section 10.4) is the browser's word, unsigned: shown, never relied on.
    let discoverable = answer
        .extensions
        .cred_props
        .as_ref()
        .and_then(|p| p.rk)
        .unwrap_or(false);
    let id = uuid::Uuid::new_v4().to_string();
    let stored = core
        .store
        .insert_passkey(&NewPasskey {
            id: &id,
            user_id: &user.id,
            name: c.name.as_deref().unwrap_or(DEFAULT_NAME),
            credential_id: &credential_id(passkey.cred_id().as_ref()),
            credential: &to_json(&passkey)?,
            discoverable,
            now,
        })
        .await?;
    if !stored {
        return Ok(Err(PasskeyFailure::Taken));
    }
    at.audit(core, AuditKind::MfaEnrolled, Some(user), now)
        .await;
    Ok(Ok(Registered { first }))
}

/// The name a passkey gets when none was typed.
pub const DEFAULT_NAME: &str = "Passkey";

/// Start a passkey check as the second factor of the pending sign-in `pending` (the value
/// its form carries). None when the account has no passkey.
pub async fn start_second_factor(
    core: &Core,
    user: &User,
    pending: &str,
    now: i64,
) -> OAuthResult<Option<Started>> {
    let Some(pk) = available(core) else {
        return Ok(None);
    };
    let rows = core.store.passkeys(&user.id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let keys = rows
        .iter()
        .map(parse_passkey)
        .collect::<OAuthResult<Vec<_>>>()?;
    let (options, state) = pk
        .webauthn
        .start_passkey_authentication(&keys)
        .map_err(OAuthError::internal)?;
    let ceremony = Ceremony {
        kind: CeremonyKind::SecondFactor,
        user_id: user.id.clone(),
        bound: hash_token(pending),
        name: None,
        state: to_json(&state)?,
        expires_at: lifetime(core, now),
    };
    Ok(Some(begin(core, ceremony, to_json(&options)?, now).await?))
}

/// Check a passkey given as the second factor of the pending sign-in `pending`:
/// `PasskeyRefused` when it did not verify (counted against the address, and audited), or
/// when its ceremony expired, was answered already or was replaced by a newer page (not
/// counted: the page asks again, with a new one).
pub async fn check_second_factor(
    core: &Core,
    user: &User,
    pending: &str,
    ceremony: &str,
    credential: &str,
    at: Where<'_>,
    now: i64,
) -> OAuthResult<Result<Used, FactorFailure>> {
    let Some(pk) = available(core) else {
        return Ok(Err(FactorFailure::PasskeyRefused));
    };
    let bound = hash_token(pending);
    let Some(c) = core
        .store
        .take_ceremony(&hash_token(ceremony), CeremonyKind::SecondFactor, now)
        .await?
        .filter(|c| c.user_id == user.id && c.bound == bound)
    else {
        return Ok(Err(FactorFailure::PasskeyRefused));
    };
    let state: PasskeyAuthentication =
        serde_json::from_str(&c.state).map_err(OAuthError::internal)?;
    let attempt = match counted(core, at, now).await? {
        Ok(a) => a,
        Err(Refusal::Locked { until }) => return Ok(Err(FactorFailure::Waiting { until })),
        Err(Refusal::Busy) => return Ok(Err(FactorFailure::InFlight)),
    };
    let verified = match serde_json::from_str::<PublicKeyCredential>(credential) {
        Ok(answer) => match pk.webauthn.finish_passkey_authentication(&answer, &state) {
            Ok(res) => Some(res),
            Err(e) => {
                tracing::info!(error = %e, "passkey refused as a second factor");
                None
            }
        },
        Err(_) => None,
    };
    // The state allowed only this account's credentials, so the one used is among them;
    // its stored counter is checked now, not as the ceremony's copy had it.
    let row = match &verified {
        Some(res) if res.user_verified() => core
            .store
            .passkey_by_credential(&credential_id(res.cred_id().as_ref()))
            .await?
            .filter(|r| r.user_id == user.id),
        _ => None,
    };
    let recorded = match (&verified, &row) {
        (Some(res), Some(row)) => record_use(core, row, res, now).await?,
        _ => false,
    };
    if !recorded {
        attempt.failed().await?;
        at.audit(core, AuditKind::MfaFailure, Some(user), now).await;
        return Ok(Err(FactorFailure::PasskeyRefused));
    }
    attempt.succeeded().await?;
    Ok(Ok(Used::Passkey))
}

/// The signature counter a stored credential last saw. `Passkey` keeps it to itself; its
/// stored form (the one the crate documents for persistence) has it.
fn stored_counter(row: &PasskeyRow) -> u64 {
    serde_json::from_str::<serde_json::Value>(&row.credential)
        .ok()
        .and_then(|v| {
            v.pointer("/cred/counter")
                .and_then(serde_json::Value::as_u64)
        })
        .unwrap_or(0)
}

/// Write a use back: when it was, and the credential's new signature counter and backup
/// state when they changed. False when the counter did not move past the stored one
/// (section 6.1.1: a cloned authenticator; authenticators without a counter send 0 every
/// time), or another use wrote the credential first.
async fn record_use(
    core: &Core,
    row: &PasskeyRow,
    res: &webauthn_rs::prelude::AuthenticationResult,
    now: i64,
) -> OAuthResult<bool> {
    let stored = stored_counter(row);
    let counter = u64::from(res.counter());
    if (counter != 0 || stored != 0) && counter <= stored {
        tracing::warn!(
            factor = %row.id,
            "a passkey's signature counter went back: a cloned authenticator, or two uses at once"
        );
        return Ok(false);
    }
    let mut passkey = parse_passkey(row)?;
    let changed = passkey.update_credential(res) == Some(true);
    let credential = if changed {
        Some(to_json(&passkey)?)
    } else {
        None
    };
    Ok(core
        .store
        .passkey_used(&row.id, &row.credential, credential.as_deref(), now)
        .await?)
}

/// What a sign-in ceremony's sealed state is bound to: its purpose, what it continues, and
/// when it expires (AES-GCM associated data: a state made for one request does not open for
/// another).
fn sign_in_context(purpose: PendingPurpose, continues: Option<&str>, expires_at: i64) -> Vec<u8> {
    let continues = continues.map(hash_token).unwrap_or_default();
    format!(
        "latchkey passkey sign-in|{}|{continues}|{expires_at}",
        purpose.as_str()
    )
    .into_bytes()
}

/// Start a sign-in with a passkey alone, for `purpose` continuing `continues` (the
/// interaction id or device user code; None for the account page). The browser offers the
/// discoverable passkeys it holds for this server; none is named (section 5.5,
/// `allowCredentials` empty). Nothing is stored: the token is the sealed state.
pub async fn start_sign_in(
    core: &Core,
    purpose: PendingPurpose,
    continues: Option<&str>,
    now: i64,
) -> OAuthResult<Result<Started, PasskeyFailure>> {
    let Some(pk) = available(core) else {
        return Ok(Err(PasskeyFailure::Unavailable));
    };
    let (mut options, state) = pk
        .webauthn
        .start_discoverable_authentication()
        .map_err(OAuthError::internal)?;
    // webauthn-rs asks for conditional mediation (passkeys offered in the username field's
    // autofill); this page asks with a button, a modal request.
    options.mediation = None;
    let expires_at = lifetime(core, now);
    let sealed = sign_in_key(core)
        .encrypt_bound(
            to_json(&state)?.as_bytes(),
            &sign_in_context(purpose, continues, expires_at),
        )
        .map_err(OAuthError::internal)?;
    Ok(Ok(Started {
        token: format!("{expires_at}.{sealed}"),
        options: to_json(&options)?,
    }))
}

/// The key sign-in states are sealed under: a subkey of the master key of its own.
fn sign_in_key(core: &Core) -> crate::crypto::aead::MasterKey {
    core.sealing.subkey("latchkey passkey sign-in")
}

/// A sign-in ceremony opened: its state, when it expires, and what spends it (the hash of
/// the state, which holds the ceremony's random challenge: the same for any spelling of the
/// token).
struct Opened {
    state: DiscoverableAuthentication,
    expires_at: i64,
    spent_as: String,
}

/// A sign-in ceremony's state, when `token` is one this server sealed for `purpose` and
/// `continues`, and it has not expired.
fn open_sign_in(
    core: &Core,
    token: &str,
    purpose: PendingPurpose,
    continues: Option<&str>,
    now: i64,
) -> Option<Opened> {
    let (expires, sealed) = token.split_once('.')?;
    let expires_at: i64 = expires.parse().ok()?;
    // Only the spelling this server wrote ("+1" or "01" would parse the same).
    if expires != expires_at.to_string() || expires_at <= now {
        return None;
    }
    let context = sign_in_context(purpose, continues, expires_at);
    let (plain, _) = sign_in_key(core)
        .decrypt_bound_telling(sealed, &context)
        .ok()?;
    let text = std::str::from_utf8(&plain).ok()?;
    Some(Opened {
        state: serde_json::from_str(text).ok()?,
        expires_at,
        spent_as: hash_token(text),
    })
}

/// A sign-in with a passkey alone: the account, and its `amr`.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub amr: Vec<String>,
}

/// Finish a sign-in with a passkey alone: the ceremony must be for `purpose` and
/// `continues`, the passkey one this server registered, its account enabled, and the
/// assertion must verify with user verification; the ceremony is then spent. Refusals are
/// counted against the address and audited.
pub async fn finish_sign_in(
    core: &Core,
    token: &str,
    purpose: PendingPurpose,
    continues: Option<&str>,
    credential: &str,
    at: Where<'_>,
    now: i64,
) -> OAuthResult<Result<SignedIn, PasskeyFailure>> {
    let Some(pk) = available(core) else {
        return Ok(Err(PasskeyFailure::Unavailable));
    };
    let Some(opened) = open_sign_in(core, token, purpose, continues, now) else {
        return Ok(Err(PasskeyFailure::Gone));
    };
    let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(Err(PasskeyFailure::Malformed));
    };
    let Ok((handle, cred_id)) = pk.webauthn.identify_discoverable_authentication(&answer) else {
        return Ok(Err(PasskeyFailure::Malformed));
    };
    let Ok(attempt) = counted(core, at, now).await? else {
        return Ok(Err(PasskeyFailure::Throttled));
    };
    // Section 7.2, step 6: the credential must belong to the account the user handle names.
    let row = core
        .store
        .passkey_by_credential(&credential_id(cred_id))
        .await?
        .filter(|r| user_handle(&r.user_id) == handle);
    let user = match &row {
        Some(r) => core.store.get_user(&r.user_id).await?,
        None => None,
    };
    let (Some(row), Some(user)) = (row, user) else {
        attempt.failed().await?;
        at.audit(core, AuditKind::LoginFailure, None, now).await;
        return Ok(Err(PasskeyFailure::Unknown));
    };
    let passkey = parse_passkey(&row)?;
    let verified =
        match pk
            .webauthn
            .finish_discoverable_authentication_v2(&answer, opened.state, &passkey)
        {
            Ok(res) if res.user_verified() && !user.disabled => Some(res),
            Ok(_) => None,
            Err(e) => {
                tracing::info!(error = %e, "passkey sign-in refused");
                None
            }
        };
    let Some(res) = verified else {
        attempt.failed().await?;
        at.audit(core, AuditKind::LoginFailure, Some(&user), now)
            .await;
        return Ok(Err(PasskeyFailure::Refused));
    };
    // Spent once it verified, before anything is written: the same answer again (a
    // replay) finds it spent and changes nothing.
    if !core
        .store
        .spend_sign_in(&opened.spent_as, opened.expires_at)
        .await?
    {
        attempt.withdraw().await?;
        return Ok(Err(PasskeyFailure::Gone));
    }
    if !record_use(core, &row, &res, now).await? {
        attempt.failed().await?;
        at.audit(core, AuditKind::LoginFailure, Some(&user), now)
            .await;
        return Ok(Err(PasskeyFailure::Refused));
    }
    attempt.succeeded().await?;
    at.audit(core, AuditKind::LoginSuccess, Some(&user), now)
        .await;
    Ok(Ok(SignedIn {
        amr: with_passkey(&[]),
        user,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host_and_origin() {
        let url = |s: &str| Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let pk = Passkeys::for_issuer(&url("https://auth.example.com/tenant"), "Latchkey");
        assert_eq!(pk.map(|p| p.rp_id), Some("auth.example.com".to_owned()));
        let local = Passkeys::for_issuer(&url("http://localhost:8080"), "Latchkey");
        assert_eq!(local.map(|p| p.rp_id), Some("localhost".to_owned()));
        // Section 5.1.2: an IP address is not an RP ID.
        assert!(Passkeys::for_issuer(&url("http://127.0.0.1:8080"), "Latchkey").is_none());
        assert!(Passkeys::for_issuer(&url("http://[::1]:8080"), "Latchkey").is_none());
    }

    #[test]
    fn a_passkey_adds_its_key_the_user_test_and_mfa() {
        // RFC 8176 section 2.
        let pwd = vec!["pwd".to_owned()];
        assert_eq!(with_passkey(&pwd), ["pwd", "swk", "user", "mfa"]);
        assert_eq!(with_passkey(&[]), ["swk", "user", "mfa"]);
    }

    #[test]
    fn every_account_has_a_stable_user_handle() {
        let id = "9b2f5c1e-7d4a-4e61-9d0c-3f6b8a1e2c47";
        assert_eq!(user_handle(id).to_string(), id);
        assert_eq!(user_handle("admin"), user_handle("admin"));
        assert_ne!(user_handle("admin"), user_handle("admin2"));
    }
}
