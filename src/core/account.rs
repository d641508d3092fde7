//! What a signed-in person changes about their own account (the pages are `http::account`):
//! signing out their other sessions, taking an app's access away, and changing their
//! password. Each change is audited here.

use std::net::IpAddr;

use crate::core::Core;
use crate::core::audit::{AuditKind, audit};
use crate::core::login::{LoginFailure, check_password};
use crate::crypto::password::HashError;
use crate::model::{Session, Source, User, UserClaims};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::store::AppRemoval;

/// The shortest password accepted: NIST SP 800-63B section 5.1.1.2 asks for at least 8
/// characters when the user chooses it.
pub const MIN_PASSWORD_LEN: usize = 8;

/// About 1,000 of the most common passwords of at least `MIN_PASSWORD_LEN` characters, most
/// common first, lowercase, one a line: the first 1,000 such entries of the list Django
/// ships (`django/contrib/auth/common-passwords.txt.gz`, Royce Williams' 20,000 passwords
/// seen most often in breaches; BSD licence). Shorter ones are refused by length already.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Whether `password` is on the list of common passwords, in any case (NIST SP 800-63B
/// section 5.1.1.2: "passwords obtained from previous breach corpuses" are refused).
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON_PASSWORDS.lines().any(|c| c == lower)
}

/// Why a new password is refused before anything is checked or stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeakPassword {
    /// The two copies differ: a typo would lock the person out.
    Mismatch,
    TooShort,
    /// On the list of common passwords.
    Common,
    /// The username, which every guesser tries first (section 5.1.1.2: "context-specific
    /// words, such as the name of the service, the username").
    Username,
}

impl WeakPassword {
    /// What the page says: fixed words, never what was typed.
    pub fn page_message(self) -> String {
        match self {
            WeakPassword::Mismatch => "The two new passwords are not the same.".to_owned(),
            WeakPassword::TooShort => {
                format!("The new password must have at least {MIN_PASSWORD_LEN} characters.")
            }
            WeakPassword::Common => "That password is one of the most common ones, which are guessed first. Choose another.".to_owned(),
            WeakPassword::Username => "The new password must not be your username.".to_owned(),
        }
    }
}

/// The rules a new password must meet (NIST SP 800-63B section 5.1.1.2): typed the same
/// twice, at least `MIN_PASSWORD_LEN` characters (Unicode characters, not bytes), not a
/// common password, not the username. Nothing else: no composition rules, which the same
/// section says not to impose.
pub fn check_new_password(new: &str, again: &str, username: &str) -> Result<(), WeakPassword> {
    if new != again {
        return Err(WeakPassword::Mismatch);
    }
    if new.chars().count() < MIN_PASSWORD_LEN {
        return Err(WeakPassword::TooShort);
    }
    if is_common(new) {
        return Err(WeakPassword::Common);
    }
    if new.to_lowercase() == username.to_lowercase() {
        return Err(WeakPassword::Username);
    }
    Ok(())
}

/// What asking to sign one session out came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOne {
    Ended,
    /// The session is this browser's own: the account page signs it out through /logout.
    ThisSession,
    /// No live session of this user has that `sid` (ended meanwhile, or someone else's).
    Gone,
}

