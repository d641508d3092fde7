//! `client`: clients registered outside the config file.

use std::path::Path;

use clap::Subcommand;

use super::open_store;
use crate::admin::{Admin, AdminError, ClientChanges, NewClient};
use crate::clock::Clock;
use crate::config::Config;
use crate::oauth::types::GrantType;

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
        /// Every sign-in for this client needs a second factor (an authenticator app).
        #[arg(long)]
        require_mfa: bool,
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

pub(super) async fn run(
    config: &Config,
    config_path: &Path,
    cmd: ClientCmd,
) -> anyhow::Result<i32> {
    let store = open_store(config).await?;
    let admin = Admin::new(&store, config, config_path, Clock::System);
    match execute(&admin, cmd).await {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast::<AdminError>() {
            // The validator's problems, then what did not happen; exit 1 without "error:".
            Ok(AdminError::InvalidClient {
                client_id,
                action,
                problems,
            }) => {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!("client {client_id} not {action}");
                Ok(1)
            }
            // The service names what can change; the CLI names its options.
            Ok(AdminError::NothingToChange) => {
                anyhow::bail!("nothing to change: give --name, --redirect-uri or --scope")
            }
            Ok(e) => Err(e.into()),
            Err(e) => Err(e),
        },
    }
}

async fn execute(admin: &Admin<'_>, cmd: ClientCmd) -> anyhow::Result<()> {
    match cmd {
        ClientCmd::Add {
            client_id,
            name,
            redirect_uris,
            grant_types,
            scopes,
            public,
            skip_consent,
            require_mfa,
            introspection,
            backchannel_logout_uri,
            backchannel_logout_session_required,
        } => {
            let draft = admin.draft_client(NewClient {
                client_id,
                name,
                redirect_uris,
                grant_types,
                scopes,
                public,
                skip_consent,
                require_mfa,
                introspection,
                backchannel_logout_uri,
                backchannel_logout_session_required,
            })?;
            for p in &draft.warnings {
                eprintln!("{p}");
            }
            let registered = admin.register_client(draft).await?;
            println!("client {} registered", registered.client_id);
            if let Some(s) = registered.secret {
                println!("client_secret: {s}\n(shown once; only its hash is stored)");
            }
        }
        ClientCmd::List => {
            for c in admin.clients().await? {
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
            let c = admin.client(&client_id).await?;
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
            admin.remove_client(&client_id).await?;
            println!("client {client_id} removed");
            println!("{}", admin.propagation_note());
        }
        ClientCmd::RotateSecret { client_id } => {
            let s = admin.rotate_client_secret(&client_id).await?;
            println!("client_secret: {s}\n(shown once; only its hash is stored)");
            println!("{}", admin.propagation_note());
        }
        ClientCmd::Disable { client_id } => {
            admin.set_client_enabled(&client_id, false).await?;
            println!("client {client_id} disabled");
            println!("{}", admin.propagation_note());
        }
        ClientCmd::Enable { client_id } => {
            admin.set_client_enabled(&client_id, true).await?;
            println!("client {client_id} enabled");
        }
        ClientCmd::Update {
            client_id,
            name,
            redirect_uris,
            scopes,
        } => {
            let warnings = admin
                .update_client(
                    &client_id,
                    ClientChanges {
                        name,
                        redirect_uris,
                        scopes,
                    },
                )
                .await?;
            for p in &warnings {
                eprintln!("{p}");
            }
            println!("client {client_id} updated");
            println!("{}", admin.propagation_note());
        }
    }
    Ok(())
}
