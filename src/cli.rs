//! The `latchkey` command line.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app;
use crate::clock::Clock;
use crate::config::{ClientConfig, Config, Severity, validate_client};
use crate::crypto::aead::{MasterKey, OpenedWith};
use crate::crypto::keys;
use crate::crypto::password::hash_default;
use crate::crypto::secret::{MIN_FAST_SECRET_LEN, SecretHash, new_token};
use crate::model::{Address, ClientSource, UserClaims};
use crate::oauth::types::{GrantType, SigningAlg, TokenEndpointAuthMethod};
use crate::store::Store;
use crate::store::users::NewUser;

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "An OAuth 2.0 and OpenID Connect authorization server"
)]
pub struct Cli {
    /// Config file.
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_CONFIG",
        default_value = "config/latchkey.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage clients registered outside the config file.
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Check a config file.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Hash a secret (asked for without echo, or read from a pipe) for the config file.
    HashSecret {
        /// SHA-256 instead of argon2id: only for generated secrets of 43+ random characters.
        #[arg(long)]
        fast: bool,
    },
    /// The benchmark's one-core ceilings: raw signatures and argon2 verifications per second
    /// at the config's parameters (bench/run.sh; built with `--features bench`).
    #[cfg(feature = "bench")]
    #[command(hide = true)]
    Ceilings {
        /// Seconds of measuring per operation.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

#[derive(Subcommand)]
pub enum ClientCmd {
    /// Register a client; a confidential client's secret is printed once.
    Add {
        /// The client_id to register.
        client_id: String,
        /// Display name shown on the consent page; default the client_id.
        #[arg(long)]
        name: Option<String>,
        /// Repeatable; an allowed redirect URI (exact match).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Repeatable; default authorization_code and refresh_token.
        #[arg(long = "grant-type", value_enum)]
        grant_types: Vec<GrantType>,
        /// Repeatable; a scope the client may request.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        /// Never ask users for consent (first-party clients only).
        #[arg(long)]
        skip_consent: bool,
        /// Allow the client to call the introspection endpoint.
        #[arg(long)]
        introspection: bool,
        /// Where Logout Tokens are POSTed when a session the client was signed in to ends
        /// (OpenID Connect Back-Channel Logout 1.0).
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// The client needs `sid` in its Logout Tokens.
        #[arg(long)]
        backchannel_logout_session_required: bool,
    },
    /// List every client: id, source (config or cli), state and name.
    List,
    /// Show one client's settings.
    Show {
        /// The client's client_id.
        client_id: String,
    },
    /// Remove a client registered with `client add`.
    Remove {
        /// The client's client_id.
        client_id: String,
    },
    /// Generate a new secret (printed once); the old one stops working at once.
    RotateSecret {
        /// The client's client_id.
        client_id: String,
    },
    /// Disable a client registered with `client add`: it is refused everywhere at once.
    Disable {
        /// The client's client_id.
        client_id: String,
    },
    /// Enable a disabled client again.
    Enable {
        /// The client's client_id.
        client_id: String,
    },
    /// Change a client registered with `client add`; options given replace what is stored.
    Update {
        /// The client's client_id.
        client_id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Repeatable; replaces every redirect URI.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Repeatable; replaces every scope the client may request.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
}

#[derive(Args)]
pub struct ClaimArgs {
    /// The email claim.
    #[arg(long)]
    email: Option<String>,
    /// The email address has been verified.
    #[arg(long)]
    email_verified: bool,
    /// Full name (the name claim).
    #[arg(long)]
    name: Option<String>,
    /// Given (first) name.
    #[arg(long)]
    given_name: Option<String>,
    /// Family (last) name.
    #[arg(long)]
    family_name: Option<String>,
    /// Middle name.
    #[arg(long)]
    middle_name: Option<String>,
    /// Casual name.
    #[arg(long)]
    nickname: Option<String>,
    /// The name the user wants to be shown as.
    #[arg(long)]
    preferred_username: Option<String>,
    /// URL of the profile page.
    #[arg(long)]
    profile: Option<String>,
    /// URL of the profile picture.
    #[arg(long)]
    picture: Option<String>,
    /// URL of the web site or blog.
    #[arg(long)]
    website: Option<String>,
    /// Gender.
    #[arg(long)]
    gender: Option<String>,
    /// Birthday, YYYY-MM-DD (or YYYY).
    #[arg(long)]
    birthdate: Option<String>,
    /// Time zone, e.g. Europe/Paris.
    #[arg(long)]
    zoneinfo: Option<String>,
    /// Locale, e.g. en-US.
    #[arg(long)]
    locale: Option<String>,
    /// Phone number (phone_number claim), E.164 recommended.
    #[arg(long)]
    phone: Option<String>,
    /// The phone number has been verified.
    #[arg(long)]
    phone_verified: bool,
    /// Address: street (may be several lines).
    #[arg(long)]
    street_address: Option<String>,
    /// Address: city or locality.
    #[arg(long)]
    locality: Option<String>,
    /// Address: state, province or region.
    #[arg(long)]
    region: Option<String>,
    /// Address: postal code.
    #[arg(long)]
    postal_code: Option<String>,
    /// Address: country.
    #[arg(long)]
    country: Option<String>,
}

impl ClaimArgs {
    fn into_claims(self) -> UserClaims {
        let has_address = self.street_address.is_some()
            || self.locality.is_some()
            || self.region.is_some()
            || self.postal_code.is_some()
            || self.country.is_some();
        let address = has_address.then(|| {
            let formatted = [
                &self.street_address,
                &self.locality,
                &self.region,
                &self.postal_code,
                &self.country,
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
            Address {
                formatted: Some(formatted),
                street_address: self.street_address,
                locality: self.locality,
                region: self.region,
                postal_code: self.postal_code,
                country: self.country,
            }
        });
        UserClaims {
            email_verified: self.email.as_ref().map(|_| self.email_verified),
            email: self.email,
            name: self.name,
            given_name: self.given_name,
            family_name: self.family_name,
            middle_name: self.middle_name,
            nickname: self.nickname,
            preferred_username: self.preferred_username,
            profile: self.profile,
            picture: self.picture,
            website: self.website,
            gender: self.gender,
            birthdate: self.birthdate,
            zoneinfo: self.zoneinfo,
            locale: self.locale,
            phone_number_verified: self.phone.as_ref().map(|_| self.phone_verified),
            phone_number: self.phone,
            address,
        }
    }
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; asks for the password without echo unless --password-stdin.
    Add {
        /// The login name.
        username: String,
        /// Read the password from stdin (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        claims: ClaimArgs,
    },
    /// List every user: username, sub, state and email.
    List,
    /// Show one user: sub, state, source, claims and when it was created and last changed.
    Show {
        /// The user's username or email.
        username: String,
    },
    /// Set a new password. This signs the user out everywhere and revokes every token they
    /// hold (a changed password is how an account is taken back), unless --keep-sessions.
    SetPassword {
        /// The user's username or email.
        username: String,
        /// Read the password from stdin (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Keep the user's browser sessions, refresh tokens and access tokens.
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Disable the account: it can no longer sign in, and every session and token it holds
    /// is revoked now. Enabling it again brings none of them back.
    Disable {
        /// The user's username or email.
        username: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The user's username or email.
        username: String,
    },
    /// Sign the user out everywhere and revoke every grant and token they hold.
    RevokeSessions {
        /// The user's username or email.
        username: String,
    },
    /// Remove the account: revoke everything it holds, then delete it and its consents.
    Remove {
        /// The user's username or email.
        username: String,
    },
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Each key's state (next, active, retired) and dates.
    List,
    /// Publish a new key now; it starts signing after keys.prepublish_seconds.
    Rotate {
        /// RS256, ES256 or EdDSA; default all three.
        #[arg(long, value_enum)]
        alg: Option<SigningAlg>,
    },
    /// Print a new random master key (base64 of 32 bytes) for a rotation.
    NewMasterKey,
    /// Re-seal every stored signing key under the current master key, after a rotation
    /// (master_key = the new key, previous_master_key = the old one). All or nothing.
    Reseal,
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate a config file: exit 0, or print every problem.
    Check {
        /// The file to check; default the --config file.
        path: Option<PathBuf>,
    },
}

fn now() -> i64 {
    Clock::System.now()
}

/// Unix seconds as `2026-11-26 01:55:00 UTC` (the proleptic Gregorian calendar; days to a
/// civil date by Howard Hinnant's `civil_from_days`).
pub fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Print rows under a header, each column as wide as its widest cell.
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// The config for a command. Its warnings are logged by `serve` only (`config check` prints
/// them): an admin running `user list` is not the one to act on them, every time.
fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(load_with_hint(path)?.0)
}

fn load_config_warning(path: &std::path::Path) -> anyhow::Result<Config> {
    let (config, warnings) = load_with_hint(path)?;
    for w in warnings {
        tracing::warn!("{}: {w}", path.display());
    }
    Ok(config)
}

/// `Config::load`, with a file that cannot be read explained by `unreadable`.
fn load_with_hint(path: &std::path::Path) -> anyhow::Result<(Config, Vec<crate::config::Problem>)> {
    Config::load(path).map_err(|e| match unreadable(path, &e) {
        Some(message) => anyhow::anyhow!(message),
        None => e.into(),
    })
}

/// When the config file itself could not be read: the path tried (also made absolute, since
/// the default `config/latchkey.toml` is relative to the working directory, which is not the
/// repository in a container or a service) and how to point at the right file.
fn unreadable(path: &std::path::Path, e: &crate::config::ConfigError) -> Option<String> {
    let p = e.problems.iter().find(|p| p.field == "(file)")?;
    let reason = p
        .message
        .strip_prefix("cannot read: ")
        .unwrap_or(&p.message);
    let absolute = std::path::absolute(path)
        .ok()
        .filter(|a| a != path)
        .map(|a| format!(" ({})", a.display()))
        .unwrap_or_default();
    Some(format!(
        "cannot read the config file {}{absolute}: {reason}\n\
         Point at your config with --config PATH or the LATCHKEY_CONFIG environment variable \
         (without either, latchkey reads config/latchkey.toml relative to the working \
         directory).",
        path.display()
    ))
}

/// Bind `addr`, or say which address could not be had, why, and which setting moves it.
async fn listen(
    addr: std::net::SocketAddr,
    setting: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        use std::io::ErrorKind;
        let (why, cause) = match e.kind() {
            ErrorKind::AddrInUse => (
                "address already in use".to_owned(),
                "another Latchkey or program is using it; ",
            ),
            ErrorKind::AddrNotAvailable => (
                "address not available".to_owned(),
                "no interface of this machine has that IP; ",
            ),
            ErrorKind::PermissionDenied => (
                "permission denied".to_owned(),
                "ports below 1024 need privileges; ",
            ),
            _ => (e.to_string(), ""),
        };
        anyhow::anyhow!("cannot listen on {addr}: {why} ({cause}set {setting})")
    })
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    Ok(store)
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let pw = if from_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "no terminal to ask for the password on (stdin is not a terminal): pipe the password in and add --password-stdin"
            );
        }
        let a = rpassword::prompt_password("Password: ")?;
        let b = rpassword::prompt_password("Again: ")?;
        if a != b {
            anyhow::bail!("the passwords differ");
        }
        a
    };
    if pw.len() < 8 {
        anyhow::bail!("the password must be at least 8 characters");
    }
    Ok(pw)
}

