//! Configuration: one TOML file, then `LATCHKEY_*` environment overrides, parsed once.
//!
//! Every scalar field can be overridden from the environment: `LATCHKEY_ISSUER` sets
//! `issuer`, and a double underscore descends into a table, so `LATCHKEY_TOKENS__CODE_TTL`
//! sets `[tokens] code_ttl`. Values are parsed into their types as they are read
//! (`values`); `validate` then checks what no single value can get wrong. Every problem is
//! reported at once and the whole file is refused before anything is written to the store.
//!
//! - `sections`: the per-section settings and their defaults;
//! - `clients`: `[[clients]]` and `[[users]]` entries;
//! - `values`: the typed values and their parsers;
//! - `validate`: cross-field rules and the RFC 9700 warnings;
//! - `env`: the environment overrides;
//! - `problem`: problems, their lines, and the error a failed load returns.

mod clients;
mod env;
mod problem;
mod sections;
mod validate;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

pub use clients::{ClientConfig, EnvSecret, ScopeConfig, UserConfig};
pub use problem::{ConfigError, Problem, Severity};
pub use sections::*;
pub use validate::validate_client;
pub use values::{ConfigValue, Issuer, is_loopback};

use crate::crypto::aead::MasterKey;
use env::{env_overrides, env_value, set_path};
use problem::{Lines, error, named, put_back, remove_at, schema_message, span_of};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public base URL; the `iss` of every token (OIDC Discovery §3, RFC 8414 §2).
    #[serde(deserialize_with = "values::one")]
    pub issuer: Issuer,
    #[serde(default = "default_bind", deserialize_with = "values::bind")]
    pub bind: SocketAddr,
    #[serde(
        default = "default_database_url",
        deserialize_with = "values::database_url"
    )]
    pub database_url: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// base64 of 32 random bytes; encrypts signing keys at rest and keys CSRF tokens.
    /// Prefer `LATCHKEY_MASTER_KEY`. Generated into `data_dir` for the embedded SQLite store.
    #[serde(default, deserialize_with = "values::optional")]
    pub master_key: Option<MasterKey>,
    /// The master key being replaced, while a rotation is under way: what it sealed still
    /// opens, nothing new is sealed with it (README, "Rotating the master key"). Prefer
    /// `LATCHKEY_PREVIOUS_MASTER_KEY`.
    #[serde(default, deserialize_with = "values::optional")]
    pub previous_master_key: Option<MasterKey>,
    /// Load balancers / reverse proxies (IPs or CIDR networks) whose `X-Forwarded-For` is
    /// believed for the client address used by throttles and audit.
    #[serde(default, deserialize_with = "values::list")]
    pub trusted_proxies: Vec<IpNet>,
    #[serde(default)]
    pub tokens: TokenSettings,
    #[serde(default)]
    pub sessions: SessionSettings,
    #[serde(default)]
    pub keys: KeySettings,
    #[serde(default)]
    pub login: LoginSettings,
    #[serde(default)]
    pub mfa: MfaSettings,
    #[serde(default)]
    pub account: AccountSettings,
    #[serde(default)]
    pub explorer: ExplorerSettings,
    #[serde(default)]
    pub logout: LogoutSettings,
    #[serde(default)]
    pub backchannel_logout: BackchannelLogoutSettings,
    #[serde(default)]
    pub device: DeviceSettings,
    #[serde(default)]
    pub client_auth: ClientAuthSettings,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub janitor: JanitorSettings,
    #[serde(default)]
    pub cache: CacheSettings,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Descriptions of this deployment's own scopes, for consent and discovery.
    #[serde(default)]
    pub scopes: Vec<ScopeConfig>,
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_database_url() -> String {
    "sqlite://data/latchkey.db".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

impl Config {
    /// Read, overlay the environment, parse and validate. Warnings are returned for logging.
    pub fn load(path: &Path) -> Result<(Config, Vec<Problem>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            problems: vec![error("(file)", format!("cannot read: {e}"))],
        })?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::from_toml(&text, &env).map_err(|problems| ConfigError {
            path: path.to_owned(),
            problems,
        })
    }

    /// Parse TOML text with the given environment; pure, for tests and `config check`.
    ///
    /// Every problem is reported in one run, in file order, each with its line: an entry
    /// serde refuses is recorded and taken out, and the rest is parsed again, so one
    /// mistake does not hide the next; what parses is then validated too.
    pub fn from_toml(
        text: &str,
        env: &[(String, String)],
    ) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
        let lines = Lines::new(text);
        let mut doc = toml::de::DeTable::parse(text)
            .map_err(|e| {
                let line = e.span().map(|s| lines.line(s.start));
                vec![error("(syntax)", e.message().trim().to_owned()).at(line)]
            })?
            .into_inner();
        // Each override's value is given a span past the end of the text, so that a problem
        // with it is blamed on its variable, not on the file.
        let overrides: Vec<(String, String)> = env_overrides(env, &doc)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), env_value(v).to_string()))
            .collect();
        let vars: Vec<String> = overrides
            .iter()
            .map(|(k, _)| format!("LATCHKEY_{k}"))
            .collect();
        let mut problems = Vec::new();
        for (i, (key, literal)) in overrides.iter().enumerate() {
            let span = text.len() + 1 + i..text.len() + 2 + i;
            let path: Vec<String> = key.to_lowercase().split("__").map(str::to_owned).collect();
            // A literal that toml itself wrote: a string if it somehow does not parse back.
            let value = match toml::de::DeValue::parse(literal) {
                Ok(v) => v.into_inner(),
                Err(_) => toml::de::DeValue::String(literal.as_str().into()),
            };
            if let Err(p) = set_path(&mut doc, &path, toml::Spanned::new(span, value)) {
                problems.push(error(&vars[i], format!("`{p}` is not a table")));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let source = |span: &std::ops::Range<usize>| -> Result<usize, &str> {
            match span.start.checked_sub(text.len() + 1) {
                Some(i) => Err(vars.get(i).map_or("(environment)", String::as_str)),
                None => Ok(lines.line(span.start)),
            }
        };
        let original = doc.clone();
        let mut config = None;
        let mut stood_in = Vec::new();
        for _ in 0..1000 {
            let de = toml::de::Deserializer::from(toml::Spanned::new(0..text.len(), doc.clone()));
            let e = match Config::deserialize(de) {
                Ok(c) => {
                    config = Some(c);
                    break;
                }
                Err(e) => e,
            };
            let span = e.span();
            let removed = span.as_ref().and_then(|s| remove_at(&mut doc, s));
            // Named as the file has it: an earlier refused item was taken out of `doc`, which
            // shifts the index of a later one in the same list.
            let as_written = span
                .as_ref()
                .and_then(|s| remove_at(&mut original.clone(), s));
            let path = as_written
                .or_else(|| removed.clone())
                .unwrap_or_else(|| "(schema)".into());
            // A value its parser refused is named as `validate` names a problem; serde's own
            // schema errors keep the bare path.
            let refused = e.message().trim().strip_prefix(values::REFUSED);
            let (message, field) = match refused {
                Some(m) => (m.to_owned(), named(&original, &path)),
                None => (schema_message(e.message(), &path), path.clone()),
            };
            match span.as_ref().map(source) {
                Some(Ok(line)) => problems.push(error(&field, message).at(Some(line))),
                Some(Err(var)) if refused.is_some() => {
                    problems.push(error(&format!("{var} ({field})"), message));
                }
                Some(Err(var)) => problems.push(error(var, message)),
                None => problems.push(error(&field, message)),
            }
            let Some(path) = removed else { break };
            if refused.is_some()
                && !stood_in.contains(&path)
                && let (Some(value), Some(span)) = (stand_in(&original, &path), span)
            {
                put_back(&mut doc, &path, toml::Spanned::new(span, value));
                stood_in.push(path);
            }
        }
        if let Some(c) = &mut config {
            for client in &mut c.clients {
                client.resolve_secret(env);
            }
        }
        if let Some(config) = &config {
            for mut p in config.validate(env) {
                if p.line.is_none() {
                    match span_of(&original, &p.field).as_ref().map(source) {
                        Some(Ok(line)) => p.line = Some(line),
                        Some(Err(var)) => p.field = format!("{var} ({})", p.field),
                        None => {}
                    }
                }
                problems.push(p);
            }
        }
        // File order; problems without a line (the environment, the whole file) last.
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        match config {
            Some(c) if problems.iter().all(|p| p.severity != Severity::Error) => Ok((c, problems)),
            _ => Err(problems),
        }
    }

    /// The DEMO clients and user of the example config that this config still has.
    pub fn demo_entries(&self) -> Vec<String> {
        let clients = self
            .clients
            .iter()
            .filter(|c| c.client_id.starts_with("demo-"))
            .map(|c| format!("client {}", c.client_id));
        let users = self
            .users
            .iter()
            .filter(|u| u.username.eq_ignore_ascii_case("demo"))
            .map(|u| format!("user {}", u.username));
        clients.chain(users).collect()
    }

    /// Whether the main listener serves `/metrics`. Metrics tell anyone who can read them
    /// how busy the server is, which routes fail and how many users, clients and tokens the
    /// store holds: only where nobody but this machine can reach them, unless
    /// `[metrics] bind` gives them a listener of their own.
    pub fn metrics_on_main_listener(&self) -> bool {
        self.metrics.bind.is_none() && self.bind.ip().is_loopback()
    }

    pub fn is_sqlite(&self) -> bool {
        crate::store::Backend::of_url(&self.database_url) == Some(crate::store::Backend::Sqlite)
    }

    pub fn issuer_is_https(&self) -> bool {
        self.issuer.is_https()
    }

    /// The issuer, for building endpoint URLs (it has no trailing slash: `Issuer::parse`).
    pub fn base_url(&self) -> &str {
        self.issuer.as_str()
    }
}

