//! Checking a user's password, shared by the login page and the password grant so that one
//! throttle guards both (a lockout cannot be bypassed through the other door).

use crate::oauth::error::OAuthResult;
use crate::state::AppState;
use crate::store::model::User;
use crate::store::throttle_policy;

/// Why a password check did not sign the user in.
#[derive(Debug)]
pub enum LoginFailure {
    /// Wrong username or password (deliberately not saying which).
    Invalid,
    /// The account is disabled; said only after a correct password.
    Disabled,
    /// Too many failures for this account or this client IP.
    Locked { until: i64 },
}

impl LoginFailure {
    /// What the login page says: never whether the account exists.
    pub fn page_message(&self, now: i64) -> String {
        match self {
            LoginFailure::Invalid => "Wrong username or password.".to_owned(),
            LoginFailure::Disabled => {
                "This account is disabled. Contact your administrator.".to_owned()
            }
            LoginFailure::Locked { until } => format!(
                "Too many failed attempts. For your security, sign-in is paused; try again in {}.",
                wait_words(*until - now)
            ),
        }
    }
}

/// "1 minute", "5 minutes": how long a lockout has left, rounded up.
pub fn wait_words(seconds: i64) -> String {
    let mins = ((seconds + 59) / 60).max(1);
    format!("{mins} minute{}", if mins > 1 { "s" } else { "" })
}

fn user_key(login: &str) -> String {
    format!("login:user:{}", login.trim().to_lowercase())
}

fn ip_key(ip: &str) -> String {
    format!("login:ip:{ip}")
}

/// Verify a username (or email) and password. An unknown user costs the same argon2 work as
/// a wrong password.
pub async fn check_password(
    state: &AppState,
    login: &str,
    password: &str,
    ip: Option<&str>,
) -> OAuthResult<Result<User, LoginFailure>> {
    let now = state.now();
    let s = &state.config.login;
    let account = user_key(login);
    let mut keys = vec![(account.as_str(), throttle_policy(s, s.max_failures))];
    let ip = ip.map(ip_key);
    if let Some(ip) = &ip {
        keys.push((ip.as_str(), throttle_policy(s, s.max_failures_per_ip)));
    }
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    if let Some(until) = state.store.throttle_locked_until_any(&names, now).await? {
        return Ok(Err(LoginFailure::Locked { until }));
    }
    let user = state.store.find_user_by_login(login).await?;
    let ok = state
        .passwords
        .verify(
            password.to_owned(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
    match user {
        Some(u) if ok => {
            state.store.throttle_clear(&account).await?;
            Ok(if u.disabled {
                Err(LoginFailure::Disabled)
            } else {
                Ok(u)
            })
        }
        _ => {
            let locked = state.store.throttle_fail_all(&keys, now).await?;
            Ok(Err(match locked {
                Some(until) => LoginFailure::Locked { until },
                None => LoginFailure::Invalid,
            }))
        }
    }
}
