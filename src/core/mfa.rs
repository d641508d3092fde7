//! Second factors: setting up an authenticator app, checking its codes, and the sign-in that
//! waits between a right password and its second factor.
//!
//! Codes are guessable (each guess hits 3 of 10^6 codes, with one step of skew either way),
//! so every check is an `Attempt` under the same kind of throttle as passwords: one check at
//! a time per account, lockouts that double, and a per-address limit. A code is accepted once
//! (RFC 6238 section 5.2): the store moves the factor's last step past it in the statement
//! that accepts it, so a replayed code, or one raced from two browsers, fails.

use std::net::IpAddr;

use crate::config::MfaMode;
use crate::core::Core;
use crate::core::attempts::{Attempt, Guard, OnSuccess, Refusal, ThrottleKey, address_key};
use crate::core::audit::{AuditKind, audit};
use crate::core::login::{throttle_policy, wait_words};
use crate::crypto::recovery;
use crate::crypto::secret::{hash_token, new_token};
use crate::crypto::totp::TotpSecret;
use crate::model::{
    Client, Factor, FactorKind, PendingLogin, PendingPurpose, Session, TotpRow, User,
};
use crate::oauth::acr::{Level, Requested};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::store::factors::NewFactor;

/// RFC 8176 section 2: the `amr` values a second factor adds: a one-time password, more
/// than one factor; proof of possession of a software-secured key, and a user presence test
/// (a passkey: WebAuthn's user verification, which every ceremony here requires, is more
/// than presence, but how it was done, PIN or biometric, is not known).
pub const AMR_OTP: &str = "otp";
pub const AMR_MFA: &str = "mfa";
pub const AMR_SWK: &str = "swk";
pub const AMR_USER: &str = "user";

/// Why a second-factor code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorFailure {
    /// Not the code of this moment, or a code already used.
    Wrong,
    /// Not shaped like a code at all: refused before anything is counted.
    Malformed,
    /// This wrong code reached the limit for the account or the address.
    Locked { until: i64 },
    /// Refused unchecked: the account or the address is locked out until then.
    Waiting { until: i64 },
    /// Another code for this account is being checked right now.
    InFlight,
    /// The enrolment being confirmed lapsed, or was confirmed already; or the factor was
    /// removed meanwhile; or the passkey request was answered already.
    Gone,
    /// A passkey that did not verify.
    PasskeyRefused,
}

impl FactorFailure {
    /// Whether a code was checked (and so is worth an audit row: refusals before any check
    /// are not audited, or a flood would write a row each).
    pub fn was_checked(self) -> bool {
        matches!(
            self,
            FactorFailure::Wrong | FactorFailure::Locked { .. } | FactorFailure::PasskeyRefused
        )
    }

    pub fn page_message(self, now: i64) -> String {
        match self {
            FactorFailure::Wrong => "That code is not right, or was used already. Type the code your authenticator app shows now.".to_owned(),
            FactorFailure::Malformed => "Type one of your recovery codes (XXXX-XXXX-XXXX), or the 6-digit code your authenticator app shows now if you have one.".to_owned(),
            FactorFailure::Locked { until } | FactorFailure::Waiting { until } => format!(
                "Too many wrong codes. For your security, sign-in is paused; try again in {}.",
                wait_words(until - now)
            ),
            FactorFailure::InFlight => "Another code for this account is being checked; try again in a few seconds.".to_owned(),
            FactorFailure::Gone => "This setup has expired. Start again.".to_owned(),
            FactorFailure::PasskeyRefused => PASSKEY_REFUSED.to_owned(),
        }
    }
}

/// What a page says of a passkey that was not accepted.
pub const PASSKEY_REFUSED: &str =
    "Your passkey could not be checked. Try again, or use another way to sign in.";

/// The guards of a code check: the address first, then the account. The account's counter
/// is its own, apart from the password's: a right password does not clear wrong codes.
fn guards(core: &Core, user_id: &str, ip: IpAddr) -> Vec<Guard> {
    let s = &core.config.login;
    vec![
        address_guard(core, ip),
        Guard {
            key: ThrottleKey::MfaUser(user_id.to_owned()),
            policy: throttle_policy(s, s.max_failures, 1),
            on_success: OnSuccess::Clear,
            counts_abandoned: false,
        },
    ]
}

