//! Configuration: one TOML file, then `LATCHKEY_*` environment overrides, validated once.
//!
//! Every scalar field can be overridden from the environment: `LATCHKEY_ISSUER` sets
//! `issuer`, and a double underscore descends into a table, so `LATCHKEY_TOKENS__CODE_TTL`
//! sets `[tokens] code_ttl`. Validation reports every problem at once and refuses the whole
//! file before anything is written to the store.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::crypto::password::{OWASP_ITERATIONS, OWASP_MEMORY_KIB, PoolSettings};
use crate::crypto::secret::SecretHash;
use crate::oauth::params::{DEFAULT_MAX_PARAMS, DEFAULT_MAX_VALUE_BYTES, ParamLimits};
use crate::oauth::types::{GrantType, ResponseType, SigningAlg, TokenEndpointAuthMethod};

/// Environment variables with the `LATCHKEY_` prefix that are not config overrides.
const NON_CONFIG_ENV: &[&str] = &[
    "LATCHKEY_LOG",
    "LATCHKEY_LOG_FORMAT",
    "LATCHKEY_CONFIG",
    "LATCHKEY_TEST_DATABASE_URL",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public base URL; the `iss` of every token (OIDC Discovery §3, RFC 8414 §2).
    pub issuer: String,
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default = "default_database_url")]
    pub database_url: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// base64 of 32 random bytes; encrypts signing keys at rest and keys CSRF tokens.
    /// Prefer `LATCHKEY_MASTER_KEY`. Generated into `data_dir` for the embedded SQLite store.
    #[serde(default)]
    pub master_key: Option<String>,
    /// Load balancers / reverse proxies (IPs or CIDR networks) whose `X-Forwarded-For` is
    /// believed for the client address used by throttles and audit.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub tokens: TokenSettings,
    #[serde(default)]
    pub sessions: SessionSettings,
    #[serde(default)]
    pub keys: KeySettings,
    #[serde(default)]
    pub login: LoginSettings,
    #[serde(default)]
    pub logout: LogoutSettings,
    #[serde(default)]
    pub backchannel_logout: BackchannelLogoutSettings,
    #[serde(default)]
    pub device: DeviceSettings,
    #[serde(default)]
    pub client_auth: ClientAuthSettings,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub janitor: JanitorSettings,
    #[serde(default)]
    pub cache: CacheSettings,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

fn default_bind() -> String {
    "127.0.0.1:8080".into()
}
fn default_database_url() -> String {
    "sqlite://data/latchkey.db".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

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
    /// On logout, revoke the refresh tokens issued in the ended browser session.
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
    /// How often each node re-reads the client table (`client_cache`). On SQLite (and on
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
    pub bind: Option<String>,
}

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    pub name: String,
    /// The hash printed by `latchkey hash-secret`.
    #[serde(default)]
    pub client_secret_hash: Option<String>,
    /// Name of an environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Refused: accepted by the parser only to explain how to hash it.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub require_pkce: bool,
    #[serde(default)]
    pub allow_plain_pkce: bool,
    #[serde(default)]
    pub skip_consent: bool,
    #[serde(default)]
    pub always_issue_refresh_token: bool,
    /// Overrides `tokens.id_token_scope_claims` for this client.
    #[serde(default)]
    pub id_token_scope_claims: Option<bool>,
    /// May call `/introspect` (a resource server).
    #[serde(default)]
    pub introspection: bool,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub refresh_token_ttl: Option<i64>,
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub access_token_signed_response_alg: Option<String>,
    /// Where Logout Tokens are POSTed when a session this client was signed in to ends
    /// (OpenID Connect Back-Channel Logout 1.0 section 2.2).
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in Logout Tokens (section 2.2). Latchkey always sends it.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
}

/// One `[[users]]` entry (demo or bootstrap accounts).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    /// argon2id PHC string from `latchkey hash-secret`.
    pub password_hash: String,
    #[serde(default)]
    pub claims: crate::model::UserClaims,
    #[serde(default)]
    pub disabled: bool,
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub field: String,
    pub message: String,
    /// The line of the config file it is about, when it is about one.
    pub line: Option<usize>,
}