/// Sign out the session of `user` whose public `sid` is `sid`, revoking the grants issued in
/// it (all but `offline_access` ones) and queueing its back-channel logouts. The row is
/// looked up by `sid` and the user together, so a user ends only their own sessions.
pub async fn end_session(
    core: &Core,
    user: &User,
    current: &Session,
    sid: &str,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<EndOne> {
    if sid == current.sid {
        return Ok(EndOne::ThisSession);
    }
    // By sid and owner in one statement: a session stepping up meanwhile keeps its sid.
    if core
        .store
        .end_session_of_user(&user.id, sid, now)
        .await?
        .is_none()
    {
        return Ok(EndOne::Gone);
    }
    audit(
        core,
        AuditKind::SessionEnded,
        Some(&user.id),
        None,
        Some(ip),
        now,
    )
    .await;
    Ok(EndOne::Ended)
}

/// Sign out every session of `user` but `current`, each as [`end_session`] does. Returns
/// how many were live.
pub async fn end_other_sessions(
    core: &Core,
    user: &User,
    current: &Session,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<u64> {
    let mut ended = 0;
    for sid in core.store.other_sessions(&user.id, &current.sid).await? {
        // One transaction per session, as a logout does: a failure part-way leaves the
        // sessions already ended ended, and pressing the button again finishes the rest.
        if core
            .store
            .end_session_of_user(&user.id, &sid, now)
            .await?
            .is_some()
        {
            ended += 1;
        }
    }
    // Only when something ended: pressing the button again and again writes nothing.
    if ended > 0 {
        audit(
            core,
            AuditKind::OtherSessionsEnded,
            Some(&user.id),
            None,
            Some(ip),
            now,
        )
        .await;
    }
    Ok(ended)
}

/// Take away the access `user` gave `client_id`: the consent, every grant and its refresh
/// tokens (offline ones too), in one transaction with the client's back-channel logouts.
/// Audited when there was anything to take.
pub async fn remove_app(
    core: &Core,
    user: &User,
    client_id: &str,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<AppRemoval> {
    let removed = core.store.remove_app(&user.id, client_id, now).await?;
    if removed.consent || removed.grants > 0 {
        audit(
            core,
            AuditKind::AppRemoved,
            Some(&user.id),
            Some(client_id),
            Some(ip),
            now,
        )
        .await;
    }
    Ok(removed)
}

/// Why a password change was refused.
#[derive(Debug)]
pub enum PasswordRefusal {
    /// The config file owns this account: it would put the old password back at the next
    /// start.
    ConfigUser,
    Weak(WeakPassword),
    /// The current password was not accepted (wrong, locked out, or the server too busy).
    Current(LoginFailure),
}

/// A new password that passed every check, hashed and not yet stored.
pub struct NewPassword {
    hash: String,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

/// The signed-in `user`'s password typed again, before a change a stolen session cookie
/// alone must not make: checked as a login (throttled and counted like one), a wrong one
/// audited as `login.failure`. A name that resolves to another account (a username that is
/// someone's email) is a wrong password.
pub async fn confirm_password(
    core: &Core,
    user: &User,
    password: &str,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Result<(), LoginFailure>> {
    let failed = match check_password(core, &user.username, password, Some(ip), now).await? {
        Ok(v) if v.user.id == user.id => return Ok(Ok(())),
        // The right password of another account: nothing wrong was typed, nothing audited.
        Ok(_) => return Ok(Err(LoginFailure::Invalid)),
        Err(failed) => failed,
    };
    if failed.was_checked() {
        audit(
            core,
            AuditKind::LoginFailure,
            Some(&user.id),
            None,
            Some(ip),
            now,
        )
        .await;
    }
    Ok(Err(failed))
}

/// Check a password change: the account may change its password here, the new one meets
/// the rules, and `current` is right, checked as a login (throttled and counted like one:
/// a stolen session cookie must not become a way to guess the password). Then hash the new
/// one on the password pool. Nothing is stored yet: [`set_password`] does that, at a `now`
/// taken after the hashing.
pub async fn prepare_password(
    core: &Core,
    user: &User,
    current: &str,
    new: &str,
    again: &str,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Result<NewPassword, PasswordRefusal>> {
    if user.source == Source::Config {
        return Ok(Err(PasswordRefusal::ConfigUser));
    }
    if let Err(weak) = check_new_password(new, again, &user.username) {
        return Ok(Err(PasswordRefusal::Weak(weak)));
    }
    if let Err(failed) = confirm_password(core, user, current, ip, now).await? {
        return Ok(Err(PasswordRefusal::Current(failed)));
    }
    let hash = core.passwords.hash(new.to_owned()).await.map_err(|e| {
        match e.downcast_ref::<HashError>() {
            Some(HashError::Busy) => OAuthError::from(HashError::Busy),
            _ => OAuthError::internal(e),
        }
    })?;
    Ok(Ok(NewPassword { hash }))
}

/// Store a checked new password at `now` and end everything the user held (every session,
/// this browser's included, every grant and refresh token, and through
/// `tokens_revoked_at = now` every access token and session whose authentication was at or
/// before `now`). Returns the revocation time; a session that is to survive it must have
/// authenticated at [`after_revocation`] of it.
pub async fn set_password(
    core: &Core,
    user: &User,
    new: NewPassword,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<i64> {
    core.store
        .set_user_password(&user.id, &new.hash, true, now)
        .await?;
    audit(
        core,
        AuditKind::PasswordChanged,
        Some(&user.id),
        None,
        Some(ip),
        now,
    )
    .await;
    Ok(now)
}

/// The first authentication time that a revocation at `revoked_at` honours: what stands is
/// what authenticated strictly after it (`User::honours_authentication_at`, and the
/// session rule in `Store::get_session`). Time is in whole seconds, so that is the next
/// second; the person who just typed the new password authenticated after the change.
pub fn after_revocation(revoked_at: i64) -> i64 {
    revoked_at + 1
}

/// Why a profile edit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRefusal {
    /// The account comes from the config file, whose `[users]` entry owns its claims.
    ConfigUser,
    /// A value is not of its claim's type; the claim's name and what it must be.
    Invalid(&'static str, &'static str),
}

/// How long a profile value may be: names and URLs fit easily, and a user cannot grow their
/// row (and every ID token) without bound.
pub const MAX_CLAIM_LEN: usize = 256;

/// Whether `value` has the type OIDC Core section 5.1 gives `claim`: URLs for `profile`,
/// `picture` and `website`, `YYYY` or `YYYY-MM-DD` for `birthdate`, plain text otherwise.
fn claim_value_ok(claim: &str, value: &str) -> Result<(), &'static str> {
    if value.chars().count() > MAX_CLAIM_LEN {
        return Err("at most 256 characters");
    }
    if value.chars().any(char::is_control) {
        return Err("one line of text");
    }
    match claim {
        "profile" | "picture" | "website" => match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "https" | "http") => Ok(()),
            _ => Err("an http or https URL"),
        },
        "birthdate" => {
            let ok = match value.len() {
                4 => value.bytes().all(|b| b.is_ascii_digit()),
                10 => value.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                }),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err("YYYY or YYYY-MM-DD")
            }
        }
        _ => Ok(()),
    }
}

/// The slot of one editable claim in `UserClaims`.
fn claim_slot<'a>(c: &'a mut UserClaims, claim: &str) -> Option<&'a mut Option<String>> {
    Some(match claim {
        "name" => &mut c.name,
        "given_name" => &mut c.given_name,
        "family_name" => &mut c.family_name,
        "middle_name" => &mut c.middle_name,
        "nickname" => &mut c.nickname,
        "profile" => &mut c.profile,
        "picture" => &mut c.picture,
        "website" => &mut c.website,
        "gender" => &mut c.gender,
        "birthdate" => &mut c.birthdate,
        "zoneinfo" => &mut c.zoneinfo,
        "locale" => &mut c.locale,
        _ => return None,
    })
}

