//! The per-section settings (`[tokens]`, `[login]`, …), each with the defaults a file that
//! leaves the section out gets.

use crate::crypto::password::{OWASP_ITERATIONS, OWASP_MEMORY_KIB, PoolSettings};
use serde::Deserialize;

use crate::oauth::params::{DEFAULT_MAX_PARAMS, DEFAULT_MAX_VALUE_BYTES, ParamLimits};
use crate::oauth::types::SigningAlg;

/// Lifetimes in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    /// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED".
    pub code_ttl: i64,
    /// Absolute lifetime of a refresh-token family, from the original grant.
    pub refresh_token_ttl: i64,
    /// A refresh token unused for this long expires.
    pub refresh_token_idle_ttl: i64,
    /// Within this window a repeated refresh returns the same new pair (racing tabs, retries).
    pub refresh_grace_period: i64,
    /// Always issue a refresh token for code-flow grants, even without `offline_access`.
    pub issue_refresh_without_offline_access: bool,
    /// Put the granted scopes' claims in every ID token, not only when no access token is
    /// issued (OIDC Core section 5.4 allows both).
    pub id_token_scope_claims: bool,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: 600,
            id_token_ttl: 600,
            code_ttl: 60,
            refresh_token_ttl: 30 * 86_400,
            refresh_token_idle_ttl: 14 * 86_400,
            refresh_grace_period: 5,
            issue_refresh_without_offline_access: false,
            id_token_scope_claims: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    pub idle_ttl: i64,
    pub absolute_ttl: i64,
    /// How long a started-but-unfinished login/consent interaction stays valid.
    pub interaction_ttl: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_ttl: 8 * 3600,
            absolute_ttl: 7 * 86_400,
            interaction_ttl: 15 * 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// Access-token signing algorithm unless a client asks for another.
    pub default_alg: SigningAlg,
    /// A new key is published in the JWKS this long before it signs anything. Must exceed
    /// `jwks_max_age` so that relying parties that cache the JWKS already know it.
    pub prepublish_seconds: i64,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: i64,
    /// Rotate automatically when the active key is older than this (0 = never).
    pub rotate_after_seconds: i64,
    /// How often each node re-reads the key set from the store.
    pub reload_seconds: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            default_alg: SigningAlg::Rs256,
            prepublish_seconds: 2 * 3600,
            jwks_max_age: 3600,
            rotate_after_seconds: 0,
            reload_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Failures per account before lockout starts.
    pub max_failures: i64,
    /// Failures per client IP before lockout starts.
    pub max_failures_per_ip: i64,
    /// First lockout; each further failure doubles it, up to `max_lockout_seconds`.
    pub lockout_seconds: i64,
    pub max_lockout_seconds: i64,
    /// Failures older than this are forgotten.
    pub failure_window_seconds: i64,
    /// Scheduling priority of the argon2 threads against the rest of the server.
    pub hash_priority: HashPriority,
    /// Concurrent argon2 computations (each uses `argon2_memory_kib`); 0 = one per CPU core
    /// this process may use (see `hash_threads`).
    pub max_concurrent_hashes: usize,
    /// Password checks waiting for a hashing thread before new ones are turned away as
    /// busy; 0 = eight per hashing thread.
    pub max_queued_hashes: usize,
    /// Password checks from one client address (an IPv6 /64) verified at the same time;
    /// one account is always checked one attempt at a time.
    pub max_in_flight_per_ip: i64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

pub use crate::crypto::password::HashPriority;

