//! `config check` and `hash-secret`: the config file and the secrets that go into it.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::unreadable;
use crate::config::{Config, Severity};
use crate::crypto::password::hash_default;
use crate::crypto::secret::{MIN_FAST_SECRET_LEN, SecretHash};

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate a config file: exit 0, or print every problem.
    Check {
        /// The file to check; default the --config file.
        path: Option<PathBuf>,
    },
}

/// `config check`: exit 0 with the warnings, or 1 with every problem.
pub(super) fn check(path: &Path) -> i32 {
    match Config::load(path) {
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
            0
        }
        Err(e) => {
            if let Some(message) = unreadable(path, &e) {
                eprintln!("error: {message}");
                return 1;
            }
            eprint!("{e}");
            let errors = e
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            eprintln!("{errors} error(s)");
            1
        }
    }
}

/// `hash-secret`: print the hash of a secret for the config file.
pub(super) fn hash_secret(fast: bool) -> anyhow::Result<i32> {
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
