//! `user`: accounts, their passwords and sessions.

use std::io::{IsTerminal, Read};
use std::path::Path;

use clap::{Args, Subcommand};

use super::open_store;
use super::output::utc;
use crate::admin::Admin;
use crate::clock::Clock;
use crate::config::Config;
use crate::model::{Address, UserClaims};

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
    /// Turn two-step sign-in off for a user who lost their authenticator app: removes every
    /// second factor and recovery code, so the password alone signs in and a new app can be
    /// set up on the account page. Sessions stay.
    ResetMfa {
        /// The user's username or email.
        username: String,
    },
}

/// A password from stdin (one line) or asked for twice at the terminal, without echo. Its
/// length is the admin service's to judge.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok(s.trim_end_matches(['\r', '\n']).to_owned());
    }
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
    Ok(a)
}

pub(super) async fn run(config: &Config, config_path: &Path, cmd: UserCmd) -> anyhow::Result<i32> {
    let store = open_store(config).await?;
    let admin = Admin::new(&store, config, config_path, Clock::System);
    match cmd {
        UserCmd::Add {
            username,
            password_stdin,
            claims,
        } => {
            let pw = read_password(password_stdin)?;
            let sub = admin
                .add_user(&username, &pw, &claims.into_claims())
                .await?;
            println!("user {username} added (sub {sub})");
        }
        UserCmd::List => {
            for u in admin.users().await? {
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
            let details = admin.user_details(&username).await?;
            let user = details.user;
            println!("username: {}", user.username);
            println!("sub: {}", user.id);
            println!(
                "state: {}",
                if user.disabled { "disabled" } else { "active" }
            );
            println!("source: {}", user.source);
            println!("created: {}", utc(details.created_at));
            println!("updated: {}", utc(user.updated_at));
            if user.tokens_revoked_at > 0 {
                println!("tokens revoked at: {}", utc(user.tokens_revoked_at));
            }
            if details.factors.is_empty() {
                println!("second factors: none");
            } else {
                println!("second factors:");
                for f in &details.factors {
                    let used = f.last_used_at.map_or_else(|| "never".to_owned(), utc);
                    println!(
                        "  {} ({}): added {}, last used {}",
                        f.name,
                        f.kind.as_str(),
                        utc(f.confirmed_at),
                        used
                    );
                }
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
            // Refuse a user the config file owns before asking for a password.
            admin.user_to_change(&username).await?;
            let pw = read_password(password_stdin)?;
            admin.set_password(&username, &pw, keep_sessions).await?;
            if keep_sessions {
                println!("password of {username} changed; sessions and tokens kept");
            } else {
                println!(
                    "password of {username} changed; signed out everywhere and every token revoked"
                );
            }
        }
        UserCmd::Disable { username } => {
            admin.set_user_disabled(&username, true).await?;
            println!("user {username} disabled; signed out everywhere and every token revoked");
        }
        UserCmd::Enable { username } => {
            admin.set_user_disabled(&username, false).await?;
            println!("user {username} enabled (sessions and tokens revoked earlier stay revoked)");
        }
        UserCmd::RevokeSessions { username } => {
            admin.revoke_sessions(&username).await?;
            println!("{username} signed out everywhere; every grant and token revoked");
        }
        UserCmd::Remove { username } => {
            let user = admin.remove_user(&username).await?;
            println!("user {username} removed (sub {} is never reused)", user.id);
        }
        UserCmd::ResetMfa { username } => {
            let (user, removed) = admin.reset_mfa(&username).await?;
            match removed {
                0 => println!("{} has no second factor; nothing to reset", user.username),
                n => println!(
                    "two-step sign-in reset for {}: {n} factor{} and every recovery code removed; the password alone signs in now",
                    user.username,
                    if n == 1 { "" } else { "s" }
                ),
            }
        }
    }
    Ok(0)
}