/// The per-address guard of second-factor checks (codes and passkeys alike).
pub fn address_guard(core: &Core, ip: IpAddr) -> Guard {
    let s = &core.config.login;
    Guard {
        key: ThrottleKey::MfaAddress(address_key(ip)),
        policy: throttle_policy(s, s.max_failures_per_ip, s.max_in_flight_per_ip),
        on_success: OnSuccess::Credit,
        counts_abandoned: true,
    }
}

/// Run `check` as a throttled attempt: it returns whether the code was accepted.
async fn attempt<F, Fut>(
    core: &Core,
    user_id: &str,
    ip: IpAddr,
    now: i64,
    check: F,
) -> OAuthResult<Result<(), FactorFailure>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = OAuthResult<Option<bool>>>,
{
    let lease = core.config.limits.attempt_lease();
    let attempt = match Attempt::begin(&core.store, now, guards(core, user_id, ip), lease).await? {
        Ok(a) => a,
        Err(Refusal::Locked { until }) => return Ok(Err(FactorFailure::Waiting { until })),
        Err(Refusal::Busy) => return Ok(Err(FactorFailure::InFlight)),
    };
    match check().await {
        // Nothing to check against: not a guess.
        Ok(None) => {
            attempt.withdraw().await?;
            Ok(Err(FactorFailure::Gone))
        }
        Ok(Some(true)) => {
            attempt.succeeded().await?;
            Ok(Ok(()))
        }
        Ok(Some(false)) => Ok(Err(match attempt.failed().await? {
            Some(until) => FactorFailure::Locked { until },
            None => FactorFailure::Wrong,
        })),
        Err(e) => {
            attempt.withdraw().await?;
            Err(e)
        }
    }
}

fn open(core: &Core, row: &TotpRow) -> OAuthResult<TotpSecret> {
    TotpSecret::open(&core.sealing, &row.secret_enc, &row.id).map_err(OAuthError::internal)
}

/// Which second factor a sign-in used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    /// A code from the authenticator app.
    App,
    /// One of the recovery codes, now used up.
    RecoveryCode,
    /// A passkey.
    Passkey,
}

impl Used {
    /// `amr` after this factor on top of `amr` (RFC 8176 section 2).
    pub fn added_to(self, amr: &[String]) -> Vec<String> {
        match self {
            Used::App | Used::RecoveryCode => with_second_factor(amr),
            Used::Passkey => with_passkey(amr),
        }
    }
}

/// Check a code from the user's authenticator app, or one of their recovery codes, and use
/// it up. Both share one throttle: recovery codes are no way around the limit on guesses.
pub async fn check_code(
    core: &Core,
    user: &User,
    code: &str,
    at: Where<'_>,
    now: i64,
) -> OAuthResult<Result<Used, FactorFailure>> {
    let ip = at.ip;
    let recovery_code = recovery::normalize(code);
    if recovery_code.is_none() && !TotpSecret::well_formed(code) {
        // Not a code of either kind: no guess was made, nothing is counted.
        return Ok(Err(FactorFailure::Malformed));
    }
    let mut used = Used::App;
    let checked = attempt(core, &user.id, ip, now, || async {
        if let Some(canonical) = &recovery_code {
            // Recovery codes stand in for any second factor (a lost passkey too), and go
            // with the last one.
            if !core.store.has_factor(&user.id).await? {
                return Ok(None);
            }
            used = Used::RecoveryCode;
            let hash = hash_token(canonical);
            return Ok(Some(
                core.store.use_recovery_code(&user.id, &hash, now).await?,
            ));
        }
        let Some(row) = core.store.confirmed_totp(&user.id).await? else {
            return Ok(None);
        };
        let Some(step) = open(core, &row)?.matching_step(code, now) else {
            return Ok(Some(false));
        };
        Ok(Some(core.store.accept_totp_step(&row.id, step, now).await?))
    })
    .await?;
    // An app code for an account without an app (but with a passkey): nothing was guessed,
    // and the page asks for what the account has.
    let checked = match checked {
        Err(FactorFailure::Gone)
            if recovery_code.is_none() && core.store.has_factor(&user.id).await? =>
        {
            Err(FactorFailure::Malformed)
        }
        other => other,
    };
    let outcome = checked.map(|()| used);
    match outcome {
        Ok(Used::RecoveryCode) => {
            at.audit(core, AuditKind::RecoveryCodeUsed, Some(user), now)
                .await;
        }
        Err(f) if f.was_checked() => at.audit(core, AuditKind::MfaFailure, Some(user), now).await,
        _ => {}
    }
    Ok(outcome)
}

