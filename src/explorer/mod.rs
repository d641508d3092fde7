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
    let bytes = master.derive(&format!("latchkey explorer client secret {client_id}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
