//! The `latchkey` command line: the clap commands, one module per command group. The rules
//! for clients, users and keys live in the admin service ([`crate::admin`]); these modules
//! parse arguments, read secrets from the terminal or stdin, call it and print.

mod client;
mod config;
mod keys;
mod output;
mod serve;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use client::ClientCmd;
pub use config::ConfigCmd;
pub use keys::KeysCmd;
pub use output::utc;
pub use user::{ClaimArgs, UserCmd};

use crate::app;
use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;
use serve::listen;

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

/// The store a command works on, migrated first: a command may be the first to touch it.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    Ok(store)
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
            let served = app::serve(state, listener, async move {
                app::shutdown_signal().await;
                drop(stop);
            })
            .await;
            let metrics_served = match metrics {
                Some(m) => m.await.map_err(anyhow::Error::from).and_then(|r| r),
                None => Ok(()),
            };
            // Stopped whether serving ended well or not: nothing runs against the store after.
            background.shutdown().await;
            served?;
            metrics_served?;
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
            Ok(config::check(&path.unwrap_or(cli.config)))
        }
        Command::HashSecret { fast } => config::hash_secret(fast),
        Command::Client(cmd) => client::run(&load_config(&cli.config)?, &cli.config, cmd).await,
        Command::User(cmd) => user::run(&load_config(&cli.config)?, &cli.config, cmd).await,
        Command::Keys(cmd) => keys::run(&load_config(&cli.config)?, &cli.config, cmd).await,
    }
}