/// Where a code was typed, for the throttle and the audit log: the client address, and the
/// app the sign-in is for, if any.
#[derive(Debug, Clone, Copy)]
pub struct Where<'a> {
    pub ip: IpAddr,
    pub client_id: Option<&'a str>,
}

impl Where<'_> {
    pub(crate) async fn audit(self, core: &Core, kind: AuditKind, user: Option<&User>, now: i64) {
        audit(
            core,
            kind,
            user.map(|u| u.id.as_str()),
            self.client_id,
            Some(self.ip),
            now,
        )
        .await;
    }
}

/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;

/// A new set of recovery codes for the user, replacing any earlier set (which stops working
/// now). Returned once, to be shown once: only their hashes are kept.
pub async fn new_recovery_codes(core: &Core, user: &User, now: i64) -> OAuthResult<Vec<String>> {
    let codes = recovery::generate(RECOVERY_CODES);
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| recovery::normalize(c))
        .map(|c| hash_token(&c))
        .collect();
    core.store
        .replace_recovery_codes(&user.id, &hashes, now)
        .await?;
    Ok(codes)
}

/// How many of the user's recovery codes are unused.
pub async fn recovery_codes_left(core: &Core, user_id: &str) -> OAuthResult<i64> {
    Ok(core.store.recovery_codes_left(user_id).await?)
}

/// The level a sign-in for a client must reach, and whether it must (else it is only
/// preferred, and a user without a second factor goes on with a password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub level: Level,
    pub essential: bool,
}

/// A requirement this server cannot meet (an essential `acr` it does not know, or two
/// factors while second factors are off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmet;

impl Unmet {
    /// OpenID Connect Core Unmet Authentication Requirements 1.0 section 2.
    pub fn error(self) -> OAuthError {
        OAuthError::new(
            ErrorCode::UnmetAuthenticationRequirements,
            "the essential acr requested is not one this server can reach (see acr_values_supported in discovery)",
        )
    }
}

/// What a sign-in for `client` needs: the server's `[mfa] mode`, the client's
/// `require_mfa`, and the request's `acr_values` or essential `acr`, the highest of them.
pub fn need(mode: MfaMode, client: &Client, requested: &Requested) -> Result<Need, Unmet> {
    if *requested == Requested::Unmeetable {
        return Err(Unmet);
    }
    let mut need = Need {
        level: Level::Password,
        essential: false,
    };
    if let Some((level, essential)) = requested.needs() {
        need = Need { level, essential };
    }
    if mode == MfaMode::Off {
        // Second factors are never asked for: a request that insists on them is refused, one
        // that prefers them gets the password level.
        return if need.essential && need.level > Level::Password {
            Err(Unmet)
        } else {
            Ok(Need {
                level: Level::Password,
                essential: need.essential,
            })
        };
    }
    if mode == MfaMode::Required || client.settings.require_mfa {
        need = Need {
            level: Level::MultiFactor,
            essential: true,
        };
    }
    Ok(need)
}

/// What a signed-in session lacks for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// The user's second factor, to be added to the session (a step-up).
    SecondFactor,
    /// A second factor the user has not set up, and the request insists on.
    Enrol,
}