impl Problem {
    fn at(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    /// Allowed, but against the OAuth 2.0 Security BCP (RFC 9700).
    Warning,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(line) => write!(f, "{tag}: line {line}: {}: {}", self.field, self.message),
            None => write!(f, "{tag}: {}: {}", self.field, self.message),
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A mistake in a LATCHKEY_* variable is not the file's.
        if !self.problems.is_empty()
            && self
                .problems
                .iter()
                .all(|p| p.line.is_none() && p.field.starts_with("LATCHKEY_"))
        {
            writeln!(
                f,
                "the LATCHKEY_* environment overrides of {} are not valid:",
                self.path.display()
            )?;
        } else {
            writeln!(f, "{} is not a valid Latchkey config:", self.path.display())?;
        }
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Read, overlay the environment, parse and validate. Warnings are returned for logging.
    pub fn load(path: &Path) -> Result<(Config, Vec<Problem>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            problems: vec![error("(file)", format!("cannot read: {e}"))],
        })?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::from_toml(&text, &env).map_err(|problems| ConfigError {
            path: path.to_owned(),
            problems,
        })
    }

    /// Parse TOML text with the given environment; pure, for tests and `config check`.
    ///
    /// Every problem is reported in one run, in file order, each with its line: an entry
    /// serde refuses is recorded and taken out, and the rest is parsed again, so one
    /// mistake does not hide the next; what parses is then validated too.
    pub fn from_toml(
        text: &str,
        env: &[(String, String)],
    ) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
        let lines = Lines::new(text);
        let mut doc = toml::de::DeTable::parse(text)
            .map_err(|e| {
                let line = e.span().map(|s| lines.line(s.start));
                vec![error("(syntax)", e.message().trim().to_owned()).at(line)]
            })?
            .into_inner();
        // Each override's value is given a span past the end of the text, so that a problem
        // with it is blamed on its variable, not on the file.
        let overrides: Vec<(String, String)> = env_overrides(env, &doc)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), env_value(v).to_string()))
            .collect();
        let vars: Vec<String> = overrides
            .iter()
            .map(|(k, _)| format!("LATCHKEY_{k}"))
            .collect();
        let mut problems = Vec::new();
        for (i, (key, literal)) in overrides.iter().enumerate() {
            let span = text.len() + 1 + i..text.len() + 2 + i;
            let path: Vec<String> = key.to_lowercase().split("__").map(str::to_owned).collect();
            // A literal that toml itself wrote: a string if it somehow does not parse back.
            let value = match toml::de::DeValue::parse(literal) {
                Ok(v) => v.into_inner(),
                Err(_) => toml::de::DeValue::String(literal.as_str().into()),
            };
            if let Err(p) = set_path(&mut doc, &path, toml::Spanned::new(span, value)) {
                problems.push(error(&vars[i], format!("`{p}` is not a table")));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let source = |span: &std::ops::Range<usize>| -> Result<usize, &str> {
            match span.start.checked_sub(text.len() + 1) {
                Some(i) => Err(vars.get(i).map_or("(environment)", String::as_str)),
                None => Ok(lines.line(span.start)),
            }
        };
        let original = doc.clone();
        let mut config = None;
        for _ in 0..1000 {
            let de = toml::de::Deserializer::from(toml::Spanned::new(0..text.len(), doc.clone()));
            let e = match Config::deserialize(de) {
                Ok(c) => {
                    config = Some(c);
                    break;
                }
                Err(e) => e,
            };
            let span = e.span();
            let removed = span.as_ref().and_then(|s| remove_at(&mut doc, s));
            let field = removed.clone().unwrap_or_else(|| "(schema)".into());
            let message = schema_message(e.message(), &field);
            match span.as_ref().map(source) {
                Some(Ok(line)) => problems.push(error(&field, message).at(Some(line))),
                Some(Err(var)) => problems.push(error(var, message)),
                None => problems.push(error(&field, message)),
            }
            if removed.is_none() {
                break;
            }
        }
        if let Some(config) = &config {
            for mut p in config.validate(env) {
                if p.line.is_none() {
                    match span_of(&original, &p.field).as_ref().map(source) {
                        Some(Ok(line)) => p.line = Some(line),
                        Some(Err(var)) => p.field = format!("{var} ({})", p.field),
                        None => {}
                    }
                }
                problems.push(p);
            }
        }
        // File order; problems without a line (the environment, the whole file) last.
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        match config {
            Some(c) if problems.iter().all(|p| p.severity != Severity::Error) => Ok((c, problems)),
            _ => Err(problems),
        }
    }

    /// Every problem in the config, errors and RFC 9700 warnings.
    /// The trusted proxies, parsed (invalid entries were refused by `validate`).
    pub fn trusted_proxy_nets(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_net(p))
            .collect()
    }

    /// The DEMO clients and user of the example config that this config still has.
    pub fn demo_entries(&self) -> Vec<String> {
        let clients = self
            .clients
            .iter()
            .filter(|c| c.client_id.starts_with("demo-"))
            .map(|c| format!("client {}", c.client_id));
        let users = self
            .users
            .iter()
            .filter(|u| u.username.eq_ignore_ascii_case("demo"))
            .map(|u| format!("user {}", u.username));
        clients.chain(users).collect()
    }

    pub fn validate(&self, env: &[(String, String)]) -> Vec<Problem> {
        let mut out = Vec::new();
        match Url::parse(&self.issuer) {
            Ok(u) => {
                // OIDC Discovery §3 / RFC 8414 §2: https, no query or fragment.
                if u.query().is_some() || u.fragment().is_some() {
                    out.push(error("issuer", "must not have a query or fragment".into()));
                }
                if u.scheme() != "https" && !is_loopback(&u) {
                    out.push(error(
                        "issuer",
                        "must be https unless it is a loopback address (http://127.0.0.1, http://localhost)".into(),
                    ));
                }
                // The DEMO secrets and password are published in the example config: on a
                // server others can reach they are a way in for anyone who read it.
                if !is_loopback(&u) && !self.demo_entries().is_empty() {
                    out.push(error(
                        "issuer",
                        format!(
                            "is not a loopback address, but the DEMO entries of the example config are still here ({}); their secrets and password are published, so remove them before serving anyone else",
                            self.demo_entries().join(", ")
                        ),
                    ));
                }
            }
            Err(e) => out.push(error("issuer", format!("not a URL: {e}"))),
        }
        // Every endpoint URL is the issuer plus a path, and tokens carry it byte for byte:
        // `https://id.example.com/` would give `//token` and an `iss` no client expects.
        if self.issuer.ends_with('/') {
            out.push(error(
                "issuer",
                format!(
                    "`{}` ends with a slash: remove the trailing slash (OIDC Discovery §4.3 compares the issuer exactly)",
                    self.issuer
                ),
            ));
        }
        self.theme.validate(&mut out);
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            out.push(error(
                "bind",
                format!("`{}` is not an address like 127.0.0.1:8080", self.bind),
            ));
        }
        if let Some(m) = &self.metrics.bind {
            match m.parse::<std::net::SocketAddr>() {
                Err(_) => out.push(error(
                    "metrics.bind",
                    format!("`{m}` is not an address like 127.0.0.1:9090"),
                )),
                Ok(m) if self.bind.parse().is_ok_and(|b| same_socket(b, m)) => {
                    out.push(error(
                        "metrics.bind",
                        "is the address of bind: give the metrics listener another port".into(),
                    ));
                }
                Ok(_) => {}
            }
        }
        for (i, p) in self.trusted_proxies.iter().enumerate() {
            if parse_net(p).is_none() {
                out.push(error(
                    &format!("trusted_proxies[{i}]"),
                    format!("`{p}` is not an IP address or CIDR network (e.g. 10.0.0.0/8)"),
                ));
            }
        }
        if !(self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
            || self.database_url.starts_with("sqlite:"))
        {
            out.push(error(
                "database_url",
                "must start with postgres://, postgresql:// or sqlite: (e.g. sqlite://data/latchkey.db)".into(),
            ));
        }
        if let Some(k) = &self.master_key
            && crate::crypto::keys::MasterKey::from_base64(k).is_err()
        {
            out.push(error(
                "master_key",
                "must be base64 of exactly 32 bytes (try: openssl rand -base64 32)".into(),
            ));
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_ttl", t.access_token_ttl),
            ("tokens.id_token_ttl", t.id_token_ttl),
            ("tokens.code_ttl", t.code_ttl),
            ("tokens.refresh_token_ttl", t.refresh_token_ttl),
            ("tokens.refresh_token_idle_ttl", t.refresh_token_idle_ttl),
            ("sessions.idle_ttl", self.sessions.idle_ttl),
            ("sessions.absolute_ttl", self.sessions.absolute_ttl),
            ("device.code_ttl", self.device.code_ttl),
            ("device.poll_interval", self.device.poll_interval),
            (
                "device.attempt_window_seconds",
                self.device.attempt_window_seconds,
            ),
            ("login.lockout_seconds", self.login.lockout_seconds),
            (
                "login.failure_window_seconds",
                self.login.failure_window_seconds,
            ),
            (
                "client_auth.lockout_seconds",
                self.client_auth.lockout_seconds,
            ),
            (
                "client_auth.failure_window_seconds",
                self.client_auth.failure_window_seconds,
            ),
        ] {
            if v <= 0 {
                out.push(error(name, "must be a positive number of seconds".into()));
            }
        }
        for (name, v) in [
            ("login.max_failures", self.login.max_failures),
            ("login.max_failures_per_ip", self.login.max_failures_per_ip),
            (
                "login.max_in_flight_per_ip",
                self.login.max_in_flight_per_ip,
            ),
            (
                "device.max_attempts_per_ip",
                self.device.max_attempts_per_ip,
            ),
            (
                "device.max_attempts_global",
                self.device.max_attempts_global,
            ),
            (
                "client_auth.max_failures_per_client",
                self.client_auth.max_failures_per_client,
            ),
            (
                "client_auth.max_failures_per_ip",
                self.client_auth.max_failures_per_ip,
            ),
        ] {
            if v <= 0 {
                out.push(error(name, "must be a positive count".into()));
            }
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.max_params", l.max_params as u64),
            ("limits.max_param_bytes", l.max_param_bytes as u64),
            ("limits.request_timeout_seconds", l.request_timeout_seconds),
            (
                "limits.header_read_timeout_seconds",
                l.header_read_timeout_seconds,
            ),
            ("limits.max_connections", l.max_connections as u64),
            ("janitor.batch_size", self.janitor.batch_size.max(0) as u64),
        ] {
            if v == 0 {
                out.push(error(name, "must be positive".into()));
            }
        }
        if l.idle_timeout_seconds <= l.request_timeout_seconds {
            out.push(error(
                "limits.idle_timeout_seconds",
                "must exceed limits.request_timeout_seconds, or a slow but legitimate request is cut off".into(),
            ));
        }
        // hyper's smallest read buffer.
        if l.max_header_bytes < 8192 {
            out.push(error(
                "limits.max_header_bytes",
                "must be at least 8192".into(),
            ));
        }
        if self.janitor.audit_retention_days < 0 {
            out.push(error(
                "janitor.audit_retention_days",
                "must be 0 (keep forever) or a number of days".into(),
            ));
        }
        // The janitor forgets throttle rows a day after their window began.
        for (name, v) in [
            (
                "login.failure_window_seconds",
                self.login.failure_window_seconds,
            ),
            (
                "client_auth.failure_window_seconds",
                self.client_auth.failure_window_seconds,
            ),
            (
                "device.attempt_window_seconds",
                self.device.attempt_window_seconds,
            ),
        ] {
            if v > 86_400 {
                out.push(error(name, "must be at most 86400 (one day)".into()));
            }
        }
        if self.device.global_slowdown_seconds >= self.limits.request_timeout_seconds {
            out.push(error(
                "device.global_slowdown_seconds",
                "must be shorter than limits.request_timeout_seconds, or every code check would time out".into(),
            ));
        }
        let b = &self.backchannel_logout;
        for (name, ok, rule) in [
            (
                "backchannel_logout.poll_interval_seconds",
                b.poll_interval_seconds > 0,
                "must be a positive number of seconds",
            ),
            (
                "backchannel_logout.timeout_seconds",
                (1..=60).contains(&b.timeout_seconds),
                "must be 1 to 60 seconds",
            ),
            (
                "backchannel_logout.concurrency",
                (1..=256).contains(&b.concurrency),
                "must be 1 to 256",
            ),
            (
                "backchannel_logout.max_attempts",
                (1..=100).contains(&b.max_attempts),
                "must be 1 to 100",
            ),
            (
                "backchannel_logout.retry_delay_seconds",
                b.retry_delay_seconds >= 1,
                // 0 would retry a client that refuses at once in a tight loop.
                "must be a positive number of seconds",
            ),
            (
                "backchannel_logout.max_retry_delay_seconds",
                b.max_retry_delay_seconds >= b.retry_delay_seconds,
                "must be at least backchannel_logout.retry_delay_seconds",
            ),
            (
                "backchannel_logout.token_ttl",
                b.token_ttl > 0,
                "must be a positive number of seconds",
            ),
            (
                "backchannel_logout.retention_seconds",
                b.retention_seconds >= 0,
                "must be 0 or a number of seconds",
            ),
        ] {
            if !ok {
                out.push(error(name, rule.into()));
            }
        }
        if t.code_ttl > 600 {
            out.push(warning(
                "tokens.code_ttl",
                "RFC 6749 §4.1.2 recommends at most 10 minutes".into(),
            ));
        }
        if self.keys.prepublish_seconds < self.keys.jwks_max_age {
            out.push(warning(
                "keys.prepublish_seconds",
                "is shorter than keys.jwks_max_age: relying parties with a cached JWKS may reject tokens signed right after a rotation".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let at = format!("clients[{i}] ({})", c.client_id);
            if !seen.insert(c.client_id.clone()) {
                out.push(error(&at, "client_id is registered twice".into()));
            }
            validate_client(c, &at, env, &mut out);
        }
        let mut users = BTreeSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let at = format!("users[{i}] ({})", u.username);
            if !users.insert(u.username.to_lowercase()) {
                out.push(error(&at, "username is listed twice".into()));
            }
            if !u.password_hash.starts_with("$argon2") {
                out.push(error(
                    &format!("{at}.password_hash"),
                    "must be an argon2 hash: run `echo -n 'the password' | latchkey hash-secret`"
                        .into(),
                ));
            }
        }
        out
    }

    /// Whether the main listener serves `/metrics`. Metrics tell anyone who can read them
    /// how busy the server is, which routes fail and how many users, clients and tokens the
    /// store holds: only where nobody but this machine can reach them, unless
    /// `[metrics] bind` gives them a listener of their own.
    pub fn metrics_on_main_listener(&self) -> bool {
        self.metrics.bind.is_none()
            && self
                .bind
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    pub fn issuer_is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The issuer without a trailing slash, for building endpoint URLs.
    pub fn base_url(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}

/// Would listeners on `a` and `b` fight over one socket?
fn same_socket(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// `10.0.0.0/8` or a single address (`10.0.0.1` as a /32).
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// Every problem with one client, named under `at`. The one validator of a client's shape:
/// `[[clients]]` entries and `latchkey client add` both come through here.
pub fn validate_client(
    c: &ClientConfig,
    at: &str,
    env: &[(String, String)],
    out: &mut Vec<Problem>,
) {
    let field = |f: &str| format!("{at}.{f}");
    if c.client_id.is_empty()
        || c.client_id.len() > 255
        || c.client_id.chars().any(|ch| ch.is_control() || ch == ' ')
    {
        out.push(error(
            &field("client_id"),
            "must be 1-255 printable characters without spaces".into(),
        ));
    }
    if c.client_secret.is_some() {
        out.push(error(
            &field("client_secret"),
            "plaintext secrets are refused. Hash it and use client_secret_hash: `echo -n 'the secret' | latchkey hash-secret`, or name an environment variable with secret_env = \"VAR\"".into(),
        ));
    }
    if c.client_secret_hash.is_some() && c.secret_env.is_some() {
        out.push(error(
            at,
            "give either client_secret_hash or secret_env, not both".into(),
        ));
    }
    if let Some(h) = &c.client_secret_hash
        && SecretHash::parse(h).is_err()
    {
        out.push(error(
            &field("client_secret_hash"),
            "is not a hash printed by `latchkey hash-secret` (expected `$argon2id$…` or `sha256:…`)".into(),
        ));
    }
    if let Some(var) = &c.secret_env
        && !env.iter().any(|(k, v)| k == var && !v.is_empty())
    {
        out.push(error(
            &field("secret_env"),
            format!("environment variable {var} is not set"),
        ));
    }
    let confidential = c.client_secret_hash.is_some() || c.secret_env.is_some();
    let method = match c.token_endpoint_auth_method.as_deref() {
        None => Some(if confidential {
            TokenEndpointAuthMethod::ClientSecretBasic
        } else {
            TokenEndpointAuthMethod::None
        }),
        Some(m) => {
            match m.parse::<TokenEndpointAuthMethod>() {
                Ok(m) => Some(m),
                Err(_) => {
                    out.push(error(
                    &field("token_endpoint_auth_method"),
                    format!("unknown method `{m}` (use client_secret_basic, client_secret_post or none)"),
                ));
                    None
                }
            }
        }
    };
    if let Some(m) = method {
        if m == TokenEndpointAuthMethod::None && confidential {
            out.push(error(
                &field("token_endpoint_auth_method"),
                "is none but the client has a secret".into(),
            ));
        }
        if m != TokenEndpointAuthMethod::None && !confidential {
            out.push(error(
                at,
                format!(
                    "uses {} but has no client_secret_hash or secret_env",
                    m.as_str()
                ),
            ));
        }
    }
    let mut grants = Vec::new();
    for g in &c.grant_types {
        match g.parse::<GrantType>() {
            Ok(g) => grants.push(g),
            Err(_) => out.push(error(
                &field("grant_types"),
                format!(
                    "unknown grant type `{g}` (known: {})",
                    GrantType::ALL
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    if c.grant_types.is_empty() {
        out.push(error(
            &field("grant_types"),
            "list at least one grant type".into(),
        ));
    }
    for r in &c.response_types {
        let Ok(rt) = ResponseType::parse(r) else {
            out.push(error(
                &field("response_types"),
                format!(
                    "unknown response type `{r}` (known: {})",
                    ResponseType::ALL
                        .iter()
                        .map(|t| format!("\"{}\"", t.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            continue;
        };
        // Listed but unusable otherwise: /authorize also checks the grant types.
        let missing: Vec<&str> = rt
            .grant_types()
            .iter()
            .filter(|g| !grants.contains(g))
            .map(|g| g.as_str())
            .collect();
        if !missing.is_empty() {
            out.push(error(
                &field("response_types"),
                format!(
                    "`{r}` needs grant_types to include {} (OpenID Connect Dynamic Client Registration section 2)",
                    missing.join(" and ")
                ),
            ));
        }
    }
    for alg in [
        &c.id_token_signed_response_alg,
        &c.access_token_signed_response_alg,
    ]
    .into_iter()
    .flatten()
    {
        if alg.parse::<SigningAlg>().is_err() {
            out.push(error(
                at,
                format!("unknown signing alg `{alg}` (use RS256, ES256 or EdDSA)"),
            ));
        }
    }
    let redirect_grant =
        grants.contains(&GrantType::AuthorizationCode) || grants.contains(&GrantType::Implicit);
    if redirect_grant && c.redirect_uris.is_empty() {
        out.push(error(
            &field("redirect_uris"),
            "a client using authorization_code or implicit needs at least one".into(),
        ));
    }
    for (j, uri) in c
        .redirect_uris
        .iter()
        .chain(c.post_logout_redirect_uris.iter())
        .enumerate()
    {
        let f = if j < c.redirect_uris.len() {
            format!("{}[{j}]", field("redirect_uris"))
        } else {
            format!(
                "{}[{}]",
                field("post_logout_redirect_uris"),
                j - c.redirect_uris.len()
            )
        };
        check_redirect_uri(uri, &f, out);
    }
    match &c.backchannel_logout_uri {
        Some(uri) => check_backchannel_logout_uri(uri, &field("backchannel_logout_uri"), out),
        None if c.backchannel_logout_session_required => out.push(error(
            &field("backchannel_logout_session_required"),
            "needs backchannel_logout_uri (OpenID Connect Back-Channel Logout 1.0 section 2.2)"
                .into(),
        )),
        None => {}
    }
    if !confidential && grants.contains(&GrantType::ClientCredentials) {
        out.push(error(
            &field("grant_types"),
            "client_credentials needs a confidential client (RFC 6749 §4.4): add client_secret_hash".into(),
        ));
    }
    if grants.contains(&GrantType::Password) {
        out.push(warning(
            &field("grant_types"),
            "the password grant exposes user credentials to the client; RFC 9700 §2.4 says it MUST NOT be used".into(),
        ));
    }
    if grants.contains(&GrantType::Implicit) {
        out.push(warning(
            &field("grant_types"),
            "the implicit grant puts tokens in the front channel; RFC 9700 §2.1.2 recommends the code flow (use response_mode=form_post if you must)".into(),
        ));
    }
    if !confidential && grants.contains(&GrantType::AuthorizationCode) && c.allow_plain_pkce {
        out.push(warning(&field("allow_plain_pkce"), "plain PKCE gives a public client no protection if the request leaks (RFC 9700 §2.1.1): use S256".into()));
    }
    for s in &c.default_scopes {
        if !c.scopes.contains(s) {
            out.push(error(
                &field("default_scopes"),
                format!("`{s}` is not in scopes"),
            ));
        }
    }
    for s in &c.scopes {
        if s.is_empty()
            || s.chars()
                .any(|ch| ch == ' ' || ch == '"' || ch == '\\' || !ch.is_ascii_graphic())
        {
            out.push(error(
                &field("scopes"),
                format!("`{s}` is not a valid scope token (RFC 6749 §3.3)"),
            ));
        }
    }
    for o in &c.allowed_origins {
        match Url::parse(o) {
            Ok(u) if u.path() == "/" && !o.ends_with('/') => {}
            _ => out.push(error(
                &field("allowed_origins"),
                format!("`{o}` is not an origin like https://app.example.com"),
            )),
        }
    }
}

fn check_redirect_uri(uri: &str, field: &str, out: &mut Vec<Problem>) {
    if uri.contains('*') {
        out.push(warning(
            field,
            "wildcards are never matched: redirect URIs are compared exactly (RFC 9700 §4.1.3)"
                .into(),
        ));
    }
    match Url::parse(uri) {
        Ok(u) => {
            // RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
            if u.fragment().is_some() {
                out.push(error(
                    field,
                    "must not contain a fragment (#…) (RFC 6749 §3.1.2)".into(),
                ));
            }
            if u.scheme() == "http" && !is_loopback(&u) {
                out.push(error(
                    field,
                    "http: is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https (RFC 9700 §2.6)".into(),
                ));
            }
            if u.scheme() == "javascript" || u.scheme() == "data" {
                out.push(error(
                    field,
                    "this scheme can run script and is never allowed".into(),
                ));
            }
        }
        Err(e) => out.push(error(field, format!("`{uri}` is not an absolute URI: {e}"))),
    }
}

/// Back-Channel Logout 1.0 section 2.2: an absolute URL without a fragment. Latchkey POSTs
/// Logout Tokens to it, so it must be https, or http to a loopback host (as redirect URIs).
fn check_backchannel_logout_uri(uri: &str, field: &str, out: &mut Vec<Problem>) {
    match Url::parse(uri) {
        Ok(u) => {
            if u.fragment().is_some() {
                out.push(error(
                    field,
                    "must not contain a fragment (#...) (OpenID Connect Back-Channel Logout 1.0 section 2.2)".into(),
                ));
            }
            match u.scheme() {
                "https" if u.host().is_some() => {}
                "http" if is_loopback(&u) => {}
                "http" => out.push(error(
                    field,
                    "http: is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https".into(),
                )),
                _ => out.push(error(
                    field,
                    format!("`{uri}` is not an https URL"),
                )),
            }
        }
        Err(e) => out.push(error(field, format!("`{uri}` is not an absolute URL: {e}"))),
    }
}

pub fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn error(field: &str, message: String) -> Problem {
    Problem {
        severity: Severity::Error,
        field: field.to_owned(),
        message,
        line: None,
    }
}

fn warning(field: &str, message: String) -> Problem {
    Problem {
        severity: Severity::Warning,
        field: field.to_owned(),
        message,
        line: None,
    }
}

impl Theme {
    fn validate(&self, out: &mut Vec<Problem>) {
        if let Some(logo) = &self.logo_url {
            // The pages' CSP is `img-src 'self' https: data:`: any other image is blocked.
            let ok = match Url::parse(logo) {
                Ok(u) => {
                    u.scheme() == "https"
                        || (u.scheme() == "data" && u.path().starts_with("image/"))
                }
                Err(_) => logo.starts_with('/') && !logo.starts_with("//"),
            };
            if !ok {
                out.push(error(
                    "theme.logo_url",
                    format!(
                        "`{logo}` would be blocked by the pages' Content-Security-Policy (img-src 'self' https: data:): use an https:// URL, a data:image/ URL or a path on this server"
                    ),
                ));
            }
        }
        // It is written into a style sheet: only a hex colour, nothing that could end the rule.
        let c = self.accent_color.as_bytes();
        let hex =
            matches!(c.len(), 4 | 7) && c[0] == b'#' && c[1..].iter().all(u8::is_ascii_hexdigit);
        if !hex {
            out.push(error(
                "theme.accent_color",
                format!(
                    "`{}` is not a hex colour: use #rgb or #rrggbb, e.g. \"#2f5bd3\"",
                    self.accent_color
                ),
            ));
        }
    }
}

/// `LATCHKEY_*` variables that are config overrides (not our own knobs, not client secrets).
fn env_overrides<'a>(
    env: &'a [(String, String)],
    doc: &toml::de::DeTable<'_>,
) -> Vec<(&'a str, &'a str)> {
    let secret_vars: BTreeSet<&str> = doc
        .get("clients")
        .and_then(|c| c.get_ref().as_array())
        .map(|arr| {
            arr.iter()
                .filter_map(|c| c.get_ref().get("secret_env")?.get_ref().as_str())
                .collect()
        })
        .unwrap_or_default();
    env.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("LATCHKEY_")?, k.as_str(), v.as_str())))
        .filter(|(_, full, _)| !NON_CONFIG_ENV.contains(full) && !secret_vars.contains(full))
        .map(|(rest, _, v)| (rest, v))
        .collect()
}

type DeEntry<'i> = toml::Spanned<toml::de::DeValue<'i>>;

/// Set `path` in nested tables, creating them; Err names a segment that is not a table.
fn set_path<'i>(
    table: &mut toml::de::DeTable<'i>,
    path: &[String],
    value: DeEntry<'i>,
) -> Result<(), String> {
    let key = |name: &str, v: &DeEntry<'_>| toml::Spanned::new(v.span(), name.to_owned().into());
    match path {
        [] => Ok(()),
        [last] => {
            // An existing key keeps its own span: a wrong value is the variable's, but
            // an unknown key would be too (it has no other place).
            let k = key(last, &value);
            table.insert(k, value);
            Ok(())
        }
        [first, rest @ ..] => {
            let k = key(first, &value);
            let span = value.span();
            let entry = table.entry(k).or_insert_with(|| {
                toml::Spanned::new(span, toml::de::DeValue::Table(Default::default()))
            });
            match entry.get_mut() {
                toml::de::DeValue::Table(t) => set_path(t, rest, value),
                _ => Err(first.clone()),
            }
        }
    }
}

/// Numbers and booleans keep their type; anything else is a string.
fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match v {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_owned()),
    }
}

/// Byte offsets to 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self(starts)
    }

    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset)
    }
}

fn contains(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// Take out the innermost entry whose key or value holds `span`; its path, e.g.
/// `clients[1].colour`. None when no single entry holds it (e.g. a missing top-level key).
/// Every entry is looked into: an array of tables has the span of its first header only.
fn remove_at(table: &mut toml::de::DeTable<'_>, span: &std::ops::Range<usize>) -> Option<String> {
    let mut hit = None;
    for (k, v) in table.iter_mut() {
        let name = k.get_ref().to_string();
        let deeper = match v.get_mut() {
            toml::de::DeValue::Table(t) => remove_at(t, span).map(|p| format!("{name}.{p}")),
            toml::de::DeValue::Array(a) => {
                let mut found = None;
                let mut drop = None;
                for (i, e) in a.as_mut().iter_mut().enumerate() {
                    let inner = match e.get_mut() {
                        toml::de::DeValue::Table(t) => remove_at(t, span),
                        _ => None,
                    };
                    if let Some(p) = inner {
                        found = Some(format!("{name}[{i}].{p}"));
                        break;
                    }
                    if contains(&e.span(), span) {
                        drop = Some(i);
                        found = Some(format!("{name}[{i}]"));
                        break;
                    }
                }
                if let Some(i) = drop {
                    *a = a
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, v)| v.clone())
                        .collect();
                }
                found
            }
            _ => None,
        };
        if deeper.is_some() {
            return deeper;
        }
        if hit.is_none() && (contains(&k.span(), span) || contains(&v.span(), span)) {
            hit = Some(name);
        }
    }
    let name = hit?;
    table.remove(name.as_str());
    Some(name)
}

