//! `keys`: signing keys and the master key that seals them.

use std::path::Path;

use clap::Subcommand;

use super::open_store;
use super::output::{print_table, utc};
use crate::admin::Admin;
use crate::app;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::aead::MasterKey;
use crate::oauth::types::SigningAlg;

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

pub(super) async fn run(config: &Config, config_path: &Path, cmd: KeysCmd) -> anyhow::Result<i32> {
    if let KeysCmd::NewMasterKey = cmd {
        println!("{}", MasterKey::generate().to_base64());
        return Ok(0);
    }
    let store = open_store(config).await?;
    // Every other command needs the master key, `list` included: a missing one is said now.
    let master = app::master_key(config)?;
    let admin = Admin::new(&store, config, config_path, Clock::System);
    match cmd {
        KeysCmd::List => {
            let rows = admin
                .keys()
                .await?
                .into_iter()
                .map(|k| {
                    vec![
                        k.record.kid,
                        k.record.alg.as_str().to_owned(),
                        k.state.as_str().to_owned(),
                        utc(k.record.created_at),
                        utc(k.record.activates_at),
                        k.unpublished_at.map(utc).unwrap_or_else(|| "-".into()),
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
                let kid = admin.rotate_key(&master, a).await?;
                println!(
                    "{a}: key {kid} published; it starts signing in {} s",
                    config.keys.prepublish_seconds
                );
            }
        }
        KeysCmd::NewMasterKey => {}
        KeysCmd::Reseal => {
            let r = admin.reseal_keys(&master).await?;
            println!(
                "{} of {} signing keys and {} of {} authenticator-app secrets re-sealed under the current master key; every one now opens with it",
                r.resealed, r.total, r.secrets_resealed, r.secrets_total
            );
            if master.has_previous() {
                println!(
                    "next: remove previous_master_key (LATCHKEY_PREVIOUS_MASTER_KEY) from every node and restart them"
                );
            }
        }
    }
    Ok(0)
}
