//! Guessing limits for everything a caller can guess: passwords, client secrets, device user
//! codes. An attempt is admitted by every key that guards it (an address, an account, a
//! client) before anything is verified, and ended once with its outcome.
//!
//! A caller that goes away mid-check drops its `Attempt`: the drop counts it as a failure
//! on the keys that count abandoned attempts (an address), so a flood of abandoned guesses
//! still locks its source, and withdraws it from the others.

use std::net::{IpAddr, Ipv6Addr};

use crate::store::throttle::{Admission, Outcome};
use crate::store::{DbResult, Store, ThrottlePolicy};

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Locked {
        until: i64,
    },
    /// Other attempts on the same key are being verified right now.
    Busy,
}

/// How a key treats a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSuccess {
    /// The failures were the owner's own: forget them.
    Clear,
    /// Shared by many (an address): take back only this attempt.
    Credit,
}

/// What a throttle counts. Written to the store as its `Display` form, which is the format
/// every row already has (`login:user:<id>`, `device:ip:<address>`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleKey {
    /// Password checks from one address (`address_key`).
    LoginAddress(String),
    /// Password checks for one account, by user id: every name it can be typed as shares it.
    LoginUser(String),
    /// Password checks for a name that is no account, lowercased: throttled like one.
    LoginName(String),
    /// Client secrets presented from one address.
    ClientAuthAddress(String),
    /// Secrets presented for one client from one address.
    ClientAuthClientAddress { client_id: String, address: String },
    /// Secrets for one client from anywhere (only its checks in flight are bounded).
    ClientAuthClient(String),
    /// Device user codes typed from one address.
    DeviceAddress(String),
    /// Wrong device user codes from everywhere (the global slowdown).
    DeviceAll,
    /// Second-factor codes typed from one address.
    MfaAddress(String),
    /// Second-factor codes typed for one account (after its password was right).
    MfaUser(String),
}

impl std::fmt::Display for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThrottleKey::LoginAddress(a) => write!(f, "login:ip:{a}"),
            ThrottleKey::LoginUser(id) => write!(f, "login:user:{id}"),
            ThrottleKey::LoginName(name) => write!(f, "login:name:{name}"),
            ThrottleKey::ClientAuthAddress(a) => write!(f, "client_auth:ip:{a}"),
            ThrottleKey::ClientAuthClientAddress { client_id, address } => {
                write!(f, "client_auth:client:{client_id}:{address}")
            }
            ThrottleKey::ClientAuthClient(id) => write!(f, "client_auth:client:{id}"),
            ThrottleKey::DeviceAddress(a) => write!(f, "device:ip:{a}"),
            ThrottleKey::DeviceAll => f.write_str("device:all"),
            ThrottleKey::MfaAddress(a) => write!(f, "mfa:ip:{a}"),
            ThrottleKey::MfaUser(id) => write!(f, "mfa:user:{id}"),
        }
    }
}

/// One key that guards an attempt.
#[derive(Debug, Clone)]
pub struct Guard {
    pub key: ThrottleKey,
    pub policy: ThrottlePolicy,
    pub on_success: OnSuccess,
    /// Whether an attempt whose caller went away before it was answered counts as a
    /// failure. Yes for an address, so a flood of abandoned requests from it locks it; no
    /// for an account or a client, which a flood (or a user whose request timed out on a
    /// starved server) must not be able to lock: an unanswered guess told nobody anything.
    pub counts_abandoned: bool,
}

struct Held {
    guard: Guard,
    attempt: i64,
    strikes: i64,
}

/// An admitted attempt: end it with `succeeded`, `failed` or `withdraw`.
#[must_use]
pub struct Attempt {
    store: Store,
    now: i64,
    /// When `begin` ran, on the monotonic clock: an attempt can wait (for an argon2 thread,
    /// a global slowdown), and its outcome happens that much later than `now`.
    began: std::time::Instant,
    held: Vec<Held>,
}

