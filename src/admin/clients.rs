//! Clients registered outside the config file: CLI clients get a generated secret stored as a
//! fast hash and always require PKCE; the ones the config file owns are not changed here.

use super::{Admin, AdminError, AdminResult};
use crate::app;
use crate::config::{ClientConfig, Problem, Severity, validate_client};
use crate::crypto::secret::{SecretHash, new_token};
use crate::model::{Client, Source};
use crate::oauth::types::{GrantType, TokenEndpointAuthMethod};

/// A client to register.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub client_id: String,
    /// Display name; default the client_id.
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Empty: authorization_code and refresh_token.
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    /// No secret; PKCE required (as for every client registered here).
    pub public: bool,
    pub skip_consent: bool,
    pub require_mfa: bool,
    pub introspection: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

/// A registration the validator accepted, not yet stored.
pub struct ClientDraft {
    entry: ClientConfig,
    secret: Option<String>,
    /// What the validator warned about.
    pub warnings: Vec<Problem>,
}

/// A stored registration.
#[derive(Debug)]
pub struct Registered {
    pub client_id: String,
    /// A confidential client's secret, in the clear: shown once, only its hash is stored.
    pub secret: Option<String>,
}

/// What `update_client` replaces; `None` or empty leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

impl ClientChanges {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.redirect_uris.is_empty() && self.scopes.is_empty()
    }
}

/// The config validator's verdict: the warnings, or every problem when one is an error.
fn judge(entry: &ClientConfig, action: &'static str) -> AdminResult<Vec<Problem>> {
    let mut problems = Vec::new();
    validate_client(
        entry,
        &format!("client {}", entry.client_id),
        &[],
        &mut problems,
    );
    if problems.iter().any(|p| p.severity == Severity::Error) {
        return Err(AdminError::InvalidClient {
            client_id: entry.client_id.clone(),
            action,
            problems,
        });
    }
    Ok(problems)
}

impl Admin<'_> {
    /// Check a registration as the config file's validator would (the CLI must not register
    /// what the config file would refuse) and generate its secret. Nothing is stored yet, so
    /// the caller can show the warnings before `register_client`.
    pub fn draft_client(&self, new: NewClient) -> AdminResult<ClientDraft> {
        let secret = (!new.public).then(new_token);
        let method = if new.public {
            TokenEndpointAuthMethod::None
        } else {
            TokenEndpointAuthMethod::ClientSecretBasic
        };
        let entry = ClientConfig {
            name: new.name.unwrap_or_else(|| new.client_id.clone()),
            client_id: new.client_id,
            // A generated secret has enough entropy for a fast hash, which keeps client
            // authentication off the argon2 pool.
            client_secret_hash: secret.as_deref().map(SecretHash::fast),
            secret_env: None,
            client_secret: None,
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: Vec::new(),
            grant_types: if new.grant_types.is_empty() {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            } else {
                new.grant_types
            },
            response_types: Vec::new(),
            scopes: new.scopes,
            default_scopes: Vec::new(),
            audiences: Vec::new(),
            allowed_origins: Vec::new(),
            token_endpoint_auth_method: Some(method),
            require_pkce: true,
            allow_plain_pkce: false,
            skip_consent: new.skip_consent,
            require_mfa: new.require_mfa,
            always_issue_refresh_token: false,
            id_token_scope_claims: None,
            introspection: new.introspection,
            access_token_ttl: None,
            refresh_token_ttl: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
            backchannel_logout_uri: new.backchannel_logout_uri,
            backchannel_logout_session_required: new.backchannel_logout_session_required,
            env_secret: None,
        };
        let warnings = judge(&entry, "registered")?;
        Ok(ClientDraft {
            entry,
            secret,
            warnings,
        })
    }

    /// Store a drafted client, unless its client_id is taken.
    pub async fn register_client(&self, draft: ClientDraft) -> AdminResult<Registered> {
        let client_id = draft.entry.client_id.clone();
        if self.store.get_client(&client_id).await?.is_some() {
            return Err(AdminError::ClientExists(client_id));
        }
        let client = app::client_from_config(&draft.entry, Source::Cli)?;
        self.store.upsert_client(&client, self.now()).await?;
        Ok(Registered {
            client_id,
            secret: draft.secret,
        })
    }

    /// Every client, config and CLI, by client_id.
    pub async fn clients(&self) -> AdminResult<Vec<Client>> {
        Ok(self.store.list_clients().await?)
    }

    pub async fn client(&self, client_id: &str) -> AdminResult<Client> {
        self.store
            .get_client(client_id)
            .await?
            .ok_or_else(|| AdminError::NoClient(client_id.to_owned()))
    }

    /// A client registered here that an admin named; one the config file owns is refused.
    async fn client_to_change(&self, client_id: &str) -> AdminResult<Client> {
        let c = self.client(client_id).await?;
        if c.source == Source::Config {
            return Err(AdminError::ConfigClient {
                client_id: client_id.to_owned(),
                config_path: self.config_path.to_owned(),
            });
        }
        Ok(c)
    }

    /// Delete a client. One the config file still lists is refused: the next start would
    /// register it again. One taken out of the file stays in the store, disabled, and this is
    /// how it goes (and its id becomes free).
    pub async fn remove_client(&self, client_id: &str) -> AdminResult<()> {
        if self.config.clients.iter().any(|c| c.client_id == client_id) {
            return Err(AdminError::ConfigClient {
                client_id: client_id.to_owned(),
                config_path: self.config_path.to_owned(),
            });
        }
        if !self.store.delete_client(client_id).await? {
            return Err(AdminError::NoClient(client_id.to_owned()));
        }
        Ok(())
    }

    /// A new secret for a confidential CLI client, returned in the clear; the old one stops
    /// working at once.
    pub async fn rotate_client_secret(&self, client_id: &str) -> AdminResult<String> {
        let c = self.client(client_id).await?;
        if c.source == Source::Config {
            return Err(AdminError::ConfigClientSecret(client_id.to_owned()));
        }
        if c.is_public() {
            return Err(AdminError::PublicClient(client_id.to_owned()));
        }
        let s = new_token();
        self.store
            .set_client_secret(client_id, &SecretHash::fast(&s), self.now())
            .await?;
        Ok(s)
    }

    /// Disable or enable a CLI client.
    pub async fn set_client_enabled(&self, client_id: &str, enabled: bool) -> AdminResult<()> {
        let mut c = self.client_to_change(client_id).await?;
        c.enabled = enabled;
        self.store.upsert_client(&c, self.now()).await?;
        Ok(())
    }

    /// Replace what `changes` gives, checked by the config's validator like a registration.
    /// Returns the validator's warnings.
    pub async fn update_client(
        &self,
        client_id: &str,
        changes: ClientChanges,
    ) -> AdminResult<Vec<Problem>> {
        let mut c = self.client_to_change(client_id).await?;
        if changes.is_empty() {
            return Err(AdminError::NothingToChange);
        }
        if let Some(n) = changes.name {
            c.settings.name = n;
        }
        if !changes.redirect_uris.is_empty() {
            c.settings.redirect_uris = changes.redirect_uris;
        }
        if !changes.scopes.is_empty() {
            c.settings.scopes = changes.scopes;
        }
        let warnings = judge(&client_entry(&c), "updated")?;
        self.store.upsert_client(&c, self.now()).await?;
        Ok(warnings)
    }
}

/// A stored client in the shape of a [[clients]] entry, for the config's validator.
fn client_entry(c: &Client) -> ClientConfig {
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
        require_mfa: s.require_mfa,
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
