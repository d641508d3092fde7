//! The flow explorer (`/explore`, issue 20): a learner picks a flow and watches this server
//! run it for real. The explorer is a client of this server like any other: its own clients
//! (`explorer-*`, registered while `[explorer] enabled`), talking HTTP to the public
//! endpoints at the issuer's address, so what it shows is what a real client sees. Each run
//! belongs to one browser (a cookie) and lives in the store, so any node can continue it.
//!
//! - `run`: a run's record (the exchanges, the secrets the client keeps), what the pages show;
//! - `client`: the HTTP client that records every exchange;
//! - `flows`: each flow's steps, and the "break it" experiments;
//! - `jwt`: tokens decoded and checked against the JWKS; `diagram`: the sequence diagram;
//! - `learn`: the explanations, parameter by parameter, with their spec sections.

pub mod client;
pub mod diagram;
pub mod flows;
pub mod jwt;
pub mod learn;
pub mod run;

use crate::config::{ClientConfig, Config};
use crate::crypto::aead::MasterKey;
use crate::crypto::secret::SecretHash;

/// How many explorer requests may be in flight at once, server-wide: each holds one of this
/// server's connections while it calls this server on another, so without a bound a flood
/// of them could take every connection and leave the calls nothing to be served by.
pub const MAX_IN_FLIGHT: usize = 8;

/// What the explorer's pages share on one node: one HTTP client (its connections reused),
/// the bound on requests in flight, the key runs are sealed under, and its clients' secrets.
pub struct Explorer {
    pub http: client::Recorder,
    /// The JWKS as fetched from /jwks.json, and when: fetched again after a minute.
    jwks: tokio::sync::Mutex<Option<(i64, serde_json::Value)>>,
    pub busy: tokio::sync::Semaphore,
    /// Runs hold the tokens a learner got: sealed in the store (a subkey of the master key,
    /// bound to the run's key), so a copy of the database alone does not give them away.
    pub sealing: MasterKey,
    pub web_secret: String,
    pub machine_secret: String,
}

impl Explorer {
    pub fn new(config: &Config, master: &MasterKey) -> anyhow::Result<Self> {
        Ok(Explorer {
            http: client::Recorder::new(config.base_url())?,
            jwks: tokio::sync::Mutex::new(None),
            busy: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            sealing: master.subkey("latchkey explorer runs"),
            web_secret: secret(master, WEB),
            machine_secret: secret(master, MACHINE),
        })
    }

    /// This server's JWKS as any client fetches it (`/jwks.json`), to check the tokens'
    /// signatures on the page; kept for a minute, so pages do not each fetch it.
    pub async fn jwks(&self, now: i64) -> serde_json::Value {
        let mut cached = self.jwks.lock().await;
        if let Some((at, jwks)) = cached.as_ref()
            && now - at < 60
        {
            return jwks.clone();
        }
        let (_, _, answer) = self.http.get("/jwks.json", None).await;
        let jwks = answer.json.unwrap_or_default();
        if answer.status == 200 {
            *cached = Some((now, jwks.clone()));
        }
        jwks
    }

    pub fn ctx<'a>(&'a self, issuer: &'a str) -> flows::Ctx<'a> {
        flows::Ctx {
            http: &self.http,
            issuer,
            web_secret: &self.web_secret,
            machine_secret: &self.machine_secret,
        }
    }
}

impl std::fmt::Debug for Explorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Explorer { .. }")
    }
}

/// A confidential web app: the authorization code flow with its secret, hybrid, implicit
/// with form_post, and the password grant.
pub const WEB: &str = "explorer-web";
/// A public app (a single-page or native app): the code flow with PKCE, no secret.
pub const SPA: &str = "explorer-spa";
/// A backend service: client credentials.
pub const MACHINE: &str = "explorer-machine";
/// A TV or CLI: the device flow.
pub const TV: &str = "explorer-tv";

/// Where the explorer's clients are sent back to.
pub const CALLBACK: &str = "/explore/callback";
/// Where the explorer's clients land after logout.
pub const SIGNED_OUT: &str = "/explore/signed-out";

/// The secret of one of the explorer's confidential clients: derived from the master key, so
/// every node of a deployment has the same one without storing it. The explorer shows it to
/// whoever runs a flow (it is how they see Basic authentication work), so these clients can
/// only ever reach the explorer's own pages.
pub fn secret(master: &MasterKey, client_id: &str) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    // An HMAC under a subkey, not the subkey itself: the value is shown to learners, and a
    // published `derive` output would be a SHA-256 of the key and a known label.
    let key = master.derive("latchkey explorer client secrets");
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(client_id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Add the explorer's clients to the config's, when the explorer is on: registered at
/// start like any client of the file (and disabled when it is turned off again).
pub fn register_clients(config: &mut Config, master: &MasterKey) -> anyhow::Result<()> {
    if !config.explorer.enabled {
        return Ok(());
    }
    let issuer = config.base_url().to_owned();
    let hash = |id: &str| SecretHash::fast(&secret(master, id)).encode();
    let text = format!(
        r#"
[[clients]]
client_id = "{WEB}"
name = "Flow explorer: web app"
client_secret_hash = "{web_hash}"
token_endpoint_auth_method = "client_secret_basic"
grant_types = ["authorization_code", "refresh_token", "implicit", "password"]
response_types = ["code", "code id_token", "id_token", "id_token token"]
redirect_uris = ["{issuer}{CALLBACK}"]
post_logout_redirect_uris = ["{issuer}{SIGNED_OUT}"]
scopes = ["openid", "profile", "email", "offline_access"]
require_pkce = true

[[clients]]
client_id = "{SPA}"
name = "Flow explorer: single-page app"
token_endpoint_auth_method = "none"
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["{issuer}{CALLBACK}"]
post_logout_redirect_uris = ["{issuer}{SIGNED_OUT}"]
scopes = ["openid", "profile", "email", "offline_access"]
require_pkce = true

[[clients]]
client_id = "{MACHINE}"
name = "Flow explorer: backend service"
client_secret_hash = "{machine_hash}"
token_endpoint_auth_method = "client_secret_basic"
grant_types = ["client_credentials"]

[[clients]]
client_id = "{TV}"
name = "Flow explorer: TV app"
token_endpoint_auth_method = "none"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
scopes = ["openid", "profile", "offline_access"]
"#,
        web_hash = hash(WEB),
        machine_hash = hash(MACHINE),
    );
    #[derive(serde::Deserialize)]
    struct Clients {
        clients: Vec<ClientConfig>,
    }
    let parsed: Clients = toml::from_str(&text)?;
    let mut problems = Vec::new();
    for (i, c) in parsed.clients.iter().enumerate() {
        crate::config::validate_client(c, &format!("explorer client {i}"), &[], &mut problems);
    }
    if let Some(p) = problems
        .iter()
        .find(|p| p.severity == crate::config::Severity::Error)
    {
        anyhow::bail!("the explorer's own clients are not valid: {p:?}");
    }
    for c in parsed.clients {
        if config.clients.iter().any(|k| k.client_id == c.client_id) {
            anyhow::bail!(
                "[explorer] enabled, but the config has a client named {} already: the explorer's clients are its own",
                c.client_id
            );
        }
        config.clients.push(c);
    }
    Ok(())
}
