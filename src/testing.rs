//! A real protocol core for unit tests: the SQLite store in a temporary folder, real signing
//! keys, the config clients and users below, and a fixed `now`. No HTTP server, no clock:
//! a test passes `NOW` (or `NOW + n`) into the core itself.

use std::sync::{Arc, OnceLock};

use crate::clock::Clock;
use crate::config::Config;
use crate::core::Core;
use crate::core::authorize::{self, AuthorizationRequest, Validated};
use crate::core::grants::{self, TokenContext};
use crate::core::tokens::TokenResponse;
use crate::crypto::secret::{self, SecretHash};
use crate::model::{Client, GrantData, Session, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::redirect::Delivery;

/// The moment every unit test happens at (2027-01-15), far from any real clock.
pub const NOW: i64 = 1_800_000_000;
pub const PASSWORD: &str = "correct horse battery";
pub const WEB_SECRET: &str = "web-secret-0123456789abcdefghijklmnopqrstuvwxyz";
pub const SERVICE_SECRET: &str = "service-secret-0123456789abcdefghijklmnopqrstuv";
pub const WEB_REDIRECT: &str = "http://localhost:3000/callback";
pub const SPA_REDIRECT: &str = "http://127.0.0.1/spa-callback";
/// RFC 7636 appendix B: a verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn password_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        crate::crypto::password::hash_default(PASSWORD).unwrap_or_else(|e| panic!("hash: {e}"))
    })
}

fn config_toml(dir: &str) -> String {
    format!(
        r#"
issuer = "https://id.example.test"
database_url = "sqlite://{dir}/latchkey.db?mode=rwc"
data_dir = "{dir}"
master_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

[login]
max_failures = 3
lockout_seconds = 60

[[clients]]
client_id = "web"
name = "Web App"
client_secret_hash = "{web}"
redirect_uris = ["{WEB_REDIRECT}"]
grant_types = ["authorization_code", "refresh_token"]
response_types = ["code"]
scopes = ["openid", "profile", "email", "offline_access"]

[[clients]]
client_id = "spa"
name = "SPA"
token_endpoint_auth_method = "none"
redirect_uris = ["{SPA_REDIRECT}"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "offline_access"]

[[clients]]
client_id = "service"
name = "Backend Service"
client_secret_hash = "{service}"
grant_types = ["client_credentials"]
scopes = ["api.read", "api.write"]
default_scopes = ["api.read"]
audiences = ["https://api.example.com"]

[[clients]]
client_id = "legacy"
name = "Legacy App"
client_secret_hash = "{service}"
grant_types = ["password", "refresh_token"]
scopes = ["openid", "profile", "email", "offline_access"]

[[clients]]
client_id = "implicit"
name = "Implicit App"
redirect_uris = ["http://localhost:3000/implicit"]
grant_types = ["implicit"]
response_types = ["id_token", "id_token token"]
scopes = ["openid", "profile", "email"]

[[clients]]
client_id = "tv"
name = "Living Room TV"
token_endpoint_auth_method = "none"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
scopes = ["openid", "profile", "offline_access"]
default_scopes = ["openid", "profile"]

[[users]]
username = "alice"
password_hash = "{pw}"
[users.claims]
name = "Alice Example"
email = "alice@example.com"
email_verified = true

[[users]]
username = "bob"
password_hash = "{pw}"
disabled = true
"#,
        web = SecretHash::fast(WEB_SECRET).encode(),
        service = SecretHash::fast(SERVICE_SECRET).encode(),
        pw = password_hash(),
    )
}

/// One test's core and its store. The folder lives as long as the fixture.
pub struct Fixture {
    pub core: Arc<Core>,
    /// The whole state, for what runs beside the protocol (background tasks).
    pub state: crate::state::AppState,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::with(|_| {}).await
    }

    /// A fixture whose config `tweak` adjusts first (a lifetime, a limit).
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Fixture {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let text = config_toml(&dir.path().display().to_string());
        let (mut config, _) =
            Config::from_toml(&text, &[]).unwrap_or_else(|e| panic!("test config: {e:?}"));
        tweak(&mut config);
        let state = crate::app::build_state(config, Clock::manual(NOW))
            .await
            .unwrap_or_else(|e| panic!("core: {e}"));
        Fixture {
            core: state.core.clone(),
            state,
            _dir: dir,
        }
    }

    pub async fn client(&self, id: &str) -> Arc<Client> {
        match self.core.clients.get(id).await {
            Ok(Some(c)) => c,
            other => panic!("client {id}: {other:?}"),
        }
    }

    pub async fn user(&self, login: &str) -> User {
        match self.core.store.find_user_by_login(login).await {
            Ok(Some(u)) => u,
            other => panic!("user {login}: {other:?}"),
        }
    }

    /// A browser session for `user`, signed in with a password at `at`.
    pub async fn session(&self, user: &User, at: i64) -> Session {
        let s = Session {
            id_hash: secret::hash_token(&secret::new_token()),
            sid: secret::random_token(16),
            user_id: user.id.clone(),
            auth_time: at,
            amr: vec!["pwd".into()],
            created_at: at,
            last_seen_at: at,
            expires_at: at + 3600,
            mfa_at: None,
            ip: None,
            user_agent: None,
        };
        self.core
            .store
            .insert_session(&s)
            .await
            .unwrap_or_else(|e| panic!("session: {e}"));
        s
    }

    /// A grant made in `session` for `scope`.
    pub fn grant(session: &Session, scope: &str) -> GrantData {
        let scope = crate::oauth::types::ScopeSet::parse(scope)
            .unwrap_or_else(|e| panic!("scope {scope}: {e}"));
        GrantData::from_session(session, &scope, None, None)
    }
}