/// The editable claims, in config order, with the user's current values.
pub fn editable_claims(core: &Core, user: &User) -> Vec<(String, String)> {
    let mut claims = user.claims.clone();
    core.config
        .account
        .editable_claims
        .iter()
        .filter_map(|name| {
            let value = claim_slot(&mut claims, name)?.clone().unwrap_or_default();
            Some((name.clone(), value))
        })
        .collect()
}

/// Set the editable claims the form carries (`value(name)`); an empty value removes the
/// claim. Claims the config does not make editable are never touched, whatever the form
/// sends. True when something changed.
pub async fn update_profile(
    core: &Core,
    user: &User,
    value: impl Fn(&str) -> Option<String>,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Result<bool, ProfileRefusal>> {
    if user.source == Source::Config {
        return Ok(Err(ProfileRefusal::ConfigUser));
    }
    let mut claims = user.claims.clone();
    for name in &core.config.account.editable_claims {
        let Some(typed) = value(name) else { continue };
        let typed = typed.trim();
        let Some(slot) = claim_slot(&mut claims, name) else {
            continue;
        };
        if typed.is_empty() {
            *slot = None;
            continue;
        }
        if let Err(must) = claim_value_ok(name, typed) {
            let name = crate::config::EDITABLE_CLAIMS
                .iter()
                .find(|c| **c == name.as_str())
                .copied()
                .unwrap_or("claim");
            return Ok(Err(ProfileRefusal::Invalid(name, must)));
        }
        *slot = Some(typed.to_owned());
    }
    if claims == user.claims {
        return Ok(Ok(false));
    }
    if !core.store.set_user_claims(&user.id, &claims, now).await? {
        return Ok(Err(ProfileRefusal::ConfigUser));
    }
    audit(
        core,
        AuditKind::ProfileUpdated,
        Some(&user.id),
        None,
        Some(ip),
        now,
    )
    .await;
    Ok(Ok(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;
    use crate::store::users::NewUser;
    use crate::testing::{Fixture, NOW, PASSWORD};

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn the_list_is_lowercase_long_enough_and_about_a_thousand() {
        let lines: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!((900..=1100).contains(&lines.len()), "{}", lines.len());
        for l in &lines {
            assert_eq!(*l, l.to_lowercase(), "{l}");
            assert!(l.chars().count() >= MIN_PASSWORD_LEN, "{l}");
            assert_eq!(*l, l.trim(), "{l:?}");
        }
    }

    #[test]
    fn common_passwords_are_found_in_any_case() {
        for p in ["password", "PASSWORD", "Password1", "iloveyou", "QwErTy123"] {
            assert!(is_common(p), "{p}");
        }
        for p in ["correct horse battery", "passwor", "password 1", ""] {
            assert!(!is_common(p), "{p}");
        }
    }

    #[test]
    fn new_password_rules() {
        let check = |new: &str, again: &str| check_new_password(new, again, "Alice");
        assert_eq!(check("a long passphrase", "a long passphrase"), Ok(()));
        // A typo in the second copy is caught before anything else is said.
        assert_eq!(
            check("password", "a long passphrase"),
            Err(WeakPassword::Mismatch)
        );
        assert_eq!(check("short", "short"), Err(WeakPassword::TooShort));
        // Characters, not bytes: 8 two-byte letters are long enough, 7 are not.
        assert_eq!(check("ééééééé", "ééééééé"), Err(WeakPassword::TooShort));
        assert_eq!(check("éééééééé", "éééééééé"), Ok(()));
        assert_eq!(check("Football1", "Football1"), Err(WeakPassword::Common));
        assert_eq!(
            check_new_password("Alice1234", "Alice1234", "alice1234"),
            Err(WeakPassword::Username)
        );
        // Spaces are characters like any other; nothing is trimmed.
        assert_eq!(check("        ", "        "), Ok(()));
    }

    /// A user the CLI added (config users cannot change their password here), with the
    /// fixture's password.
    async fn carol(f: &Fixture) -> User {
        let alice = f.user("alice").await;
        f.core
            .store
            .insert_user(
                NewUser {
                    username: "carol",
                    password_hash: &alice.password_hash,
                    claims: &alice.claims,
                    source: Source::Cli,
                },
                NOW,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("carol exists"));
        f.user("carol").await
    }

    #[tokio::test]
    async fn a_password_change_ends_what_authenticated_up_to_it_and_nothing_after() {
        let f = Fixture::new().await;
        let carol = carol(&f).await;
        let this = f.session(&carol, NOW).await;
        // Another browser that signed in at the very second of the change.
        let same_second = f.session(&carol, NOW + 5).await;
        let new = prepare_password(
            &f.core,
            &carol,
            PASSWORD,
            "a brand new passphrase",
            "a brand new passphrase",
            IP,
            NOW + 5,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .unwrap_or_else(|e| panic!("{e:?}"));
        let at = set_password(&f.core, &carol, new, IP, NOW + 5)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(at, NOW + 5);
        let live = |s: Session| {
            let store = f.core.store.clone();
            async move {
                store
                    .get_session(&s.id_hash, NOW + 6, 3600)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .is_some()
            }
        };
        assert!(!live(this).await);
        assert!(!live(same_second).await);
        let user = f.user("carol").await;
        // The strict rule: what authenticated at the revocation is revoked, the second
        // after it stands.
        assert!(!user.honours_authentication_at(at));
        assert!(user.honours_authentication_at(after_revocation(at)));
        // The session the account page starts for this browser after the change.
        let fresh = f.session(&user, after_revocation(at)).await;
        let sessions = f
            .core
            .store
            .live_sessions(&user.id, NOW + 6, 3600)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sessions.iter().map(|s| s.sid.as_str()).collect::<Vec<_>>(),
            [fresh.sid.as_str()],
            "only the session authenticated after the change is live"
        );
        // The old password no longer signs in; the new one does.
        let old = check_password(&f.core, "carol", PASSWORD, Some(IP), NOW + 7)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(matches!(old, Err(LoginFailure::Invalid)), "{old:?}");
        let new = check_password(
            &f.core,
            "carol",
            "a brand new passphrase",
            Some(IP),
            NOW + 8,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(new.is_ok(), "{new:?}");
    }

    #[tokio::test]
    async fn a_password_change_is_refused_for_config_users_and_wrong_current_passwords() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let r = prepare_password(
            &f.core,
            &alice,
            PASSWORD,
            "a new passphrase",
            "a new passphrase",
            IP,
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(matches!(r, Err(PasswordRefusal::ConfigUser)), "{r:?}");
        let carol = carol(&f).await;
        let r = prepare_password(
            &f.core,
            &carol,
            "not it",
            "a new passphrase",
            "a new passphrase",
            IP,
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            matches!(r, Err(PasswordRefusal::Current(LoginFailure::Invalid))),
            "{r:?}"
        );
        // A weak new password is refused before the current one is checked (and counted).
        let r = prepare_password(&f.core, &carol, "not it", "password1", "password1", IP, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            matches!(r, Err(PasswordRefusal::Weak(WeakPassword::Common))),
            "{r:?}"
        );
        let kinds = f
            .core
            .store
            .audit_kinds(10)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kinds, ["login.failure"]);
    }

    #[tokio::test]
    async fn removing_an_app_revokes_its_grants_offline_ones_too_and_forgets_the_consent() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let offline = f.web_tokens(&session, "openid+offline_access", NOW).await;
        f.core
            .store
            .add_consent(
                &alice.id,
                "web",
                &crate::oauth::types::ScopeSet::parse("openid offline_access").unwrap_or_default(),
                NOW,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let removed = remove_app(&f.core, &alice, "web", IP, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(removed.consent);
        assert_eq!(removed.grants, 1);
        let refresh = offline
            .refresh_token
            .as_deref()
            .unwrap_or_else(|| panic!("no refresh token"));
        let e = f
            .token_error(
                "web",
                &format!("grant_type=refresh_token&refresh_token={refresh}"),
                NOW + 2,
            )
            .await;
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        let consents = f
            .core
            .store
            .consents(&alice.id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(consents.is_empty(), "{consents:?}");
        // The session goes on; only the app lost its access. Removing again finds nothing.
        assert!(
            f.core
                .store
                .get_session(&session.id_hash, NOW + 2, 3600)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .is_some()
        );
        let again = remove_app(&f.core, &alice, "web", IP, NOW + 3)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            again,
            AppRemoval {
                consent: false,
                grants: 0
            }
        );
        let kinds = f
            .core
            .store
            .audit_kinds(10)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            kinds.iter().filter(|k| *k == "consent.revoked").count(),
            1,
            "{kinds:?}"
        );
    }

    #[tokio::test]
    async fn a_user_ends_only_their_own_other_sessions() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let carol = carol(&f).await;
        let this = f.session(&alice, NOW).await;
        let other = f.session(&alice, NOW).await;
        let third = f.session(&alice, NOW).await;
        let carols = f.session(&carol, NOW).await;
        let end = |sid: String| {
            let (f, alice, this) = (&f, &alice, &this);
            async move {
                end_session(&f.core, alice, this, &sid, IP, NOW + 1)
                    .await
                    .unwrap_or_else(|e| panic!("{e:?}"))
            }
        };
        assert_eq!(end(carols.sid.clone()).await, EndOne::Gone);
        assert_eq!(end(this.sid.clone()).await, EndOne::ThisSession);
        assert_eq!(end(other.sid.clone()).await, EndOne::Ended);
        assert_eq!(end(other.sid.clone()).await, EndOne::Gone);
        let ended = end_other_sessions(&f.core, &alice, &this, IP, NOW + 2)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ended, 1);
        let live = |id: String| {
            let store = f.core.store.clone();
            async move {
                store
                    .get_session(&id, NOW + 3, 3600)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .is_some()
            }
        };
        assert!(live(this.id_hash.clone()).await);
        assert!(!live(third.id_hash.clone()).await);
        assert!(live(carols.id_hash.clone()).await, "carol's session");
    }

    #[tokio::test]
    async fn only_editable_claims_change_and_each_is_checked() {
        let f = Fixture::new().await;
        let carol = carol(&f).await;
        let form = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let changed = update_profile(
            &f.core,
            &carol,
            form(&[
                ("name", "  Carol Q. "),
                ("email", "evil@example.com"),
                ("nickname", ""),
            ]),
            IP,
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(changed, Ok(true));
        let stored = f.user("carol").await;
        assert_eq!(stored.claims.name.as_deref(), Some("Carol Q."));
        // Not editable: untouched, whatever the form said.
        assert_eq!(stored.claims.email, carol.claims.email);
        let bad = update_profile(&f.core, &stored, form(&[("locale", "a\nb")]), IP, NOW).await;
        assert!(
            matches!(bad, Ok(Err(ProfileRefusal::Invalid("locale", _)))),
            "{bad:?}"
        );
        // The same values again change nothing.
        let same = update_profile(&f.core, &stored, form(&[("name", "Carol Q.")]), IP, NOW).await;
        assert_eq!(same.ok(), Some(Ok(false)));
        // A config user's claims follow the file.
        let alice = f.user("alice").await;
        let refused = update_profile(&f.core, &alice, form(&[("name", "A")]), IP, NOW).await;
        assert_eq!(refused.ok(), Some(Err(ProfileRefusal::ConfigUser)));
    }

    #[test]
    fn claim_values_have_their_types() {
        assert!(claim_value_ok("website", "https://example.com/me").is_ok());
        assert!(claim_value_ok("website", "javascript:alert(1)").is_err());
        assert!(claim_value_ok("birthdate", "1980").is_ok());
        assert!(claim_value_ok("birthdate", "1980-02-29").is_ok());
        assert!(claim_value_ok("birthdate", "80-02-29").is_err());
        assert!(claim_value_ok("name", &"x".repeat(MAX_CLAIM_LEN + 1)).is_err());
        assert!(claim_value_ok("name", "Zoë O'Brien").is_ok());
    }
}