/// Whether `session` falls short of what a request from `client` needs: None when it may
/// go on (it reached the level, or the level is only preferred and the user has no second
/// factor to add). Every place that issues from a session asks this, so no form can skip
/// the step the decision showed.
pub fn shortfall(
    core: &Core,
    client: &Client,
    requested: &Requested,
    session: &Session,
    user: &User,
) -> Result<Option<Shortfall>, Unmet> {
    let need = need(core.config.mfa.mode, client, requested)?;
    let reached = Level::of_amr(&session.amr);
    if owes_factor(core, session, user) {
        return Ok(Some(Shortfall::SecondFactor));
    }
    Ok((reached < need.level && need.essential).then_some(Shortfall::Enrol))
}

/// Whether `session` must give its user's second factor before it is used for anything:
/// it signed in with the password alone and the user has a factor. A session from before
/// the factor was set up (a password someone else may also know made it) gives it first,
/// whatever the request asks.
pub fn owes_factor(core: &Core, session: &Session, user: &User) -> bool {
    Level::of_amr(&session.amr) < Level::MultiFactor && asks_for_factor(core, user)
}

/// Whether second factors are checked at sign-in for this user: they have one, and the
/// server has not turned them off.
pub fn asks_for_factor(core: &Core, user: &User) -> bool {
    core.config.mfa.mode != MfaMode::Off && user.has_factor
}

/// An authenticator app being set up: shown until its first code is typed.
#[derive(Debug)]
pub struct Enrolment {
    pub factor_id: String,
    pub secret: TotpSecret,
}

/// The name an authenticator app is listed under until the user renames it.
pub const DEFAULT_TOTP_NAME: &str = "Authenticator app";

/// Start setting up an authenticator app: a new secret, stored sealed and unconfirmed for
/// as long as a sign-in page lasts. None when the user has one already (one per account).
pub async fn start_totp(core: &Core, user: &User, now: i64) -> OAuthResult<Option<Enrolment>> {
    if core.store.confirmed_totp(&user.id).await?.is_some() {
        return Ok(None);
    }
    let secret = TotpSecret::generate();
    let factor_id = uuid::Uuid::new_v4().to_string();
    let sealed = secret
        .seal(&core.sealing, &factor_id)
        .map_err(OAuthError::internal)?;
    core.store
        .insert_factor(&NewFactor {
            id: &factor_id,
            user_id: &user.id,
            kind: FactorKind::Totp,
            name: DEFAULT_TOTP_NAME,
            secret_enc: Some(&sealed),
            created_at: now,
            expires_at: now + core.config.sessions.interaction_ttl,
        })
        .await?;
    Ok(Some(Enrolment { factor_id, secret }))
}

/// An enrolment of this user's still waiting for its first code, to show it again.
pub async fn enrolment(
    core: &Core,
    user: &User,
    factor_id: &str,
    now: i64,
) -> OAuthResult<Option<Enrolment>> {
    match core
        .store
        .unconfirmed_totp(factor_id, &user.id, now)
        .await?
    {
        Some(row) => Ok(Some(Enrolment {
            factor_id: row.id.clone(),
            secret: open(core, &row)?,
        })),
        None => Ok(None),
    }
}

/// Confirm an enrolment with its first code, which is used up by doing so. Throttled like a
/// sign-in: the person is signed in, but a stolen session must not get unlimited guesses.
pub async fn confirm_totp(
    core: &Core,
    user: &User,
    factor_id: &str,
    code: &str,
    at: Where<'_>,
    now: i64,
) -> OAuthResult<Result<(), FactorFailure>> {
    let outcome = confirm(core, user, factor_id, code, at.ip, now).await?;
    match outcome {
        Ok(()) => {
            at.audit(core, AuditKind::MfaEnrolled, Some(user), now)
                .await
        }
        Err(f) if f.was_checked() => at.audit(core, AuditKind::MfaFailure, Some(user), now).await,
        Err(_) => {}
    }
    Ok(outcome)
}