impl Fixture {
    /// An authorization request (`client_id=...&...`) that validation accepts.
    pub async fn request(&self, form: &str) -> (AuthorizationRequest, Arc<Client>) {
        match authorize::validate(&self.core, &params(form)).await {
            Ok(Validated::Ok(req, client)) => (req, client),
            Ok(Validated::RedirectError(d)) => panic!("{form}: refused with {d:?}"),
            Err(e) => panic!("{form}: error page {e:?}"),
        }
    }

    /// The code `core::authorize::issue` delivers at `at` for the request `form`, made in
    /// `session` (as after the user consented).
    pub async fn code(&self, session: &Session, form: &str, at: i64) -> String {
        let (req, client) = self.request(form).await;
        let user = match self.core.store.get_user(&session.user_id).await {
            Ok(Some(u)) => u,
            other => panic!("user of the session: {other:?}"),
        };
        let d = authorize::issue(&self.core, &req, &client, session, &user, at)
            .await
            .unwrap_or_else(|e| panic!("issue: {e:?}"));
        delivered(&d, "code").unwrap_or_else(|| panic!("no code in {d:?}"))
    }

    /// A token request (`grant_type=...&...`) by client `client_id` at `at`.
    pub async fn token(&self, client_id: &str, form: &str, at: i64) -> OAuthResult<TokenResponse> {
        let client = self.client(client_id).await;
        grants::handle(
            &self.core,
            &client,
            &params(form),
            &TokenContext::default(),
            at,
        )
        .await
        .map(|(_, r)| r)
    }

    /// The tokens the `web` client gets at `at` for a code made in `session` for `scope`
    /// (`+`-separated, as in a form).
    pub async fn web_tokens(&self, session: &Session, scope: &str, at: i64) -> TokenResponse {
        let code = self
            .code(
                session,
                &format!(
                    "client_id=web&response_type=code&redirect_uri={WEB_REDIRECT}&scope={scope}"
                ),
                at,
            )
            .await;
        self.token(
            "web",
            &format!("grant_type=authorization_code&code={code}&redirect_uri={WEB_REDIRECT}"),
            at,
        )
        .await
        .unwrap_or_else(|e| panic!("{scope}: {e:?}"))
    }

    /// Client `id` as the store and the cache now have it, `enabled` or not.
    pub async fn set_client_enabled(&self, id: &str, enabled: bool) {
        let mut c = (*self.client(id).await).clone();
        c.enabled = enabled;
        self.core
            .store
            .upsert_client(&c, NOW)
            .await
            .unwrap_or_else(|e| panic!("upsert {id}: {e}"));
        self.core
            .clients
            .from_store(id)
            .await
            .unwrap_or_else(|e| panic!("reload {id}: {e}"));
    }

    /// The error of a token request that must be refused.
    pub async fn token_error(&self, client_id: &str, form: &str, at: i64) -> OAuthError {
        match self.token(client_id, form, at).await {
            Ok(r) => panic!("{form}: accepted, {r:?}"),
            Err(e) => e,
        }
    }
}

/// Parameter `name` of what the authorization endpoint sends back (query, fragment or form).
pub fn delivered(d: &Delivery, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = match d {
        Delivery::FormPost { fields, .. } => fields.clone(),
        Delivery::Redirect(url) => {
            let tail = url.split_once(['?', '#']).map_or("", |(_, t)| t);
            url::form_urlencoded::parse(tail.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }
    };
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Form parameters from `a=b&c=d` text, as the HTTP layer would hand them over.
pub fn params(form: &str) -> Params {
    Params::parse(
        form.as_bytes(),
        crate::oauth::params::ParamLimits::default(),
    )
    .unwrap_or_else(|e| panic!("params {form}: {e:?}"))
}

/// The payload of a JWT we issued, unverified (the issuer's own tests check signatures).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    jwt_part(token, 1)
}

/// The JOSE header of a JWT (`alg`, `typ`, `kid`).
pub fn jwt_header(token: &str) -> serde_json::Value {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, n: usize) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(n).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("jwt payload: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("jwt json: {e}"))
}