impl LoginSettings {
    /// How many argon2 computations run at once. argon2 is CPU-bound, so more at once than
    /// there are cores adds no logins per second, only memory (`argon2_memory_kib` each) and
    /// more time slices taken from the token endpoint. `available_parallelism` honours CPU
    /// affinity and cgroup quotas, so a container limited to one CPU gets one.
    pub fn hash_threads(&self) -> usize {
        match self.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The bound of the hashing queue (`crypto::password`).
    pub fn hash_queue(&self) -> usize {
        match self.max_queued_hashes {
            0 => 8 * self.hash_threads(),
            n => n,
        }
    }

    /// The password pool these settings describe.
    pub fn hash_pool(&self) -> PoolSettings {
        PoolSettings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            threads: self.hash_threads(),
            queue: self.hash_queue(),
            priority: self.hash_priority,
        }
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            max_failures: 5,
            max_failures_per_ip: 50,
            lockout_seconds: 30,
            max_lockout_seconds: 3600,
            failure_window_seconds: 3600,
            max_concurrent_hashes: 0,
            max_queued_hashes: 0,
            max_in_flight_per_ip: 2,
            hash_priority: HashPriority::Idle,
            argon2_memory_kib: OWASP_MEMORY_KIB,
            argon2_iterations: OWASP_ITERATIONS,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogoutSettings {
    /// On logout, revoke the refresh tokens issued in the ended browser session, except the
    /// `offline_access` ones (Back-Channel Logout 1.0 section 2.7).
    pub revoke_session_tokens: bool,
}

impl Default for LogoutSettings {
    fn default() -> Self {
        Self {
            revoke_session_tokens: true,
        }
    }
}

/// Delivery of Logout Tokens to clients' `backchannel_logout_uri` (OpenID Connect Back-Channel
/// Logout 1.0), by a worker on every node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackchannelLogoutSettings {
    /// How often each node looks for deliveries queued by other nodes or the CLI; a session
    /// ended on this node wakes its worker at once.
    pub poll_interval_seconds: u64,
    /// Time for one POST, from connecting to the response's status line.
    pub timeout_seconds: u64,
    /// POSTs at once per node; also how many deliveries a node claims at a time.
    pub concurrency: usize,
    /// Attempts before a delivery is given up.
    pub max_attempts: i64,
    /// Wait before the first retry; each further retry waits twice as long, up to
    /// `max_retry_delay_seconds`.
    pub retry_delay_seconds: i64,
    pub max_retry_delay_seconds: i64,
    /// `exp` - `iat` of a Logout Token. Each attempt signs a new one with the same `jti`.
    pub token_ttl: i64,
    /// Finished deliveries stay in the store this long (to look into failures), then go.
    pub retention_seconds: i64,
}

impl Default for BackchannelLogoutSettings {
    fn default() -> Self {
        Self {
            poll_interval_seconds: 5,
            timeout_seconds: 5,
            concurrency: 8,
            max_attempts: 10,
            retry_delay_seconds: 10,
            max_retry_delay_seconds: 3600,
            token_ttl: 120,
            retention_seconds: 7 * 86_400,
        }
    }
}

impl BackchannelLogoutSettings {
    /// The wait before the attempt after attempt `attempt` (1-based).
    pub fn retry_delay(&self, attempt: i64) -> i64 {
        let doublings = (attempt - 1).clamp(0, 30) as u32;
        self.retry_delay_seconds
            .saturating_mul(1_i64 << doublings)
            .min(self.max_retry_delay_seconds)
    }

    /// How long a node holds a claimed delivery before another may take it: longer than
    /// one POST can last, so a live node always finishes first.
    pub fn lease(&self) -> i64 {
        self.timeout_seconds as i64 + 60
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceSettings {
    /// RFC 8628 §3.2 `expires_in`.
    pub code_ttl: i64,
    /// RFC 8628 §3.2 `interval`.
    pub poll_interval: i64,
    /// Wrong user codes per client IP per window before the page refuses (§5.1).
    pub max_attempts_per_ip: i64,
    /// Wrong user codes across all IPs per window before every code check is slowed down.
    pub max_attempts_global: i64,
    pub attempt_window_seconds: i64,
    /// How long each code check waits while the global limit is exceeded. A slowdown, never
    /// a lock: an attacker must not be able to turn device sign-in off for everyone.
    pub global_slowdown_seconds: u64,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            code_ttl: 600,
            poll_interval: 5,
            max_attempts_per_ip: 10,
            max_attempts_global: 1000,
            attempt_window_seconds: 600,
            global_slowdown_seconds: 2,
        }
    }
}

/// Throttling of failed client authentication (wrong client secrets) at the token,
/// introspection, revocation and device endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthSettings {
    /// Failed authentications of one client from one address per window before that
    /// address is locked out for that client.
    pub max_failures_per_client: i64,
    /// Failed client authentications from one address (an IPv6 /64) per window.
    pub max_failures_per_ip: i64,
    /// First lockout; each further lockout doubles it, up to `max_lockout_seconds`.
    pub lockout_seconds: i64,
    pub max_lockout_seconds: i64,
    pub failure_window_seconds: i64,
}