/// Run a parsed command. Returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve => {
            let config = load_config_warning(&cli.config)?;
            // Listen first: a second server on a taken port stops here, before it touches
            // the store (migrations, bootstrap, keys).
            let listener = listen(config.bind, "bind or LATCHKEY_BIND").await?;
            let metrics_listener = match config.metrics.bind {
                Some(addr) => Some(listen(addr, "[metrics] bind or LATCHKEY_METRICS__BIND").await?),
                None => None,
            };
            let demo = config.demo_entries();
            let state = app::build_state(config, Clock::System).await?;
            if !demo.is_empty() {
                tracing::warn!(
                    entries = %demo.join(", "),
                    "DEMO clients or the DEMO user from the example config are registered: their secrets and password are published; remove them before production"
                );
            }
            let background = app::spawn_background(&state)?;
            // One signal stops both listeners: the metrics one when `stop` is dropped.
            let (stop, mut stopped) = tokio::sync::watch::channel(());
            let metrics = match metrics_listener {
                Some(l) => {
                    tracing::info!(listen = %l.local_addr()?, "serving /metrics on its own listener");
                    Some(tokio::spawn(app::serve_metrics(
                        state.clone(),
                        l,
                        async move {
                            let _ = stopped.changed().await;
                        },
                    )))
                }
                None if state.config.metrics_on_main_listener() => None,
                None => {
                    tracing::info!(
                        "/metrics is not served: bind is not a loopback address; set [metrics] bind to serve it on a listener of its own"
                    );
                    None
                }
            };
            tracing::info!(issuer = %state.config.issuer, listen = %listener.local_addr()?, store = ?state.core.store.backend(), "latchkey is serving");
            app::serve(state, listener, async move {
                app::shutdown_signal().await;
                drop(stop);
            })
            .await?;
            if let Some(m) = metrics {
                m.await??;
            }
            background.shutdown().await;
            Ok(0)
        }
        #[cfg(feature = "bench")]
        Command::Ceilings { seconds } => {
            // The argon2 parameters are the config's, read the way the server reads them
            // (environment overrides included), so the login target compares like with like.
            crate::ceilings::run(&load_config(&cli.config)?.login, seconds)?;
            Ok(0)
        }
        Command::Migrate => {
            let config = load_config(&cli.config)?;
            open_store(&config).await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::Config(ConfigCmd::Check { path }) => {
            let path = path.unwrap_or(cli.config);
            match Config::load(&path) {
                Ok((_, warnings)) => {
                    for w in &warnings {
                        println!("{w}");
                    }
                    println!(
                        "{}: OK{}",
                        path.display(),
                        if warnings.is_empty() {
                            String::new()
                        } else {
                            format!(" ({} warnings)", warnings.len())
                        }
                    );
                    Ok(0)
                }
                Err(e) => {
                    if let Some(message) = unreadable(&path, &e) {
                        eprintln!("error: {message}");
                        return Ok(1);
                    }
                    eprint!("{e}");
                    let errors = e
                        .problems
                        .iter()
                        .filter(|p| p.severity == Severity::Error)
                        .count();
                    eprintln!("{errors} error(s)");
                    Ok(1)
                }
            }
        }
        Command::HashSecret { fast } => {
            // At a terminal: one line, not echoed. Piped: everything on stdin, as scripts do.
            let s = if std::io::stdin().is_terminal() {
                rpassword::prompt_password("Secret: ")?
            } else {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            };
            let secret = s.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                anyhow::bail!("no secret on stdin");
            }
            if fast {
                if secret.len() < MIN_FAST_SECRET_LEN {
                    anyhow::bail!(
                        "--fast is only safe for generated secrets of at least {MIN_FAST_SECRET_LEN} random characters; drop --fast to use argon2id"
                    );
                }
                println!("{}", SecretHash::fast(secret).encode());
            } else {
                println!("{}", hash_default(secret)?);
            }
            Ok(0)
        }
        Command::Client(cmd) => client_cmd(&load_config(&cli.config)?, &cli.config, cmd).await,
        Command::User(cmd) => user_cmd(&load_config(&cli.config)?, &cli.config, cmd).await,
        Command::Keys(cmd) => keys_cmd(&load_config(&cli.config)?, cmd).await,
    }
}