async fn confirm(
    core: &Core,
    user: &User,
    factor_id: &str,
    code: &str,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Result<(), FactorFailure>> {
    if !TotpSecret::well_formed(code) {
        return Ok(Err(FactorFailure::Malformed));
    }
    attempt(core, &user.id, ip, now, || async {
        let Some(row) = core
            .store
            .unconfirmed_totp(factor_id, &user.id, now)
            .await?
        else {
            return Ok(None);
        };
        let Some(step) = open(core, &row)?.matching_step(code, now) else {
            return Ok(Some(false));
        };
        if core
            .store
            .confirm_totp(&row.id, &user.id, step, now)
            .await?
        {
            Ok(Some(true))
        } else {
            // It lapsed or another confirmation won meanwhile: nothing was guessed wrong.
            Ok(None)
        }
    })
    .await
}

/// How long a factor's name may be.
pub const MAX_FACTOR_NAME: usize = 64;

/// Give one of the user's factors a name of their choosing ("Work phone"): one line of at
/// most `MAX_FACTOR_NAME` characters. Ok(false) when the user has no such factor; Err when
/// the name is not acceptable.
pub async fn rename(
    core: &Core,
    user: &User,
    factor_id: &str,
    name: &str,
    at: Where<'_>,
    now: i64,
) -> OAuthResult<Result<bool, ()>> {
    let Some(name) = valid_name(name) else {
        return Ok(Err(()));
    };
    let renamed = core.store.rename_factor(&user.id, factor_id, name).await?;
    if renamed {
        at.audit(core, AuditKind::MfaRenamed, Some(user), now).await;
    }
    Ok(Ok(renamed))
}

/// A factor's name as typed, trimmed, when it is acceptable: one line of 1 to
/// `MAX_FACTOR_NAME` characters.
pub fn valid_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_FACTOR_NAME
        && !name.chars().any(char::is_control);
    ok.then_some(name)
}

/// The user's second factors, for the account page and the CLI.
pub async fn factors(core: &Core, user_id: &str) -> OAuthResult<Vec<Factor>> {
    Ok(core.store.factors(user_id).await?)
}

/// Start the wait for a second factor after a right password checked at `auth_time`. The
/// returned value goes in the factor form; only its hash is stored.
pub async fn begin_pending(
    core: &Core,
    user: &User,
    purpose: PendingPurpose,
    interaction: Option<&str>,
    auth_time: i64,
    now: i64,
) -> OAuthResult<String> {
    begin(core, user, purpose, interaction, None, auth_time, now).await
}

/// Start a step-up: the signed-in `session` is asked for its user's second factor, which is
/// then added to it in place.
pub async fn begin_step_up(
    core: &Core,
    user: &User,
    session: &Session,
    purpose: PendingPurpose,
    interaction: Option<&str>,
    now: i64,
) -> OAuthResult<String> {
    let token = begin(
        core,
        user,
        purpose,
        interaction,
        Some(session),
        session.auth_time,
        now,
    )
    .await?;
    Ok(token)
}

async fn begin(
    core: &Core,
    user: &User,
    purpose: PendingPurpose,
    interaction: Option<&str>,
    session: Option<&Session>,
    auth_time: i64,
    now: i64,
) -> OAuthResult<String> {
    let token = new_token();
    core.store
        .insert_pending_login(
            &hash_token(&token),
            &PendingLogin {
                user_id: user.id.clone(),
                purpose,
                // Only a hash, as the interactions table keeps: a database reader learns
                // nothing that continues a sign-in.
                interaction: interaction.map(hash_token),
                sid: session.map(|s| s.sid.clone()),
                amr: session.map_or_else(|| vec!["pwd".into()], |s| s.amr.clone()),
                auth_time,
                expires_at: now + core.config.sessions.interaction_ttl,
            },
            now,
        )
        .await?;
    Ok(token)
}

/// A live pending sign-in and its user (who must still be enabled).
pub async fn pending(
    core: &Core,
    token: &str,
    now: i64,
) -> OAuthResult<Option<(PendingLogin, User)>> {
    let Some(p) = core
        .store
        .get_pending_login(&hash_token(token), now)
        .await?
    else {
        return Ok(None);
    };
    Ok(core
        .store
        .get_user(&p.user_id)
        .await?
        .filter(|u| u.honours_authentication_at(p.auth_time))
        .map(|u| (p, u)))
}