impl Default for ClientAuthSettings {
    fn default() -> Self {
        Self {
            max_failures_per_client: 20,
            max_failures_per_ip: 20,
            lockout_seconds: 60,
            max_lockout_seconds: 900,
            failure_window_seconds: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout_seconds: u64,
    /// Parameters per request (form body or query string); more is `invalid_request`.
    pub max_params: usize,
    /// Bytes of one parameter name or value; longer is `invalid_request`.
    pub max_param_bytes: usize,
    /// The request line and headers must arrive within this long of the connection opening
    /// or of the previous response, or the connection is closed (slowloris).
    pub header_read_timeout_seconds: u64,
    /// A connection on which no byte moves either way for this long is closed, e.g. a
    /// client that stops reading its responses. Must exceed `request_timeout_seconds`.
    pub idle_timeout_seconds: u64,
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// The request line and headers together, and so the read buffer of each connection.
    pub max_header_bytes: usize,
}

impl Limits {
    /// How long a guess may count as in flight if its node dies before ending it
    /// (`attempts`): a request cannot outlive its timeout, plus a margin.
    pub fn attempt_lease(&self) -> i64 {
        self.request_timeout_seconds as i64 + 5
    }

    pub fn params(&self) -> ParamLimits {
        ParamLimits {
            max_params: self.max_params,
            max_value_bytes: self.max_param_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout_seconds: 30,
            max_params: DEFAULT_MAX_PARAMS,
            max_param_bytes: DEFAULT_MAX_VALUE_BYTES,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// How often each node re-reads the client table (`core::clients`). On SQLite (and on
    /// Postgres if a notification is lost) also the longest a disabled client or a
    /// rotated-away secret keeps working on a node. 0 = no cache.
    pub clients_seconds: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { clients_seconds: 5 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JanitorSettings {
    pub interval_seconds: u64,
    /// Rows deleted per statement, so a purge never holds long locks.
    pub batch_size: i64,
    /// Audit events older than this many days are deleted (0 = kept forever).
    pub audit_retention_days: i64,
}

impl JanitorSettings {
    /// Seconds an audit event is kept, or None to keep it forever.
    pub fn audit_retention(&self) -> Option<i64> {
        (self.audit_retention_days > 0).then(|| self.audit_retention_days * 86_400)
    }
}

impl Default for JanitorSettings {
    fn default() -> Self {
        Self {
            interval_seconds: 60,
            batch_size: 1000,
            audit_retention_days: 90,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Theme {
    pub product_name: String,
    pub logo_url: Option<String>,
    /// A hex colour (`#rgb` or `#rrggbb`) for buttons and links, e.g. `#3b5bdb`.
    pub accent_color: String,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            product_name: "Latchkey".into(),
            logo_url: None,
            accent_color: "#2f5bd3".into(),
        }
    }
}

/// Where the Prometheus metrics are served.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// A listener of its own for `/metrics` (e.g. 127.0.0.1:9090); when set, the main
    /// listener never serves it.
    #[serde(default, deserialize_with = "super::values::metrics_bind")]
    pub bind: Option<std::net::SocketAddr>,
}

/// Two-step sign-in (issue 19; README "Two-step sign-in and the account page").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaSettings {
    pub mode: MfaMode,
}

/// Whether a second factor is used at all, on request, or always.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaMode {
    /// Never asked for: factors users set up stay, unused, and an essential request for the
    /// two-factor level cannot be met.
    Off,
    /// Asked of users who set one up, and of others when a client requires it or a request
    /// insists on it (they set one up first).
    #[default]
    Optional,
    /// Every sign-in needs two factors; a user without a second factor sets one up right
    /// after the password.
    Required,
}

/// The flow explorer (`/explore`, README "The flow explorer"): off unless turned on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplorerSettings {
    /// Serve `/explore` and register the explorer's own clients (`explorer-*`).
    pub enabled: bool,
}

/// The account page (`/account`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// The profile claims (OIDC Core section 5.1) a person may change on their own account
    /// page. Only these can be listed (`EDITABLE_CLAIMS`): an email or a phone number would
    /// need checking before it is `_verified`, and `preferred_username` is the login name.
    pub editable_claims: Vec<String>,
}

/// Claims a person may be allowed to edit.
pub const EDITABLE_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
];

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            editable_claims: [
                "name",
                "given_name",
                "family_name",
                "nickname",
                "locale",
                "zoneinfo",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}