/// Running nodes read clients from their cache (`client_cache`): say when a change that
/// shuts something out reaches them.
fn lag_note(config: &Config, store: &Store) -> String {
    match config.cache.clients_seconds {
        0 => "running nodes apply this to their next request".into(),
        n if store.announces_client_changes() => format!(
            "running nodes reload their clients now (Postgres notification), at the latest within {n} s"
        ),
        n => format!(
            "running nodes stop accepting what this replaced within {n} s (cache.clients_seconds)"
        ),
    }
}

/// A client registered with the CLI that an admin named. One the config file owns is refused: the
/// file is applied at every start, so a change made here would be undone at the next one.
async fn existing_client(
    store: &Store,
    client_id: &str,
    config_path: &std::path::Path,
) -> anyhow::Result<crate::model::Client> {
    let Some(c) = store.get_client(client_id).await? else {
        anyhow::bail!("no client {client_id}");
    };
    if c.source == ClientSource::Config {
        anyhow::bail!(
            "client {client_id} is defined in {} ([[clients]]), which is applied at every start: change or remove it there and restart",
            config_path.display()
        );
    }
    Ok(c)
}

/// A stored client in the shape of a [[clients]] entry, for the config's validator.
fn client_entry(c: &crate::model::Client) -> ClientConfig {
    let s = &c.settings;
    ClientConfig {
        client_id: c.id.clone(),
        name: s.name.clone(),
        client_secret_hash: c.secret_hash.clone(),
        secret_env: None,
        client_secret: None,
        redirect_uris: s.redirect_uris.clone(),
        post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
        grant_types: s.grant_types.clone(),
        response_types: s.response_types.clone(),
        scopes: s.scopes.clone(),
        default_scopes: s.default_scopes.clone(),
        audiences: s.audiences.clone(),
        allowed_origins: s.allowed_origins.clone(),
        token_endpoint_auth_method: Some(c.auth_method()),
        require_pkce: s.require_pkce,
        allow_plain_pkce: s.allow_plain_pkce,
        skip_consent: s.skip_consent,
        always_issue_refresh_token: s.always_issue_refresh_token,
        id_token_scope_claims: s.id_token_scope_claims,
        introspection: s.introspection,
        access_token_ttl: s.access_token_ttl,
        refresh_token_ttl: s.refresh_token_ttl,
        id_token_signed_response_alg: s.id_token_alg,
        access_token_signed_response_alg: s.access_token_alg,
        backchannel_logout_uri: s.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: s.backchannel_logout_session_required,
        env_secret: None,
    }
}

