//! Checking a user's password, shared by the login page and the password grant so that one
//! throttle guards both (a lockout cannot be bypassed through the other door).

use crate::config::LoginSettings;
use crate::core::Core;
use crate::core::attempts::{Attempt, Guard, OnSuccess, Refusal, ThrottleKey, address_key};
use crate::crypto::password::HashError;
use crate::model::User;
use crate::oauth::error::OAuthResult;
use crate::store::ThrottlePolicy;
use std::net::IpAddr;

/// Why a password check did not sign the user in.
#[derive(Debug)]
pub enum LoginFailure {
    /// Wrong username or password (deliberately not saying which).
    Invalid,
    /// The account is disabled; said only after a correct password.
    Disabled,
    /// This wrong password reached the limit for the account or the client address.
    Locked { until: i64 },
    /// Refused unchecked: the account or the address is locked out until then. Not audited:
    /// a flood against a locked account would write a row per request.
    Waiting { until: i64 },
    /// Another attempt for this account (or too many from this address) is being checked
    /// right now: attempts are checked one at a time, never raced.
    InFlight,
    /// Every password hashing slot is taken: the server is flooded.
    Busy,
}

impl LoginFailure {
    /// Whether the password was checked (wrong, or right for a disabled account, or the
    /// check that locked the account), as opposed to refused before any check.
    pub fn was_checked(&self) -> bool {
        matches!(
            self,
            LoginFailure::Invalid | LoginFailure::Disabled | LoginFailure::Locked { .. }
        )
    }

    /// What the login page says: never whether the account exists.
    pub fn page_message(&self, now: i64) -> String {
        match self {
            LoginFailure::Invalid => "Wrong username or password.".to_owned(),
            LoginFailure::Disabled => {
                "This account is disabled. Contact your administrator.".to_owned()
            }
            LoginFailure::Locked { until } | LoginFailure::Waiting { until } => format!(
                "Too many failed attempts. For your security, sign-in is paused; try again in {}.",
                wait_words(*until - now)
            ),
            LoginFailure::InFlight => "Too many sign-in attempts at once. For your security, \
                 they are checked one at a time; try again in a few seconds."
                .to_owned(),
            LoginFailure::Busy => {
                "The server is very busy right now. Try again in a few seconds.".to_owned()
            }
        }
    }
}

/// "1 minute", "5 minutes": how long a lockout has left, rounded up.
pub fn wait_words(seconds: i64) -> String {
    let mins = ((seconds + 59) / 60).max(1);
    format!("{mins} minute{}", if mins > 1 { "s" } else { "" })
}

/// The login throttle policy from config, with the given limits. Here, not in the store, so
/// the store counts by a policy without knowing where it comes from.
pub fn throttle_policy(s: &LoginSettings, max_failures: i64, max_in_flight: i64) -> ThrottlePolicy {
    ThrottlePolicy {
        max_failures,
        window: s.failure_window_seconds,
        lockout: s.lockout_seconds,
        max_lockout: s.max_lockout_seconds,
        max_in_flight,
    }
}

/// The guards of a password attempt: the client address first (so a locked address costs
/// no account a count), then the account. The account is the resolved user, so every name
/// it can be typed as shares one counter; a name that is no account gets its own, so an
/// unknown user is throttled exactly like a known one.
fn guards(core: &Core, login: &str, user: Option<&User>, ip: Option<IpAddr>) -> Vec<Guard> {
    let s = &core.config.login;
    let mut guards = Vec::with_capacity(2);
    if let Some(ip) = ip {
        guards.push(Guard {
            key: ThrottleKey::LoginAddress(address_key(ip)),
            policy: throttle_policy(s, s.max_failures_per_ip, s.max_in_flight_per_ip),
            on_success: OnSuccess::Credit,
            counts_abandoned: true,
        });
    }
    guards.push(Guard {
        key: match user {
            Some(u) => ThrottleKey::LoginUser(u.id.clone()),
            None => ThrottleKey::LoginName(login.trim().to_lowercase()),
        },
        // One check at a time per account: parallel guesses cannot outrun the count.
        policy: throttle_policy(s, s.max_failures, 1),
        on_success: OnSuccess::Clear,
        counts_abandoned: false,
    });
    guards
}

/// A user whose password was just checked, and when the check began: the time the user
/// authenticated, for sessions and grants (`auth_time`). A revocation at or after it ends
/// what this check creates, even if the check was still running when the admin acted.
#[derive(Debug)]
pub struct Verified {
    pub user: User,
    pub at: i64,
}

