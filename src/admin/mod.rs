//! The admin service: the rules for managing clients, users and signing keys, over the store.
//! The CLI parses arguments, reads secrets and prints; a future HTTP admin API can call the
//! same functions, so nothing here knows clap, a terminal or stdout.

mod clients;
mod keys;
mod users;

use std::path::{Path, PathBuf};

pub use clients::{ClientChanges, ClientDraft, NewClient, Registered};
pub use keys::{KeyStatus, Resealed};
pub use users::{MIN_PASSWORD_LEN, UserDetails};

use crate::clock::Clock;
use crate::config::{Config, Problem};
use crate::store::{Store, StoreError};

/// Why an admin operation was refused or failed. The messages are what the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no client {0}")]
    NoClient(String),
    #[error("client {0} already exists")]
    ClientExists(String),
    /// The config file is applied at every start, so a change made here would be undone at
    /// the next one.
    #[error(
        "client {client_id} is defined in {} ([[clients]]), which is applied at every start: change or remove it there and restart",
        config_path.display()
    )]
    ConfigClient {
        client_id: String,
        config_path: PathBuf,
    },
    /// A config client's secret is its `client_secret_hash` in the file.
    #[error("{0} comes from the config file: change client_secret_hash there")]
    ConfigClientSecret(String),
    #[error("{0} is a public client and has no secret")]
    PublicClient(String),
    /// The config's validator refused the client; `problems` holds everything it found
    /// (warnings too), `action` what did not happen ("registered", "updated").
    #[error("client {client_id} not {action}")]
    InvalidClient {
        client_id: String,
        action: &'static str,
        problems: Vec<Problem>,
    },
    /// An update that names no change.
    #[error("nothing to change: give a name, redirect URIs or scopes")]
    NothingToChange,
    #[error("no user {0}")]
    NoUser(String),
    #[error("user {0} already exists")]
    UserExists(String),
    /// Like [`AdminError::ConfigClient`], for `[[users]]`.
    #[error(
        "user {username} is defined in {} ([[users]]), which is applied at every start: change or remove it there and restart",
        config_path.display()
    )]
    ConfigUser {
        username: String,
        config_path: PathBuf,
    },
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters")]
    ShortPassword,
    /// `keys reseal` found a key that neither master key opens; nothing was written.
    #[error("{}", unopenable(kid, *resealed))]
    UnopenableKey { kid: String, resealed: usize },
    /// A second factor's secret that neither master key opens. The signing keys, and
    /// `resealed` secrets in earlier passes, were re-sealed.
    #[error(
        "the authenticator-app secret of second factor {factor} (user {user_id}) opens with neither master key; every signing key and {resealed} app secrets were re-sealed before it: reset that user's two-step sign-in (latchkey user reset-mfa) or restore the key it was sealed under, then run keys reseal again"
    )]
    UnopenableSecret {
        factor: String,
        user_id: String,
        resealed: usize,
    },
    /// Keys sealed under the previous master key kept appearing while they were re-sealed.
    #[error(
        "signing keys sealed under the previous master key were still being added after {0} passes: restart every node with the new master_key first, then run keys reseal again"
    )]
    KeysKeepChanging(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing, sealing or key generation failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn unopenable(kid: &str, resealed: usize) -> String {
    let changed = match resealed {
        0 => "nothing was changed".to_owned(),
        n => format!(
            "{n} keys found before it were already re-sealed under master_key, and they stay so"
        ),
    };
    format!("signing key {kid} opens with neither master_key nor previous_master_key; {changed}")
}

pub type AdminResult<T> = Result<T, AdminError>;

/// The admin service over one store and the config it runs with.
pub struct Admin<'a> {
    store: &'a Store,
    config: &'a Config,
    /// The file `config` was read from, named when refusing to change what it owns.
    config_path: &'a Path,
    clock: Clock,
}