async fn client_cmd(
    config: &Config,
    config_path: &std::path::Path,
    cmd: ClientCmd,
) -> anyhow::Result<i32> {
    let store = open_store(config).await?;
    match cmd {
        ClientCmd::Add {
            client_id,
            name,
            redirect_uris,
            grant_types,
            scopes,
            public,
            skip_consent,
            introspection,
            backchannel_logout_uri,
            backchannel_logout_session_required,
        } => {
            let secret = (!public).then(new_token);
            let method = if public {
                TokenEndpointAuthMethod::None
            } else {
                TokenEndpointAuthMethod::ClientSecretBasic
            };
            // The shape a [[clients]] entry has, so the config's validator judges it: the
            // CLI must not register what the config file would refuse.
            let entry = ClientConfig {
                name: name.unwrap_or_else(|| client_id.clone()),
                client_id: client_id.clone(),
                client_secret_hash: secret.as_deref().map(SecretHash::fast),
                secret_env: None,
                client_secret: None,
                redirect_uris,
                post_logout_redirect_uris: Vec::new(),
                grant_types: if grant_types.is_empty() {
                    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
                } else {
                    grant_types
                },
                response_types: Vec::new(),
                scopes,
                default_scopes: Vec::new(),
                audiences: Vec::new(),
                allowed_origins: Vec::new(),
                token_endpoint_auth_method: Some(method),
                require_pkce: true,
                allow_plain_pkce: false,
                skip_consent,
                always_issue_refresh_token: false,
                id_token_scope_claims: None,
                introspection,
                access_token_ttl: None,
                refresh_token_ttl: None,
                id_token_signed_response_alg: None,
                access_token_signed_response_alg: None,
                backchannel_logout_uri,
                backchannel_logout_session_required,
                env_secret: None,
            };
            let mut problems = Vec::new();
            validate_client(&entry, &format!("client {client_id}"), &[], &mut problems);
            for p in &problems {
                eprintln!("{p}");
            }
            if problems.iter().any(|p| p.severity == Severity::Error) {
                eprintln!("client {client_id} not registered");
                return Ok(1);
            }
            if store.get_client(&client_id).await?.is_some() {
                anyhow::bail!("client {client_id} already exists");
            }
            let client = app::client_from_config(&entry, ClientSource::Cli)?;
            store.upsert_client(&client, now()).await?;
            println!("client {client_id} registered");
            if let Some(s) = secret {
                println!("client_secret: {s}\n(shown once; only its hash is stored)");
            }
        }
        ClientCmd::List => {
            for c in store.list_clients().await? {
                println!(
                    "{:<30} {:<8} {:<7} {}",
                    c.id,
                    c.source,
                    if c.enabled { "enabled" } else { "disabled" },
                    c.name()
                );
            }
        }
        ClientCmd::Show { client_id } => {
            let c = store
                .get_client(&client_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no client {client_id}"))?;
            println!(
                "client_id: {}\nsource: {}\nenabled: {}\nauth method: {}",
                c.id,
                c.source,
                c.enabled,
                c.auth_method().as_str()
            );
            println!("{}", serde_json::to_string_pretty(&c.settings)?);
        }
        ClientCmd::Remove { client_id } => {
            if !store.delete_client(&client_id).await? {
                anyhow::bail!("no client {client_id}");
            }
            println!("client {client_id} removed");
            println!("{}", lag_note(config, &store));
        }
        ClientCmd::RotateSecret { client_id } => {
            let c = store
                .get_client(&client_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no client {client_id}"))?;
            if c.source == ClientSource::Config {
                anyhow::bail!(
                    "{client_id} comes from the config file: change client_secret_hash there"
                );
            }
            if c.is_public() {
                anyhow::bail!("{client_id} is a public client and has no secret");
            }
            let s = new_token();
            store
                .set_client_secret(&client_id, &SecretHash::fast(&s), now())
                .await?;
            println!("client_secret: {s}\n(shown once; only its hash is stored)");
            println!("{}", lag_note(config, &store));
        }
        ClientCmd::Disable { client_id } => {
            let mut c = existing_client(&store, &client_id, config_path).await?;
            c.enabled = false;
            store.upsert_client(&c, now()).await?;
            println!("client {client_id} disabled");
            println!("{}", lag_note(config, &store));
        }
        ClientCmd::Enable { client_id } => {
            let mut c = existing_client(&store, &client_id, config_path).await?;
            c.enabled = true;
            store.upsert_client(&c, now()).await?;
            println!("client {client_id} enabled");
        }
        ClientCmd::Update {
            client_id,
            name,
            redirect_uris,
            scopes,
        } => {
            let mut c = existing_client(&store, &client_id, config_path).await?;
            if name.is_none() && redirect_uris.is_empty() && scopes.is_empty() {
                anyhow::bail!("nothing to change: give --name, --redirect-uri or --scope");
            }
            if let Some(n) = name {
                c.settings.name = n;
            }
            if !redirect_uris.is_empty() {
                c.settings.redirect_uris = redirect_uris;
            }
            if !scopes.is_empty() {
                c.settings.scopes = scopes;
            }
            let mut problems = Vec::new();
            validate_client(
                &client_entry(&c),
                &format!("client {client_id}"),
                &[],
                &mut problems,
            );
            for p in &problems {
                eprintln!("{p}");
            }
            if problems.iter().any(|p| p.severity == Severity::Error) {
                eprintln!("client {client_id} not updated");
                return Ok(1);
            }
            store.upsert_client(&c, now()).await?;
            println!("client {client_id} updated");
            println!("{}", lag_note(config, &store));
        }
    }
    Ok(0)
}

async fn user_cmd(
    config: &Config,
    config_path: &std::path::Path,
    cmd: UserCmd,
) -> anyhow::Result<i32> {
    let store = open_store(config).await?;
    match cmd {
        UserCmd::Add {
            username,
            password_stdin,
            claims,
        } => {
            let pw = read_password(password_stdin)?;
            let hash = hash_default(&pw)?;
            let claims = claims.into_claims();
            match store
                .insert_user(
                    NewUser {
                        username: &username,
                        password_hash: &hash,
                        claims: &claims,
                        source: "cli",
                    },
                    now(),
                )
                .await?
            {
                Some(id) => println!("user {username} added (sub {id})"),
                None => anyhow::bail!("user {username} already exists"),
            }
        }
        UserCmd::List => {
            for u in store.list_users().await? {
                println!(
                    "{:<24} {:<38} {:<8} {}",
                    u.username,
                    u.id,
                    if u.disabled { "disabled" } else { "active" },
                    u.claims.email.unwrap_or_default()
                );
            }
        }
        UserCmd::Show { username } => {
            let user = existing_user(&store, &username, config_path, false).await?;
            let created = store.user_created_at(&user.id).await?.unwrap_or_default();
            println!("username: {}", user.username);
            println!("sub: {}", user.id);
            println!(
                "state: {}",
                if user.disabled { "disabled" } else { "active" }
            );
            println!("source: {}", user.source);
            println!("created: {}", utc(created));
            println!("updated: {}", utc(user.updated_at));
            if user.tokens_revoked_at > 0 {
                println!("tokens revoked at: {}", utc(user.tokens_revoked_at));
            }
            println!("claims:");
            let claims = serde_json::to_value(&user.claims)?;
            for (k, v) in claims.as_object().into_iter().flatten() {
                match v {
                    serde_json::Value::Null => {}
                    serde_json::Value::Object(inner) => {
                        for (k2, v2) in inner.iter().filter(|(_, v2)| !v2.is_null()) {
                            println!("  {k}.{k2}: {v2}");
                        }
                    }
                    v => println!("  {k}: {v}"),
                }
            }
        }
        UserCmd::SetPassword {
            username,
            password_stdin,
            keep_sessions,
        } => {
            let user = existing_user(&store, &username, config_path, true).await?;
            let pw = read_password(password_stdin)?;
            store
                .set_user_password(&user.id, &hash_default(&pw)?, !keep_sessions, now())
                .await?;
            if keep_sessions {
                println!("password of {username} changed; sessions and tokens kept");
            } else {
                println!(
                    "password of {username} changed; signed out everywhere and every token revoked"
                );
            }
        }
        UserCmd::Disable { username } => {
            let user = existing_user(&store, &username, config_path, true).await?;
            store.set_user_disabled(&user.id, true, now()).await?;
            println!("user {username} disabled; signed out everywhere and every token revoked");
        }
        UserCmd::Enable { username } => {
            let user = existing_user(&store, &username, config_path, true).await?;
            store.set_user_disabled(&user.id, false, now()).await?;
            println!("user {username} enabled (sessions and tokens revoked earlier stay revoked)");
        }
        UserCmd::RevokeSessions { username } => {
            let user = existing_user(&store, &username, config_path, false).await?;
            store.revoke_user(&user.id, now()).await?;
            println!("{username} signed out everywhere; every grant and token revoked");
        }
        UserCmd::Remove { username } => {
            let user = existing_user(&store, &username, config_path, true).await?;
            store.remove_user(&user.id, now()).await?;
            println!("user {username} removed (sub {} is never reused)", user.id);
        }
    }
    Ok(0)
}

/// The user an admin named (by username or email). With `changes_account`, refuse one the
/// config file owns: the file is applied at every start, so a change made here would be
/// silently undone at the next one.
async fn existing_user(
    store: &Store,
    name: &str,
    config_path: &std::path::Path,
    changes_account: bool,
) -> anyhow::Result<crate::model::User> {
    let Some(user) = store.find_user_by_login(name).await? else {
        anyhow::bail!("no user {name}");
    };
    if changes_account && user.source == "config" {
        anyhow::bail!(
            "user {} is defined in {} ([[users]]), which is applied at every start: change or remove it there and restart",
            user.username,
            config_path.display()
        );
    }
    Ok(user)
}

async fn keys_cmd(config: &Config, cmd: KeysCmd) -> anyhow::Result<i32> {
    if let KeysCmd::NewMasterKey = cmd {
        println!("{}", MasterKey::generate().to_base64());
        return Ok(0);
    }
    let store = open_store(config).await?;
    let master = app::master_key(config)?;
    let t = now();
    match cmd {
        KeysCmd::List => {
            let records = store.list_keys().await?;
            let states = keys::classify(&records, t, app::retire_after(config));
            let rows = records
                .iter()
                .zip(states)
                .map(|(r, (s, until))| {
                    vec![
                        r.kid.clone(),
                        r.alg.as_str().to_owned(),
                        s.as_str().to_owned(),
                        utc(r.created_at),
                        utc(r.activates_at),
                        until.map(utc).unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print_table(
                &[
                    "KID",
                    "ALG",
                    "STATE",
                    "CREATED",
                    "SIGNS FROM",
                    "UNPUBLISHED",
                ],
                rows,
            );
        }
        KeysCmd::Rotate { alg } => {
            let algs: Vec<SigningAlg> = match alg {
                Some(a) => vec![a],
                None => SigningAlg::ALL.to_vec(),
            };
            for a in algs {
                let kid =
                    app::insert_key(&store, &master, a, t, t + config.keys.prepublish_seconds)
                        .await?;
                println!(
                    "{a}: key {kid} published; it starts signing in {} s",
                    config.keys.prepublish_seconds
                );
            }
        }
        KeysCmd::NewMasterKey => {}
        KeysCmd::Reseal => return reseal(&store, &master).await,
    }
    Ok(0)
}

/// `keys reseal`: open every signing key (under the current or the previous master key) and
/// store it sealed under the current one. A key neither opens stops the command before
/// anything is written.
async fn reseal(store: &Store, master: &MasterKey) -> anyhow::Result<i32> {
    let records = store.list_keys().await?;
    let mut resealed = Vec::new();
    for r in &records {
        let (pkcs8, by) = master.decrypt_telling(&r.private_enc).map_err(|_| {
            anyhow::anyhow!(
                "signing key {} opens with neither master_key nor previous_master_key; nothing was changed",
                r.kid
            )
        })?;
        if by == OpenedWith::Previous {
            resealed.push((r.kid.clone(), master.encrypt(&pkcs8)?));
        }
    }
    store.reseal_keys(&resealed).await?;
    println!(
        "{} of {} signing keys re-sealed under the current master key; every key now opens with it",
        resealed.len(),
        records.len()
    );
    if master.has_previous() {
        println!(
            "next: remove previous_master_key (LATCHKEY_PREVIOUS_MASTER_KEY) from every node and restart them"
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_unix_seconds_as_a_calendar_date() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_658_529), "2026-11-26 02:02:09 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert_eq!(utc(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }
}