/// Verify a username (or email) and password. An unknown user costs the same argon2 work as
/// a wrong password. The attempt is counted before argon2 runs (`attempts`).
pub async fn check_password(
    core: &Core,
    login: &str,
    password: &str,
    ip: Option<IpAddr>,
    now: i64,
) -> OAuthResult<Result<Verified, LoginFailure>> {
    // A flood is turned away before it costs a store round trip; nothing is checked, so
    // nothing is counted.
    if core.passwords.is_full() {
        return Ok(Err(LoginFailure::Busy));
    }
    let user = core.store.find_user_by_login(login).await?;
    let lease = core.config.limits.attempt_lease();
    let attempt = match Attempt::begin(
        &core.store,
        now,
        guards(core, login, user.as_ref(), ip),
        lease,
    )
    .await?
    {
        Ok(a) => a,
        Err(Refusal::Locked { until }) => return Ok(Err(LoginFailure::Waiting { until })),
        Err(Refusal::Busy) => return Ok(Err(LoginFailure::InFlight)),
    };
    let verified = core
        .passwords
        .verify(
            password.to_owned(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
    let ok = match verified {
        Ok(ok) => ok,
        Err(HashError::Busy) => {
            attempt.withdraw().await?;
            return Ok(Err(LoginFailure::Busy));
        }
        Err(e) => return Err(e.into()),
    };
    match user {
        Some(u) if ok => {
            attempt.succeeded().await?;
            Ok(if u.disabled {
                Err(LoginFailure::Disabled)
            } else {
                Ok(Verified { user: u, at: now })
            })
        }
        _ => Ok(Err(match attempt.failed().await? {
            Some(until) => LoginFailure::Locked { until },
            None => LoginFailure::Invalid,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, NOW, PASSWORD};

    async fn check(
        f: &Fixture,
        login: &str,
        password: &str,
        now: i64,
    ) -> Result<Verified, LoginFailure> {
        check_password(&f.core, login, password, Some([192, 0, 2, 7].into()), now)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[tokio::test]
    async fn the_right_password_signs_in_at_now() {
        let f = Fixture::new().await;
        let v = check(&f, "alice", PASSWORD, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(v.user.username, "alice");
        assert_eq!(v.at, NOW);
        // By email too: the same account.
        let v = check(&f, "alice@example.com", PASSWORD, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(v.user.id, f.user("alice").await.id);
        assert_eq!(v.at, NOW + 1);
    }

    #[tokio::test]
    async fn a_wrong_password_or_an_unknown_user_is_invalid() {
        let f = Fixture::new().await;
        let wrong = check(&f, "alice", "nope", NOW).await;
        assert!(matches!(wrong, Err(LoginFailure::Invalid)), "{wrong:?}");
        // An unknown user runs the same check (argon2 against a dummy hash) and is counted.
        let unknown = check(&f, "mallory", PASSWORD, NOW).await;
        match unknown {
            Err(e @ LoginFailure::Invalid) => {
                assert!(e.was_checked());
                assert_eq!(e.page_message(NOW), LoginFailure::Invalid.page_message(NOW));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_disabled_account_is_said_only_after_the_right_password() {
        let f = Fixture::new().await;
        let right = check(&f, "bob", PASSWORD, NOW).await;
        assert!(matches!(right, Err(LoginFailure::Disabled)), "{right:?}");
        let wrong = check(&f, "bob", "nope", NOW).await;
        assert!(matches!(wrong, Err(LoginFailure::Invalid)), "{wrong:?}");
    }

    #[tokio::test]
    async fn the_account_locks_after_max_failures() {
        let f = Fixture::new().await;
        let s = f.core.config.login.clone();
        for i in 0..s.max_failures {
            let r = check(&f, "alice", "nope", NOW + i).await;
            assert!(
                r.as_ref().err().is_some_and(LoginFailure::was_checked),
                "{r:?}"
            );
        }
        let at = NOW + s.max_failures;
        let until = match check(&f, "alice", PASSWORD, at).await {
            Err(LoginFailure::Waiting { until }) => until,
            other => panic!("not locked: {other:?}"),
        };
        assert!(until > at && until <= at + s.lockout_seconds, "{until}");
        assert!(
            LoginFailure::Locked { until }
                .page_message(at)
                .contains("minute")
        );
        // Once the lockout is over, the right password works again.
        check(&f, "alice", PASSWORD, until)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }

    #[tokio::test]
    async fn an_unknown_name_is_locked_like_an_account() {
        let f = Fixture::new().await;
        let max = f.core.config.login.max_failures;
        for i in 0..max {
            let _ = check(&f, "mallory", "nope", NOW + i).await;
        }
        let r = check(&f, "Mallory ", "nope", NOW + max).await;
        assert!(matches!(r, Err(LoginFailure::Waiting { .. })), "{r:?}");
        assert!(!r.as_ref().err().is_some_and(LoginFailure::was_checked));
    }

    #[tokio::test]
    async fn the_username_and_the_email_share_one_counter() {
        let f = Fixture::new().await;
        let max = f.core.config.login.max_failures;
        for i in 0..max {
            let login = if i % 2 == 0 {
                "alice"
            } else {
                "alice@example.com"
            };
            let _ = check(&f, login, "nope", NOW + i).await;
        }
        for login in ["alice", "alice@example.com"] {
            let r = check(&f, login, PASSWORD, NOW + max).await;
            assert!(
                matches!(r, Err(LoginFailure::Waiting { .. })),
                "{login}: {r:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_success_clears_the_accounts_failures() {
        let f = Fixture::new().await;
        let max = f.core.config.login.max_failures;
        for round in 0..2 {
            for i in 0..max - 1 {
                let r = check(&f, "alice", "nope", NOW + round * 10 + i).await;
                assert!(matches!(r, Err(LoginFailure::Invalid)), "{r:?}");
            }
            check(&f, "alice", PASSWORD, NOW + round * 10 + max)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        }
    }
}