/// What stands in for a refused value whose absence would change what the rest of the file
/// means, so that the rest is still checked as written: a required issuer (as loopback or
/// not as the refused one, for the DEMO rule), a listen address (port 0, which shares no
/// socket) and a secret hash (which makes its client confidential). The file is refused
/// anyway, so a stand-in never reaches the store.
fn stand_in<'i>(original: &toml::de::DeTable<'i>, path: &str) -> Option<toml::de::DeValue<'i>> {
    let value = match path.split_once('.') {
        None if path == "issuer" => {
            let refused = original.get("issuer")?.get_ref().as_str()?;
            if url::Url::parse(refused).is_ok_and(|u| !is_loopback(&u)) {
                "https://issuer.invalid"
            } else {
                "http://127.0.0.1"
            }
        }
        None if path == "bind" => "127.0.0.1:0",
        Some((entry, "client_secret_hash")) if entry.starts_with("clients[") => {
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        }
        _ => return None,
    };
    Some(toml::de::DeValue::String(value.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
issuer = "http://127.0.0.1:8080"

[[clients]]
client_id = "web"
name = "Web"
client_secret_hash = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
redirect_uris = ["http://localhost:3000/cb"]
grant_types = ["authorization_code", "refresh_token"]
"#;

    fn problems(text: &str) -> Vec<Problem> {
        match Config::from_toml(text, &[]) {
            Ok((_, w)) => w,
            Err(p) => p,
        }
    }

    /// Two refused items of one list are each named by their place in the file.
    #[test]
    fn refused_list_items_keep_their_index() {
        let text = MINIMAL.replace(
            r#"grant_types = ["authorization_code", "refresh_token"]"#,
            r#"grant_types = ["authorization_code", "magic", "more"]"#,
        );
        let fields: Vec<String> = problems(&text).into_iter().map(|p| p.field).collect();
        assert!(
            fields.iter().any(|f| f.ends_with("grant_types[1]"))
                && fields.iter().any(|f| f.ends_with("grant_types[2]")),
            "{fields:?}"
        );
    }

    #[test]
    fn described_scopes_are_checked() {
        let text = format!(
            "{MINIMAL}{}",
            r#"
[[scopes]]
name = "orders.read"
description = "Read your orders"

[[scopes]]
name = "email"
description = "Mine"

[[scopes]]
name = "two words"
description = "x"

[[scopes]]
name = "orders.read"
description = ""
"#
        );
        let found: Vec<String> = problems(&text)
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        let has = |field: &str, words: &str| {
            found
                .iter()
                .any(|f| f.starts_with(field) && f.contains(words))
        };
        assert!(has("scopes[1] (email).name", "standard scope"), "{found:?}");
        assert!(
            has("scopes[2] (two words).name", "RFC 6749 section 3.3"),
            "{found:?}"
        );
        assert!(
            has("scopes[3] (orders.read)", "described twice"),
            "{found:?}"
        );
        assert!(
            has("scopes[3] (orders.read).description", "1 to 200"),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|f| f.starts_with("scopes[0]")),
            "{found:?}"
        );
    }

    /// The shipped example config (the Docker image's too) starts on its loopback issuer,
    /// and refuses to with a public one while its DEMO entries are in it.
    #[test]
    fn demo_entries_are_refused_on_a_public_issuer() {
        let example = include_str!("../../config/latchkey.toml");
        let (c, _) = Config::from_toml(example, &[]).expect("the example loads as shipped");
        assert!(!c.demo_entries().is_empty());
        let env = vec![(
            "LATCHKEY_ISSUER".to_owned(),
            "https://id.example.com".to_owned(),
        )];
        let err = Config::from_toml(example, &env).expect_err("DEMO on a public issuer");
        let all: Vec<&str> = err.iter().map(|p| p.message.as_str()).collect();
        assert!(
            all.iter().any(|m| m.contains("DEMO")
                && m.contains("client demo-web")
                && m.contains("user demo")),
            "{all:?}"
        );
        // Without them (and without the flow explorer, a tool for one's own machine) the
        // public issuer is fine.
        let (mut c, _) = Config::from_toml(example, &[]).expect("loads");
        c.clients.retain(|c| !c.client_id.starts_with("demo-"));
        c.users.clear();
        c.explorer.enabled = false;
        c.issuer = "https://id.example.com".parse().expect("issuer");
        assert!(
            c.validate(&[])
                .iter()
                .all(|p| p.severity != Severity::Error),
            "{:?}",
            c.validate(&[])
        );
    }

    /// The messages of the errors `text` gives for `field`.
    fn errors_for(text: &str, field: &str) -> Vec<String> {
        problems(text)
            .into_iter()
            .filter(|p| p.severity == Severity::Error && p.field == field)
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn an_issuer_with_a_trailing_slash_is_refused() {
        let text = MINIMAL.replace("127.0.0.1:8080\"", "127.0.0.1:8080/\"");
        let e = errors_for(&text, "issuer");
        assert!(
            e.iter().any(|m| m.contains("remove the trailing slash")),
            "{e:?}"
        );
        assert!(errors_for(MINIMAL, "issuer").is_empty());
    }

    #[test]
    fn the_logo_must_be_an_image_the_pages_csp_allows() {
        for bad in [
            "http://cdn.example.com/logo.png",
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "//cdn.example.com/logo.png",
            "logo.png",
        ] {
            let text = format!("{MINIMAL}\n[theme]\nlogo_url = \"{bad}\"\n");
            let e = errors_for(&text, "theme.logo_url");
            assert!(
                e.iter()
                    .any(|m| m.contains("https://") && m.contains("img-src")),
                "{bad}: {e:?}"
            );
        }
        for good in [
            "https://cdn.example.com/logo.svg",
            "data:image/png;base64,iVBORw0KGgo=",
            "/brand/logo.svg",
        ] {
            let text = format!("{MINIMAL}\n[theme]\nlogo_url = \"{good}\"\n");
            assert!(errors_for(&text, "theme.logo_url").is_empty(), "{good}");
        }
    }

    #[test]
    fn the_accent_colour_is_a_hex_colour_only() {
        for bad in [
            "red",
            "#abcd",
            "#12345g",
            "#fff; } body { display: none",
            "rgb(1,2,3)",
            "",
        ] {
            let text = format!("{MINIMAL}\n[theme]\naccent_color = \"{bad}\"\n");
            let e = errors_for(&text, "theme.accent_color");
            assert!(e.iter().any(|m| m.contains("#rrggbb")), "{bad}: {e:?}");
        }
        for good in ["#abc", "#2F5BD3", "#2f5bd3"] {
            let text = format!("{MINIMAL}\n[theme]\naccent_color = \"{good}\"\n");
            assert!(errors_for(&text, "theme.accent_color").is_empty(), "{good}");
        }
    }

    #[test]
    fn minimal_config_loads() {
        let (c, warnings) = Config::from_toml(MINIMAL, &[]).expect("valid");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.clients.len(), 1);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn env_overrides_top_level_and_nested_fields() {
        let env = vec![
            ("LATCHKEY_BIND".to_owned(), "127.0.0.1:9999".to_owned()),
            ("LATCHKEY_TOKENS__CODE_TTL".to_owned(), "30".to_owned()),
            ("LATCHKEY_LOG_FORMAT".to_owned(), "json".to_owned()),
        ];
        let (c, _) = Config::from_toml(MINIMAL, &env).expect("valid");
        assert_eq!(c.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(c.tokens.code_ttl, 30);
    }

    #[test]
    fn the_mfa_mode_from_the_file_or_the_environment() {
        let (c, _) = Config::from_toml(MINIMAL, &[]).expect("valid");
        assert_eq!(c.mfa.mode, MfaMode::Optional);
        let text = format!("{MINIMAL}\n[mfa]\nmode = \"off\"\n");
        let (c, _) = Config::from_toml(&text, &[]).expect("valid");
        assert_eq!(c.mfa.mode, MfaMode::Off);
        let env = vec![("LATCHKEY_MFA__MODE".to_owned(), "required".to_owned())];
        let (c, _) = Config::from_toml(MINIMAL, &env).expect("valid");
        assert_eq!(c.mfa.mode, MfaMode::Required);
        let text = format!("{MINIMAL}\n[mfa]\nmode = \"always\"\n");
        let e = errors_for(&text, "mfa.mode");
        assert!(
            e.iter().any(|m| m.contains("always")),
            "{:?}",
            problems(&text)
        );
    }

    #[test]
    fn unknown_env_override_is_refused() {
        let env = vec![("LATCHKEY_NOPE".to_owned(), "1".to_owned())];
        let err = Config::from_toml(MINIMAL, &env).expect_err("unknown field");
        assert!(err[0].message.contains("nope"), "{err:?}");
    }

    #[test]
    fn unknown_field_names_the_line() {
        let text = MINIMAL.replace("name = \"Web\"", "name = \"Web\"\ncolour = \"red\"");
        let p = problems(&text);
        assert!(
            p[0].message.contains("colour") && p[0].to_string().contains("line 7:"),
            "{p:?}"
        );
    }

    /// Three independent mistakes, far apart: all reported in one run, in file order, each
    /// with its line, a semantic one too.
    #[test]
    fn every_problem_is_reported_at_once_in_file_order() {
        let mut lines: Vec<String> = (0..200).map(|i| format!("# filler {i}")).collect();
        lines[0] = "issuer = \"http://127.0.0.1:8080\"".into();
        lines[59] = "[[clients]]".into();
        lines[60] = "client_id = \"web\"".into();
        lines[61] = "name = \"Web\"".into();
        lines[62] = "redirect_uris = [\"http://app.example.com/cb\"]".into();
        lines[63] = "grant_types = [\"authorization_code\"]".into();
        lines[89] = "colour = \"red\"".into();
        lines[139] = "[tokens]".into();
        lines[149] = "code_ttl = \"sixty\"".into();
        let text = lines.join("\n");
        let p = problems(&text);
        let errors: Vec<(Option<usize>, String)> = p
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| (p.line, p.to_string()))
            .collect();
        assert_eq!(
            errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            [Some(63), Some(90), Some(150)],
            "{errors:#?}"
        );
        assert!(errors[0].1.contains("loopback"), "{errors:#?}");
        assert!(
            errors[1].1.contains("line 90: clients[0].colour")
                && errors[1].1.contains("no field colour"),
            "{errors:#?}"
        );
        assert!(
            errors[2].1.contains("line 150: tokens.code_ttl")
                && errors[2].1.contains("invalid type"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_mistaken_override_names_its_variable() {
        let env = vec![("LATCHKEY_TOKENS__CODE_TTLL".to_owned(), "30".to_owned())];
        let err = Config::from_toml(MINIMAL, &env).expect_err("unknown field");
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(
            err[0].to_string(),
            "error: LATCHKEY_TOKENS__CODE_TTLL: tokens has no field code_ttll (did you mean code_ttl?)"
        );
        let env = vec![("LATCHKEY_TOKENS__CODE_TTL".to_owned(), "soon".to_owned())];
        let err = Config::from_toml(MINIMAL, &env).expect_err("wrong type");
        assert!(
            err[0].field == "LATCHKEY_TOKENS__CODE_TTL" && err[0].line.is_none(),
            "{err:?}"
        );
    }

    #[test]
    fn plaintext_secret_is_refused_with_a_hint() {
        let text = MINIMAL.replace("client_secret_hash = ", "client_secret = \"hunter2\"\n#");
        let p = problems(&text);
        assert!(
            p.iter()
                .any(|p| p.severity == Severity::Error && p.message.contains("hash-secret")),
            "{p:?}"
        );
    }

    #[test]
    fn bad_redirect_uris_and_grants_are_named() {
        let text = MINIMAL
            .replace("http://localhost:3000/cb", "http://app.example.com/cb#frag")
            .replace("\"refresh_token\"]", "\"refresh_token\", \"magic\"]");
        let p = problems(&text);
        let all = p
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("fragment"), "{all}");
        assert!(all.contains("loopback"), "{all}");
        assert!(all.contains("unknown grant type `magic`"), "{all}");
        assert!(all.contains("clients[0] (web).redirect_uris[0]"), "{all}");
    }

    #[test]
    fn public_client_with_client_credentials_is_an_error() {
        let text = MINIMAL
            .replace("client_secret_hash", "# client_secret_hash")
            .replace("\"refresh_token\"]", "\"client_credentials\"]");
        let p = problems(&text);
        assert!(
            p.iter()
                .any(|p| p.severity == Severity::Error && p.message.contains("confidential")),
            "{p:?}"
        );
    }

    #[test]
    fn limits_are_checked() {
        let text = format!(
            "{MINIMAL}\n[limits]\nmax_params = 0\nrequest_timeout_seconds = 60\nmax_header_bytes = 1024\n[janitor]\naudit_retention_days = -1\n"
        );
        let all = problems(&text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("limits.max_params"), "{all}");
        assert!(all.contains("limits.idle_timeout_seconds"), "{all}");
        assert!(all.contains("limits.max_header_bytes"), "{all}");
        assert!(all.contains("janitor.audit_retention_days"), "{all}");
        assert!(problems(MINIMAL).is_empty());
    }

    #[test]
    fn metrics_stay_off_a_public_main_listener() {
        let (c, _) = Config::from_toml(MINIMAL, &[]).expect("valid");
        assert!(
            c.metrics_on_main_listener(),
            "loopback bind keeps serving it"
        );
        let public = format!("bind = \"0.0.0.0:8080\"\n{MINIMAL}");
        let (c, _) = Config::from_toml(&public, &[]).expect("valid");
        assert!(!c.metrics_on_main_listener());
        let env = vec![(
            "LATCHKEY_METRICS__BIND".to_owned(),
            "127.0.0.1:9090".to_owned(),
        )];
        let (c, _) = Config::from_toml(MINIMAL, &env).expect("valid");
        assert_eq!(
            c.metrics.bind.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:9090")
        );
        assert!(!c.metrics_on_main_listener(), "its own listener only");
        for bad in ["nowhere", "0.0.0.0:8080"] {
            let text = format!("{MINIMAL}\n[metrics]\nbind = \"{bad}\"\n");
            let all = problems(&text)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(all.contains("metrics.bind"), "{bad}: {all}");
        }
    }

    #[test]
    fn response_types_need_their_grant_types() {
        let with = |types: &str, grants: &str| {
            MINIMAL
                .replace(
                    "grant_types = [\"authorization_code\", \"refresh_token\"]",
                    &format!("grant_types = [{grants}]\nresponse_types = [{types}]"),
                )
                .to_string()
        };
        let errors = |text: &str| {
            problems(text)
                .into_iter()
                .filter(|p| p.severity == Severity::Error)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        };
        let ok = with(
            "\"code\", \"id_token token\", \"id_token code\", \"code token\", \"code id_token token\"",
            "\"authorization_code\", \"implicit\"",
        );
        assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
        let all = errors(&with("\"code id_token\"", "\"authorization_code\"")).join("\n");
        assert!(
            all.contains("`code id_token` needs grant_types to include implicit"),
            "{all}"
        );
        let all = errors(&with("\"code token\"", "\"implicit\"")).join("\n");
        assert!(
            all.contains("`code token` needs grant_types to include authorization_code"),
            "{all}"
        );
        let all = errors(&with("\"token\"", "\"implicit\"")).join("\n");
        assert!(
            all.contains("unknown response type `token`") && all.contains("\"code id_token\""),
            "{all}"
        );
    }

    #[test]
    fn backchannel_logout_uri_is_an_https_url_without_fragment() {
        let with = |uri: &str| {
            MINIMAL.replace(
                "grant_types = [",
                &format!("backchannel_logout_uri = \"{uri}\"\ngrant_types = ["),
            )
        };
        for ok in [
            "https://rp.example.com/logout?tenant=1",
            "http://127.0.0.1:9000/bcl",
            "http://localhost/bcl",
        ] {
            assert!(problems(&with(ok)).is_empty(), "{ok}");
        }
        for (bad, why) in [
            ("http://rp.example.com/bcl", "loopback"),
            ("https://rp.example.com/bcl#top", "fragment"),
            ("/bcl", "absolute"),
            ("javascript:alert(1)", "https"),
        ] {
            let all = problems(&with(bad))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                all.contains("clients[0] (web).backchannel_logout_uri") && all.contains(why),
                "{bad}: {all}"
            );
        }
        let text = MINIMAL.replace(
            "grant_types = [",
            "backchannel_logout_session_required = true\ngrant_types = [",
        );
        let all = problems(&text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("needs backchannel_logout_uri"), "{all}");
    }

    #[test]
    fn backchannel_logout_retries_double_up_to_the_cap() {
        let b = BackchannelLogoutSettings {
            retry_delay_seconds: 10,
            max_retry_delay_seconds: 100,
            ..Default::default()
        };
        let delays: Vec<i64> = (1..=6).map(|a| b.retry_delay(a)).collect();
        assert_eq!(delays, [10, 20, 40, 80, 100, 100]);
        assert_eq!(b.retry_delay(1000), 100);
        let text = format!(
            "{MINIMAL}\n[backchannel_logout]\ntimeout_seconds = 0\nmax_attempts = 0\nretry_delay_seconds = 60\nmax_retry_delay_seconds = 30\n"
        );
        let all = problems(&text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for f in ["timeout_seconds", "max_attempts", "max_retry_delay_seconds"] {
            assert!(
                all.contains(&format!("backchannel_logout.{f}")),
                "{f}: {all}"
            );
        }
    }

    #[test]
    fn bcp_warnings() {
        let text = MINIMAL
            .replace("\"refresh_token\"]", "\"password\", \"implicit\"]")
            .replace("http://localhost:3000/cb", "https://*.example.com/cb");
        let (_, w) = Config::from_toml(&text, &[]).expect("warnings only");
        let all = w
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("RFC 9700 §2.4"), "{all}");
        assert!(all.contains("RFC 9700 §2.1.2"), "{all}");
        assert!(all.contains("wildcards"), "{all}");
    }

    /// A value its parser refuses is reported at its own line, named as `validate` names a
    /// problem (the client's id), and only it is taken out: the rest of the entry is checked
    /// as written.
    #[test]
    fn a_refused_value_is_named_at_its_line_and_the_rest_is_still_checked() {
        let text = MINIMAL
            .replace(
                "\"refresh_token\"]",
                "\"refresh_token\",\n  \"magic\"]\nid_token_signed_response_alg = \"HS256\"",
            )
            .replace("http://localhost:3000/cb", "http://app.example.com/cb");
        let p = problems(&text);
        let all: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert!(
            all.iter().any(|m| m.starts_with(
                "error: line 10: clients[0] (web).grant_types[2]: unknown grant type `magic`"
            )),
            "{all:#?}"
        );
        assert!(
            all.iter().any(|m| m.starts_with(
                "error: line 11: clients[0] (web).id_token_signed_response_alg: unknown signing alg `HS256`"
            )),
            "{all:#?}"
        );
        assert!(
            all.iter()
                .any(|m| m.contains("clients[0] (web).redirect_uris[0]") && m.contains("loopback")),
            "validation still ran: {all:#?}"
        );
        assert_eq!(p.len(), 3, "{all:#?}");
    }

    /// A refused secret hash still makes its client confidential for the other checks, and a
    /// refused issuer does not hide the rest of the file: no problem follows from a refusal.
    #[test]
    fn a_refusal_causes_no_second_problem() {
        let text = MINIMAL
            .replace("sha256:9f86", "sha256:XX86")
            .replace("\"refresh_token\"]", "\"client_credentials\"]");
        let all: Vec<String> = problems(&text).iter().map(ToString::to_string).collect();
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(
            all[0].starts_with("error: line 7: clients[0] (web).client_secret_hash: is not a hash"),
            "{all:#?}"
        );
        let text = MINIMAL
            .replace("127.0.0.1:8080\"", "127.0.0.1:8080/\"")
            .replace("name = \"Web\"", "name = \"Web\"\nskip_consent = \"yes\"");
        let all: Vec<String> = problems(&text).iter().map(ToString::to_string).collect();
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(
            all[0].starts_with("error: line 2: issuer: `http://127.0.0.1:8080/` ends with a slash"),
            "{all:#?}"
        );
        assert!(all[1].contains("clients[0].skip_consent"), "{all:#?}");
        // The DEMO rule still sees the refused issuer as the public address it names.
        let example = include_str!("../../config/latchkey.toml");
        let env = vec![(
            "LATCHKEY_ISSUER".to_owned(),
            "http://id.example.com".to_owned(),
        )];
        let err = Config::from_toml(example, &env).expect_err("http and DEMO");
        let all: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert!(
            all.iter()
                .any(|m| m.starts_with("error: LATCHKEY_ISSUER (issuer): must be https")),
            "{all:#?}"
        );
        assert!(all.iter().any(|m| m.contains("DEMO")), "{all:#?}");
    }

    #[test]
    fn addresses_networks_and_keys_are_typed_as_they_are_read() {
        let key = crate::crypto::aead::MasterKey::generate().to_base64();
        let text = format!(
            "bind = \"[::1]:8443\"\nmaster_key = \"{key}\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n{MINIMAL}"
        );
        let (c, _) = Config::from_toml(&text, &[]).expect("valid");
        assert_eq!(c.bind, "[::1]:8443".parse().expect("addr"));
        assert_eq!(
            c.master_key.as_ref().map(|k| k.to_base64()).as_deref(),
            Some(key.as_str())
        );
        assert_eq!(
            c.trusted_proxies,
            [
                "10.0.0.0/8".parse::<IpNet>().expect("net"),
                "192.0.2.7/32".parse().expect("net")
            ]
        );
        assert!(c.is_sqlite() && !c.issuer_is_https());
        let text = format!(
            "bind = \"localhost:80\"\nmaster_key = \"c2hvcnQ=\"\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy\"]\ndatabase_url = \"mysql://db\"\n{MINIMAL}"
        );
        let all: Vec<String> = problems(&text).iter().map(ToString::to_string).collect();
        assert_eq!(
            all[..4],
            [
                "error: line 1: bind: `localhost:80` is not an address like 127.0.0.1:8080",
                "error: line 2: master_key: must be base64 of exactly 32 bytes (try: openssl rand -base64 32)",
                "error: line 3: trusted_proxies[1]: `proxy` is not an IP address or CIDR network (e.g. 10.0.0.0/8)",
                "error: line 4: database_url: must start with postgres://, postgresql:// or sqlite: (e.g. sqlite://data/latchkey.db)",
            ],
            "{all:#?}"
        );
        assert_eq!(all.len(), 4, "{all:#?}");
    }

    /// `secret_env` is read from the environment the file was loaded with, once.
    #[test]
    fn a_secret_from_the_environment_is_read_with_the_file() {
        let text = MINIMAL.replace(
            "client_secret_hash = \"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"",
            "secret_env = \"WEB_SECRET\"",
        );
        let env = vec![("WEB_SECRET".to_owned(), "s3cret-from-env".to_owned())];
        let (c, _) = Config::from_toml(&text, &env).expect("valid");
        assert_eq!(
            c.clients[0].env_secret.as_ref().map(EnvSecret::expose),
            Some("s3cret-from-env")
        );
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "Debug never prints it"
        );
        let all = errors_for(&text, "clients[0] (web).secret_env");
        assert!(
            all.iter().any(|m| m.contains("WEB_SECRET is not set")),
            "{all:?}"
        );
    }
}