/// The span of the entry a validation field names, e.g. `clients[0] (web).redirect_uris[1]`:
/// the deepest part of the path that is in the document.
fn span_of(table: &toml::de::DeTable<'_>, field: &str) -> Option<std::ops::Range<usize>> {
    let mut span = None;
    let mut here: Option<&toml::de::DeValue<'_>> = None;
    for part in field.split('.') {
        let part = part.split(" (").next().unwrap_or(part);
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        let t = match here {
            None => table,
            Some(toml::de::DeValue::Table(t)) => t,
            Some(_) => break,
        };
        let Some((k, v)) = t.get_key_value(name) else {
            break;
        };
        span = Some(k.span());
        let mut v = v;
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            let Some(next) = index
                .parse::<usize>()
                .ok()
                .and_then(|i| v.get_ref().as_array()?.get(i))
            else {
                break;
            };
            v = next;
            span = Some(v.span());
        }
        here = Some(v.get_ref());
    }
    span
}

/// serde's message, with the place named and a likely spelling for an unknown field.
fn schema_message(message: &str, field: &str) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((name, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let parent = match field.rsplit_once('.') {
        Some((p, _)) => p.to_owned(),
        None => "the config".to_owned(),
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let close = known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match close {
        Some((_, k)) => format!("{parent} has no field {name} (did you mean {k}?)"),
        None if known.is_empty() => format!("{parent} has no field {name}"),
        None => format!("{parent} has no field {name} (it has {})", known.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
issuer = "http://127.0.0.1:8080"

[[clients]]
client_id = "web"
name = "Web"
client_secret_hash = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
redirect_uris = ["http://localhost:3000/cb"]
grant_types = ["authorization_code", "refresh_token"]
"#;

    fn problems(text: &str) -> Vec<Problem> {
        match Config::from_toml(text, &[]) {
            Ok((_, w)) => w,
            Err(p) => p,
        }
    }

    /// The shipped example config (the Docker image's too) starts on its loopback issuer,
    /// and refuses to with a public one while its DEMO entries are in it.
    #[test]
    fn demo_entries_are_refused_on_a_public_issuer() {
        let example = include_str!("../config/latchkey.toml");
        let (c, _) = Config::from_toml(example, &[]).expect("the example loads as shipped");
        assert!(!c.demo_entries().is_empty());
        let env = vec![(
            "LATCHKEY_ISSUER".to_owned(),
            "https://id.example.com".to_owned(),
        )];
        let err = Config::from_toml(example, &env).expect_err("DEMO on a public issuer");
        let all: Vec<&str> = err.iter().map(|p| p.message.as_str()).collect();
        assert!(
            all.iter().any(|m| m.contains("DEMO")
                && m.contains("client demo-web")
                && m.contains("user demo")),
            "{all:?}"
        );
        // Without them the public issuer is fine.
        let (mut c, _) = Config::from_toml(example, &[]).expect("loads");
        c.clients.retain(|c| !c.client_id.starts_with("demo-"));
        c.users.clear();
        c.issuer = "https://id.example.com".into();
        assert!(
            c.validate(&[])
                .iter()
                .all(|p| p.severity != Severity::Error),
            "{:?}",
            c.validate(&[])
        );
    }

    /// The messages of the errors `text` gives for `field`.
    fn errors_for(text: &str, field: &str) -> Vec<String> {
        problems(text)
            .into_iter()
            .filter(|p| p.severity == Severity::Error && p.field == field)
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn an_issuer_with_a_trailing_slash_is_refused() {
        let text = MINIMAL.replace("127.0.0.1:8080\"", "127.0.0.1:8080/\"");
        let e = errors_for(&text, "issuer");
        assert!(
            e.iter().any(|m| m.contains("remove the trailing slash")),
            "{e:?}"
        );
        assert!(errors_for(MINIMAL, "issuer").is_empty());
    }

    #[test]
    fn the_logo_must_be_an_image_the_pages_csp_allows() {
        for bad in [
            "http://cdn.example.com/logo.png",
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "//cdn.example.com/logo.png",
            "logo.png",
        ] {
            let text = format!("{MINIMAL}\n[theme]\nlogo_url = \"{bad}\"\n");
            let e = errors_for(&text, "theme.logo_url");
            assert!(
                e.iter()
                    .any(|m| m.contains("https://") && m.contains("img-src")),
                "{bad}: {e:?}"
            );
        }
        for good in [
            "https://cdn.example.com/logo.svg",
            "data:image/png;base64,iVBORw0KGgo=",
            "/brand/logo.svg",
        ] {
            let text = format!("{MINIMAL}\n[theme]\nlogo_url = \"{good}\"\n");
            assert!(errors_for(&text, "theme.logo_url").is_empty(), "{good}");
        }
    }

    #[test]
    fn the_accent_colour_is_a_hex_colour_only() {
        for bad in [
            "red",
            "#abcd",
            "#12345g",
            "#fff; } body { display: none",
            "rgb(1,2,3)",
            "",
        ] {
            let text = format!("{MINIMAL}\n[theme]\naccent_color = \"{bad}\"\n");
            let e = errors_for(&text, "theme.accent_color");
            assert!(e.iter().any(|m| m.contains("#rrggbb")), "{bad}: {e:?}");
        }
        for good in ["#abc", "#2F5BD3", "#2f5bd3"] {
            let text = format!("{MINIMAL}\n[theme]\naccent_color = \"{good}\"\n");
            assert!(errors_for(&text, "theme.accent_color").is_empty(), "{good}");
        }
    }

    #[test]
    fn minimal_config_loads() {
        let (c, warnings) = Config::from_toml(MINIMAL, &[]).expect("valid");
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.clients.len(), 1);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn env_overrides_top_level_and_nested_fields() {
        let env = vec![
            ("LATCHKEY_BIND".to_owned(), "127.0.0.1:9999".to_owned()),
            ("LATCHKEY_TOKENS__CODE_TTL".to_owned(), "30".to_owned()),
            ("LATCHKEY_LOG_FORMAT".to_owned(), "json".to_owned()),
        ];
        let (c, _) = Config::from_toml(MINIMAL, &env).expect("valid");
        assert_eq!(c.bind, "127.0.0.1:9999");
        assert_eq!(c.tokens.code_ttl, 30);
    }

    #[test]
    fn unknown_env_override_is_refused() {
        let env = vec![("LATCHKEY_NOPE".to_owned(), "1".to_owned())];
        let err = Config::from_toml(MINIMAL, &env).expect_err("unknown field");
        assert!(err[0].message.contains("nope"), "{err:?}");
    }

    #[test]
    fn unknown_field_names_the_line() {
        let text = MINIMAL.replace("name = \"Web\"", "name = \"Web\"\ncolour = \"red\"");
        let p = problems(&text);
        assert!(
            p[0].message.contains("colour") && p[0].to_string().contains("line 7:"),
            "{p:?}"
        );
    }

    /// Three independent mistakes, far apart: all reported in one run, in file order, each
    /// with its line, a semantic one too.
    #[test]
    fn every_problem_is_reported_at_once_in_file_order() {
        let mut lines: Vec<String> = (0..200).map(|i| format!("# filler {i}")).collect();
        lines[0] = "issuer = \"http://127.0.0.1:8080\"".into();
        lines[59] = "[[clients]]".into();
        lines[60] = "client_id = \"web\"".into();
        lines[61] = "name = \"Web\"".into();
        lines[62] = "redirect_uris = [\"http://app.example.com/cb\"]".into();
        lines[63] = "grant_types = [\"authorization_code\"]".into();
        lines[89] = "colour = \"red\"".into();
        lines[139] = "[tokens]".into();
        lines[149] = "code_ttl = \"sixty\"".into();
        let text = lines.join("\n");
        let p = problems(&text);
        let errors: Vec<(Option<usize>, String)> = p
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| (p.line, p.to_string()))
            .collect();
        assert_eq!(
            errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            [Some(63), Some(90), Some(150)],
            "{errors:#?}"
        );
        assert!(errors[0].1.contains("loopback"), "{errors:#?}");
        assert!(
            errors[1].1.contains("line 90: clients[0].colour")
                && errors[1].1.contains("no field colour"),
            "{errors:#?}"
        );
        assert!(
            errors[2].1.contains("line 150: tokens.code_ttl")
                && errors[2].1.contains("invalid type"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_mistaken_override_names_its_variable() {
        let env = vec![("LATCHKEY_TOKENS__CODE_TTLL".to_owned(), "30".to_owned())];
        let err = Config::from_toml(MINIMAL, &env).expect_err("unknown field");
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(
            err[0].to_string(),
            "error: LATCHKEY_TOKENS__CODE_TTLL: tokens has no field code_ttll (did you mean code_ttl?)"
        );
        let env = vec![("LATCHKEY_TOKENS__CODE_TTL".to_owned(), "soon".to_owned())];
        let err = Config::from_toml(MINIMAL, &env).expect_err("wrong type");
        assert!(
            err[0].field == "LATCHKEY_TOKENS__CODE_TTL" && err[0].line.is_none(),
            "{err:?}"
        );
    }

    #[test]
    fn plaintext_secret_is_refused_with_a_hint() {
        let text = MINIMAL.replace("client_secret_hash = ", "client_secret = \"hunter2\"\n#");
        let p = problems(&text);
        assert!(
            p.iter()
                .any(|p| p.severity == Severity::Error && p.message.contains("hash-secret")),
            "{p:?}"
        );
    }

    #[test]
    fn bad_redirect_uris_and_grants_are_named() {
        let text = MINIMAL
            .replace("http://localhost:3000/cb", "http://app.example.com/cb#frag")
            .replace("\"refresh_token\"]", "\"refresh_token\", \"magic\"]");
        let p = problems(&text);
        let all = p
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("fragment"), "{all}");
        assert!(all.contains("loopback"), "{all}");
        assert!(all.contains("unknown grant type `magic`"), "{all}");
        assert!(all.contains("clients[0] (web).redirect_uris[0]"), "{all}");
    }

    #[test]
    fn public_client_with_client_credentials_is_an_error() {
        let text = MINIMAL
            .replace("client_secret_hash", "# client_secret_hash")
            .replace("\"refresh_token\"]", "\"client_credentials\"]");
        let p = problems(&text);
        assert!(
            p.iter()
                .any(|p| p.severity == Severity::Error && p.message.contains("confidential")),
            "{p:?}"
        );
    }

    #[test]
    fn limits_are_checked() {
        let text = format!(
            "{MINIMAL}\n[limits]\nmax_params = 0\nrequest_timeout_seconds = 60\nmax_header_bytes = 1024\n[janitor]\naudit_retention_days = -1\n"
        );
        let all = problems(&text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("limits.max_params"), "{all}");
        assert!(all.contains("limits.idle_timeout_seconds"), "{all}");
        assert!(all.contains("limits.max_header_bytes"), "{all}");
        assert!(all.contains("janitor.audit_retention_days"), "{all}");
        assert!(problems(MINIMAL).is_empty());
    }

    #[test]
    fn metrics_stay_off_a_public_main_listener() {
        let (c, _) = Config::from_toml(MINIMAL, &[]).expect("valid");
        assert!(
            c.metrics_on_main_listener(),
            "loopback bind keeps serving it"
        );
        let public = format!("bind = \"0.0.0.0:8080\"\n{MINIMAL}");
        let (c, _) = Config::from_toml(&public, &[]).expect("valid");
        assert!(!c.metrics_on_main_listener());
        let env = vec![(
            "LATCHKEY_METRICS__BIND".to_owned(),
            "127.0.0.1:9090".to_owned(),
        )];
        let (c, _) = Config::from_toml(MINIMAL, &env).expect("valid");
        assert_eq!(c.metrics.bind.as_deref(), Some("127.0.0.1:9090"));
        assert!(!c.metrics_on_main_listener(), "its own listener only");
        for bad in ["nowhere", "0.0.0.0:8080"] {
            let text = format!("{MINIMAL}\n[metrics]\nbind = \"{bad}\"\n");
            let all = problems(&text)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(all.contains("metrics.bind"), "{bad}: {all}");
        }
    }

    #[test]
    fn response_types_need_their_grant_types() {
        let with = |types: &str, grants: &str| {
            MINIMAL
                .replace(
                    "grant_types = [\"authorization_code\", \"refresh_token\"]",
                    &format!("grant_types = [{grants}]\nresponse_types = [{types}]"),
                )
                .to_string()
        };
        let errors = |text: &str| {
            problems(text)
                .into_iter()
                .filter(|p| p.severity == Severity::Error)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        };
        let ok = with(
            "\"code\", \"id_token token\", \"id_token code\", \"code token\", \"code id_token token\"",
            "\"authorization_code\", \"implicit\"",
        );
        assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
        let all = errors(&with("\"code id_token\"", "\"authorization_code\"")).join("\n");
        assert!(
            all.contains("`code id_token` needs grant_types to include implicit"),
            "{all}"
        );
        let all = errors(&with("\"code token\"", "\"implicit\"")).join("\n");
        assert!(
            all.contains("`code token` needs grant_types to include authorization_code"),
            "{all}"
        );
        let all = errors(&with("\"token\"", "\"implicit\"")).join("\n");
        assert!(
            all.contains("unknown response type `token`") && all.contains("\"code id_token\""),
            "{all}"
        );
    }

    #[test]
    fn backchannel_logout_uri_is_an_https_url_without_fragment() {
        let with = |uri: &str| {
            MINIMAL.replace(
                "grant_types = [",
                &format!("backchannel_logout_uri = \"{uri}\"\ngrant_types = ["),
            )
        };
        for ok in [
            "https://rp.example.com/logout?tenant=1",
            "http://127.0.0.1:9000/bcl",
            "http://localhost/bcl",
        ] {
            assert!(problems(&with(ok)).is_empty(), "{ok}");
        }
        for (bad, why) in [
            ("http://rp.example.com/bcl", "loopback"),
            ("https://rp.example.com/bcl#top", "fragment"),
            ("/bcl", "absolute"),
            ("javascript:alert(1)", "https"),
        ] {
            let all = problems(&with(bad))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                all.contains("clients[0] (web).backchannel_logout_uri") && all.contains(why),
                "{bad}: {all}"
            );
        }
        let text = MINIMAL.replace(
            "grant_types = [",
            "backchannel_logout_session_required = true\ngrant_types = [",
        );
        let all = problems(&text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("needs backchannel_logout_uri"), "{all}");
    }

    #[test]
    fn backchannel_logout_retries_double_up_to_the_cap() {
        let b = BackchannelLogoutSettings {
            retry_delay_seconds: 10,
            max_retry_delay_seconds: 100,
            ..Default::default()
        };
        let delays: Vec<i64> = (1..=6).map(|a| b.retry_delay(a)).collect();
        assert_eq!(delays, [10, 20, 40, 80, 100, 100]);
        assert_eq!(b.retry_delay(1000), 100);
        let text = format!(
            "{MINIMAL}\n[backchannel_logout]\ntimeout_seconds = 0\nmax_attempts = 0\nretry_delay_seconds = 60\nmax_retry_delay_seconds = 30\n"
        );
        let all = problems(&text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for f in ["timeout_seconds", "max_attempts", "max_retry_delay_seconds"] {
            assert!(
                all.contains(&format!("backchannel_logout.{f}")),
                "{f}: {all}"
            );
        }
    }

    #[test]
    fn bcp_warnings() {
        let text = MINIMAL
            .replace("\"refresh_token\"]", "\"password\", \"implicit\"]")
            .replace("http://localhost:3000/cb", "https://*.example.com/cb");
        let (_, w) = Config::from_toml(&text, &[]).expect("warnings only");
        let all = w
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("RFC 9700 §2.4"), "{all}");
        assert!(all.contains("RFC 9700 §2.1.2"), "{all}");
        assert!(all.contains("wildcards"), "{all}");
    }
}