impl<'a> Admin<'a> {
    pub fn new(store: &'a Store, config: &'a Config, config_path: &'a Path, clock: Clock) -> Self {
        Admin {
            store,
            config,
            config_path,
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Running nodes read clients from their cache (`core::clients`): when a change that
    /// shuts something out reaches them.
    pub fn propagation_note(&self) -> String {
        match self.config.cache.clients_seconds {
            0 => "running nodes apply this to their next request".into(),
            n if self.store.announces_client_changes() => format!(
                "running nodes reload their clients now (Postgres notification), at the latest within {n} s"
            ),
            n => format!(
                "running nodes stop accepting what this replaced within {n} s (cache.clients_seconds)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Admin, AdminError, ClientChanges, NewClient};
    use crate::clock::Clock;
    use crate::config::Severity;
    use crate::crypto::secret::SecretHash;
    use crate::model::{Source, UserClaims};
    use crate::oauth::types::GrantType;
    use crate::testing::{Fixture, NOW};

    const PATH: &str = "/etc/latchkey.toml";

    fn admin(f: &Fixture) -> Admin<'_> {
        Admin::new(
            &f.core.store,
            &f.core.config,
            Path::new(PATH),
            Clock::manual(NOW),
        )
    }

    /// A re-seal re-reads the keys until every one opens with the current key alone, and
    /// leaves alone a key that changed after it was read.
    #[tokio::test]
    async fn reseal_ends_only_when_every_key_opens_with_the_new_key() {
        use crate::crypto::aead::MasterKey;
        use crate::store::keys::Reseal;
        let f = Fixture::new().await;
        let old = f
            .core
            .config
            .master_key
            .clone()
            .unwrap_or_else(MasterKey::generate);
        let new = MasterKey::generate().with_previous(&old);
        let keys = f.core.store.list_keys().await.unwrap_or_default();
        assert!(!keys.is_empty());
        // A stale read: the row no longer holds what was read, so nothing is replaced.
        let stale = Reseal {
            id: keys[0].kid.clone(),
            was: "not what the row holds".into(),
            now: "x".into(),
        };
        assert_eq!(f.core.store.reseal_keys(&[stale]).await.ok(), Some(0));
        let done = admin(&f)
            .reseal_keys(&new)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((done.resealed, done.total), (keys.len(), keys.len()));
        let alone = MasterKey::from_base64(&new.to_base64()).unwrap_or_else(|()| panic!("key"));
        for k in f.core.store.list_keys().await.unwrap_or_default() {
            assert!(
                alone.decrypt(&k.private_enc).is_ok(),
                "{} still needs the old key",
                k.kid
            );
        }
        // Nothing left to do.
        let again = admin(&f)
            .reseal_keys(&new)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.resealed, 0);
    }

    fn svc() -> NewClient {
        NewClient {
            client_id: "svc".into(),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec!["api.read".into()],
            ..NewClient::default()
        }
    }

    #[tokio::test]
    async fn a_registered_client_gets_a_fast_secret_and_pkce() {
        let f = Fixture::new().await;
        let a = admin(&f);
        let draft = a.draft_client(svc()).unwrap_or_else(|e| panic!("{e}"));
        let r = a
            .register_client(draft)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let secret = r.secret.unwrap_or_else(|| panic!("no secret"));
        let c = a.client("svc").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.source, Source::Cli);
        assert!(c.settings.require_pkce);
        assert_eq!(
            c.secret_hash.map(|h| h.encode()),
            Some(SecretHash::fast(&secret).encode())
        );
        let again = a.draft_client(svc()).unwrap_or_else(|e| panic!("{e}"));
        let e = a.register_client(again).await.err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("client svc already exists")
        );
    }

    #[tokio::test]
    async fn the_validator_judges_a_registration_before_anything_is_stored() {
        let f = Fixture::new().await;
        let a = admin(&f);
        let bad = NewClient {
            grant_types: vec![GrantType::AuthorizationCode],
            ..svc()
        };
        match a.draft_client(bad) {
            Err(e @ AdminError::InvalidClient { .. }) => {
                assert_eq!(e.to_string(), "client svc not registered");
                let AdminError::InvalidClient { problems, .. } = e else {
                    unreachable!()
                };
                assert!(problems.iter().any(|p| p.severity == Severity::Error));
            }
            other => panic!("expected InvalidClient, got {:?}", other.err()),
        }
        assert!(matches!(
            a.client("svc").await,
            Err(AdminError::NoClient(_))
        ));
    }

    #[tokio::test]
    async fn config_clients_and_users_are_changed_in_the_file_only() {
        let f = Fixture::new().await;
        let a = admin(&f);
        let e = a.set_client_enabled("web", false).await.err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(
                "client web is defined in /etc/latchkey.toml ([[clients]]), which is applied at every start: change or remove it there and restart"
            )
        );
        let e = a.update_client("web", ClientChanges::default()).await.err();
        assert!(matches!(e, Some(AdminError::ConfigClient { .. })), "{e:?}");
        let e = a.remove_client("web").await.err();
        assert!(matches!(e, Some(AdminError::ConfigClient { .. })), "{e:?}");
        // A client taken out of the file stays in the store, disabled, with the file as its
        // source: removing it is how it goes, and its id is free again.
        let mut gone = (*f.client("web").await).clone();
        gone.id = "gone".into();
        gone.enabled = false;
        f.core
            .store
            .upsert_client(&gone, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(gone.source, Source::Config);
        a.remove_client("gone")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            a.client("gone").await.err(),
            Some(AdminError::NoClient(_))
        ));
        let e = a.rotate_client_secret("web").await.err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("web comes from the config file: change client_secret_hash there")
        );
        let e = a.remove_user("alice").await.err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(
                "user alice is defined in /etc/latchkey.toml ([[users]]), which is applied at every start: change or remove it there and restart"
            )
        );
        // Signing a config user out changes no account.
        a.revoke_sessions("alice")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn a_user_added_here_can_be_changed_and_removed() {
        let f = Fixture::new().await;
        let a = admin(&f);
        let claims = UserClaims::default();
        let e = a.add_user("carol", "short", &claims).await.err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("the password must be at least 8 characters")
        );
        let sub = a
            .add_user("carol", "long enough", &claims)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            a.add_user("carol", "long enough", &claims).await,
            Err(AdminError::UserExists(_))
        ));
        a.set_user_disabled("carol", true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let details = a
            .user_details("carol")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(details.user.disabled);
        assert_eq!(details.created_at, NOW);
        let removed = a
            .remove_user("carol")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(removed.id, sub);
        assert!(matches!(a.user("carol").await, Err(AdminError::NoUser(_))));
    }
}