/// Take the pending sign-in once its factor (`used`) is accepted: the `amr` of the session it
/// starts, or None when another request took it first.
pub async fn finish_pending(
    core: &Core,
    token: &str,
    used: Used,
    now: i64,
) -> OAuthResult<Option<Vec<String>>> {
    Ok(core
        .store
        .take_pending_login(&hash_token(token), now)
        .await?
        .map(|p| used.added_to(&p.amr)))
}

/// `amr` after a one-time code: the password's, plus `otp` and `mfa` (RFC 8176 section 2).
pub fn with_second_factor(amr: &[String]) -> Vec<String> {
    adding(amr, &[AMR_OTP, AMR_MFA])
}

/// `amr` after a passkey on top of `amr` (empty for a passkey alone): the key, the user test,
/// and `mfa`, since a user-verified passkey is two factors in one (something held, and
/// something known or that one is). The key is `swk`, never `hwk`: without attestation (not
/// asked for) the server cannot know that a key lives in hardware.
pub fn with_passkey(amr: &[String]) -> Vec<String> {
    adding(amr, &[AMR_SWK, AMR_USER, AMR_MFA])
}

fn adding(amr: &[String], more: &[&str]) -> Vec<String> {
    let mut out = amr.to_vec();
    for m in more {
        if !out.iter().any(|a| a == m) {
            out.push((*m).to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::totp::STEP_SECONDS;
    use crate::testing::{Fixture, NOW};

    const AT: Where<'static> = Where {
        ip: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9)),
        client_id: None,
    };

    async fn enrolled(f: &Fixture) -> (User, TotpSecret) {
        let alice = f.user("alice").await;
        let e = start_totp(&f.core, &alice, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("alice has no app yet"));
        let code = e.secret.code_at(NOW / STEP_SECONDS);
        let done = confirm_totp(&f.core, &alice, &e.factor_id, &code, AT, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(done, Ok(()));
        (alice, e.secret)
    }

    async fn check(f: &Fixture, user: &User, code: &str, now: i64) -> Result<(), FactorFailure> {
        check_code(&f.core, user, code, AT, now)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .map(|used| assert_eq!(used, Used::App))
    }

    #[tokio::test]
    async fn the_confirming_code_cannot_sign_in_but_the_next_one_can() {
        let f = Fixture::new().await;
        let (alice, secret) = enrolled(&f).await;
        let step = NOW / STEP_SECONDS;
        // RFC 6238 section 5.2: the code that confirmed the app is used up.
        assert_eq!(
            check(&f, &alice, &secret.code_at(step), NOW).await,
            Err(FactorFailure::Wrong)
        );
        let next = NOW + STEP_SECONDS;
        assert_eq!(
            check(&f, &alice, &secret.code_at(step + 1), next).await,
            Ok(())
        );
        // Replayed: refused, and so is an older step's code that was never used.
        assert_eq!(
            check(&f, &alice, &secret.code_at(step + 1), next + 1).await,
            Err(FactorFailure::Wrong)
        );
        assert_eq!(
            check(&f, &alice, &secret.code_at(step), next + 1).await,
            Err(FactorFailure::Wrong)
        );
        // The one step ahead of a clock that is behind is still good.
        assert_eq!(
            check(&f, &alice, &secret.code_at(step + 2), next).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn wrong_codes_lock_the_factor_and_the_right_one_waits() {
        let f = Fixture::new().await;
        let (alice, secret) = enrolled(&f).await;
        let max = f.core.config.login.max_failures;
        for i in 0..max {
            let r = check(&f, &alice, "000000", NOW + 1 + i).await;
            assert!(r.err().is_some_and(FactorFailure::was_checked), "{r:?}");
        }
        let at = NOW + 1 + max;
        let until = match check(&f, &alice, &secret.code_at(at / STEP_SECONDS + 1), at).await {
            Err(FactorFailure::Waiting { until }) => until,
            other => panic!("not locked: {other:?}"),
        };
        assert!(until > at);
        // After the lockout, a fresh code works and clears the count.
        assert_eq!(
            check(&f, &alice, &secret.code_at(until / STEP_SECONDS + 1), until).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn enrolment_needs_a_right_code_before_it_lapses() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let e = start_totp(&f.core, &alice, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("no enrolment"));
        let confirm = |code: String, now: i64| {
            let (core, alice, id) = (f.core.clone(), alice.clone(), e.factor_id.clone());
            async move {
                confirm_totp(&core, &alice, &id, &code, AT, now)
                    .await
                    .unwrap_or_else(|e| panic!("{e:?}"))
            }
        };
        assert_eq!(
            confirm("123456".into(), NOW).await,
            Err(FactorFailure::Wrong)
        );
        // Not active yet: nothing to check a sign-in code against.
        assert!(
            f.core
                .store
                .confirmed_totp(&alice.id)
                .await
                .ok()
                .flatten()
                .is_none()
        );
        let lapsed = NOW + f.core.config.sessions.interaction_ttl;
        let code = e.secret.code_at(lapsed / STEP_SECONDS);
        assert_eq!(confirm(code, lapsed).await, Err(FactorFailure::Gone));
        // Another user cannot confirm alice's enrolment.
        let bob = f.user("bob").await;
        let code = e.secret.code_at(NOW / STEP_SECONDS);
        let r = confirm_totp(&f.core, &bob, &e.factor_id, &code, AT, NOW).await;
        assert_eq!(r.ok(), Some(Err(FactorFailure::Gone)));
        assert_eq!(
            confirm(e.secret.code_at(NOW / STEP_SECONDS), NOW).await,
            Ok(())
        );
        // One app per account.
        assert!(
            start_totp(&f.core, &alice, NOW)
                .await
                .ok()
                .flatten()
                .is_none()
        );
        let listed = factors(&f.core, &alice.id).await.unwrap_or_default();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, DEFAULT_TOTP_NAME);
    }

    #[tokio::test]
    async fn a_pending_sign_in_is_finished_once() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let token = begin_pending(&f.core, &alice, PendingPurpose::Account, None, NOW, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let (p, u) = pending(&f.core, &token, NOW + 1)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("not pending"));
        assert_eq!((p.purpose, p.auth_time), (PendingPurpose::Account, NOW));
        assert_eq!(u.id, alice.id);
        let amr = finish_pending(&f.core, &token, Used::App, NOW + 2)
            .await
            .ok()
            .flatten();
        assert_eq!(amr, Some(vec!["pwd".into(), "otp".into(), "mfa".into()]));
        assert_eq!(
            finish_pending(&f.core, &token, Used::App, NOW + 2)
                .await
                .ok()
                .flatten(),
            None
        );
        // Expiry.
        let token = begin_pending(&f.core, &alice, PendingPurpose::Account, None, NOW, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let ttl = f.core.config.sessions.interaction_ttl;
        assert!(
            pending(&f.core, &token, NOW + ttl)
                .await
                .ok()
                .flatten()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_recovery_code_signs_in_once_and_a_new_set_voids_the_old() {
        let f = Fixture::new().await;
        let (alice, _) = enrolled(&f).await;
        let codes = new_recovery_codes(&f.core, &alice, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(codes.len(), RECOVERY_CODES);
        let use_code = |code: String| {
            let (core, alice) = (f.core.clone(), alice.clone());
            async move {
                check_code(&core, &alice, &code, AT, NOW + 1)
                    .await
                    .unwrap_or_else(|e| panic!("{e:?}"))
            }
        };
        // Typed in lower case without dashes: the same code.
        let typed = codes[0].to_lowercase().replace('-', "");
        assert_eq!(use_code(typed).await, Ok(Used::RecoveryCode));
        assert_eq!(use_code(codes[0].clone()).await, Err(FactorFailure::Wrong));
        assert_eq!(recovery_codes_left(&f.core, &alice.id).await.ok(), Some(9));
        let fresh = new_recovery_codes(&f.core, &alice, NOW + 2)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(use_code(codes[1].clone()).await, Err(FactorFailure::Wrong));
        assert_eq!(use_code(fresh[1].clone()).await, Ok(Used::RecoveryCode));
    }
}