impl Attempt {
    /// Ask every guard in order; the first refusal withdraws what the earlier ones admitted.
    /// `lease`: how long the attempt may stay in flight if this node dies before ending it.
    pub async fn begin(
        store: &Store,
        now: i64,
        guards: Vec<Guard>,
        lease: i64,
    ) -> DbResult<Result<Attempt, Refusal>> {
        let mut attempt = Attempt {
            store: store.clone(),
            now,
            began: std::time::Instant::now(),
            held: Vec::with_capacity(guards.len()),
        };
        for guard in guards {
            match store
                .throttle_begin(&guard.key.to_string(), now, &guard.policy, lease)
                .await?
            {
                Admission::Admitted {
                    attempt: n,
                    strikes,
                } => attempt.held.push(Held {
                    guard,
                    attempt: n,
                    strikes,
                }),
                refused => {
                    attempt.withdraw().await?;
                    return Ok(Err(match refused {
                        Admission::Locked { until } => Refusal::Locked { until },
                        _ => Refusal::Busy,
                    }));
                }
            }
        }
        Ok(Ok(attempt))
    }

    pub async fn succeeded(self) -> DbResult<()> {
        let now = self.now;
        self.end_each(now, |h| match h.guard.on_success {
            OnSuccess::Clear => Outcome::Clear,
            OnSuccess::Credit => Outcome::Credit,
        })
        .await
        .map(|_| ())
    }

    /// Count the failure on every key, with lockouts from when it was found: `now` as the
    /// caller passed it to `begin`, plus the time the attempt waited since (argon2's queue,
    /// a global slowdown), so a lockout is as long as configured. The latest lockout it
    /// started, if any.
    pub async fn failed(self) -> DbResult<Option<i64>> {
        let waited = i64::try_from(self.began.elapsed().as_secs()).unwrap_or(i64::MAX);
        let now = self.now.saturating_add(waited);
        self.end_each(now, Held::failure).await
    }

    /// Nothing was verified: the attempt does not count.
    pub async fn withdraw(self) -> DbResult<()> {
        let now = self.now;
        self.end_each(now, |_| Outcome::Withdraw).await.map(|_| ())
    }

    /// End every key with its outcome. Each key is released only once its end is recorded:
    /// if this future is dropped midway, `Drop` still ends the rest.
    async fn end_each(
        mut self,
        now: i64,
        outcome: impl Fn(&Held) -> Outcome,
    ) -> DbResult<Option<i64>> {
        let mut locked = None;
        while let Some(h) = self.held.first() {
            let lock = self
                .store
                .throttle_end(&h.guard.key.to_string(), now, &h.guard.policy, outcome(h))
                .await?;
            locked = locked.max(lock);
            self.held.remove(0);
        }
        Ok(locked)
    }
}

impl Held {
    fn failure(&self) -> Outcome {
        Outcome::Failed {
            attempt: self.attempt,
            strikes: self.strikes,
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        // The caller went away before the attempt was ended.
        let held = std::mem::take(&mut self.held);
        let (store, now) = (self.store.clone(), self.now);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for h in &held {
                    let outcome = if h.guard.counts_abandoned {
                        h.failure()
                    } else {
                        Outcome::Withdraw
                    };
                    if let Err(e) = store
                        .throttle_end(&h.guard.key.to_string(), now, &h.guard.policy, outcome)
                        .await
                    {
                        tracing::warn!(error = %e, "could not end an abandoned attempt; its lease expires it");
                    }
                }
            });
        }
    }
}

/// The address a per-address limit counts: an IPv4 address, or the /64 an IPv6 address is
/// in (one subscriber or host usually holds a whole /64, and can pick any address in it).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_stored_format() {
        assert_eq!(
            ThrottleKey::LoginUser("u1".into()).to_string(),
            "login:user:u1"
        );
        assert_eq!(
            ThrottleKey::ClientAuthClientAddress {
                client_id: "svc".into(),
                address: "2001:db8::/64".into()
            }
            .to_string(),
            "client_auth:client:svc:2001:db8::/64"
        );
        assert_eq!(ThrottleKey::DeviceAll.to_string(), "device:all");
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let key = |s: &str| address_key(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")));
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:203.0.113.9"), "203.0.113.9");
    }
}
