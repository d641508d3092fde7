//! Values the config file writes as strings, parsed as they are read. A bad one is a serde
//! error at its own line (see `Config::from_toml`), and nothing after loading ever sees the
//! string again, so no later code can read it differently or drop it silently.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::crypto::aead::MasterKey;
use crate::crypto::secret::SecretHash;
use crate::oauth::types::{GrantType, ResponseType, SigningAlg, TokenEndpointAuthMethod};

/// Starts the message of a value its parser refused, as opposed to serde's own schema
/// errors: `from_toml` names the former like `validate` names its problems (with the
/// client's id) and strips the mark.
pub(super) const REFUSED: char = '\u{1}';

/// A value read from one config string; Err is the message shown against its line.
pub trait ConfigValue: Sized {
    fn parse_config(s: &str) -> Result<Self, String>;
}

/// Reads one `T` from a string. Lists are read element by element through it, so a refused
/// element carries its own span and only it is taken out (`from_toml`'s recovery).
struct Read<T>(T);

impl<'de, T: ConfigValue> Deserialize<'de> for Read<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_with(d, T::parse_config).map(Read)
    }
}

/// Read a string and parse it inside serde's visitor: toml gives an error raised there the
/// span of the value it is about (one raised after `String::deserialize` returns would get
/// the span of whatever holds the value, e.g. the whole list).
fn parse_with<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct Parse<F>(F);
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for Parse<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            (self.0)(s).map_err(|m| E::custom(format!("{REFUSED}{m}")))
        }
    }
    d.deserialize_str(Parse(parse))
}

/// `deserialize_with` for a `T` field.
pub fn one<'de, D: Deserializer<'de>, T: ConfigValue>(d: D) -> Result<T, D::Error> {
    Read::<T>::deserialize(d).map(|r| r.0)
}

/// `deserialize_with` for an `Option<T>` field (with `#[serde(default)]`).
pub fn optional<'de, D: Deserializer<'de>, T: ConfigValue>(d: D) -> Result<Option<T>, D::Error> {
    Option::<Read<T>>::deserialize(d).map(|o| o.map(|r| r.0))
}

/// `deserialize_with` for a `Vec<T>` field (with `#[serde(default)]`).
pub fn list<'de, D: Deserializer<'de>, T: ConfigValue>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Read<T>>::deserialize(d).map(|v| v.into_iter().map(|r| r.0).collect())
}

/// The listen address of the server (`bind`).
pub fn bind<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    socket_addr(d, "127.0.0.1:8080")
}

/// The listen address of the metrics listener (`[metrics] bind`).
pub fn metrics_bind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    socket_addr(d, "127.0.0.1:9090").map(Some)
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D, example: &str) -> Result<SocketAddr, D::Error> {
    parse_with(d, |s| {
        s.parse()
            .map_err(|_| format!("`{s}` is not an address like {example}"))
    })
}

/// The store's URL: the scheme picks the backend (`Store::connect`).
pub fn database_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_with(d, |s| {
        match crate::store::Backend::of_url(s) {
        Some(_) => Ok(s.to_owned()),
        None => Err("must start with postgres://, postgresql:// or sqlite: (e.g. sqlite://data/latchkey.db)".to_owned()),
    }
    })
}

/// The issuer identifier: the `iss` of every token, compared byte for byte by relying
/// parties (OIDC Discovery §4.3), so it keeps the string as written. `Url` would add a
/// trailing slash to `https://id.example.com`; this type refuses one instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    text: String,
    url: Url,
}

impl Issuer {
    /// OIDC Discovery §3 / RFC 8414 §2: an https URL without query or fragment (http only on
    /// a loopback address, for development). Every rule the string breaks is named.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut wrong = Vec::new();
        let url = match Url::parse(s) {
            Ok(u) => {
                if u.query().is_some() || u.fragment().is_some() {
                    wrong.push("must not have a query or fragment".to_owned());
                }
                if u.scheme() != "https" && !is_loopback(&u) {
                    wrong.push("must be https unless it is a loopback address (http://127.0.0.1, http://localhost)".to_owned());
                }
                Some(u)
            }
            Err(e) => {
                wrong.push(format!("not a URL: {e}"));
                None
            }
        };
        // Every endpoint URL is the issuer plus a path, and tokens carry it byte for byte:
        // `https://id.example.com/` would give `//token` and an `iss` no client expects.
        if s.ends_with('/') {
            wrong.push(format!(
                "`{s}` ends with a slash: remove the trailing slash (OIDC Discovery §4.3 compares the issuer exactly)"
            ));
        }
        match url {
            Some(url) if wrong.is_empty() => Ok(Issuer {
                text: s.to_owned(),
                url,
            }),
            _ => Err(wrong.join("; ")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.url)
    }
}

impl Deref for Issuer {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for Issuer {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl PartialEq<str> for Issuer {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for Issuer {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl PartialEq<String> for Issuer {
    fn eq(&self, other: &String) -> bool {
        &self.text == other
    }
}

impl FromStr for Issuer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Issuer::parse(s)
    }
}

impl From<Issuer> for String {
    fn from(i: Issuer) -> String {
        i.text
    }
}

impl Serialize for Issuer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl ConfigValue for Issuer {
    fn parse_config(s: &str) -> Result<Self, String> {
        Issuer::parse(s)
    }
}

pub fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A trusted proxy: `10.0.0.0/8`, or a single address (`10.0.0.1` as a /32).
impl ConfigValue for IpNet {
    fn parse_config(s: &str) -> Result<Self, String> {
        s.parse::<IpNet>()
            .ok()
            .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
            .ok_or_else(|| format!("`{s}` is not an IP address or CIDR network (e.g. 10.0.0.0/8)"))
    }
}

impl ConfigValue for MasterKey {
    fn parse_config(s: &str) -> Result<Self, String> {
        MasterKey::from_base64(s).map_err(|()| {
            "must be base64 of exactly 32 bytes (try: openssl rand -base64 32)".into()
        })
    }
}

impl ConfigValue for SecretHash {
    fn parse_config(s: &str) -> Result<Self, String> {
        SecretHash::parse(s).map_err(|()| {
            "is not a hash printed by `latchkey hash-secret` (expected `$argon2id$…` or `sha256:…`)"
                .into()
        })
    }
}

impl ConfigValue for GrantType {
    fn parse_config(s: &str) -> Result<Self, String> {
        s.parse().map_err(|()| {
            let known: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
            format!("unknown grant type `{s}` (known: {})", known.join(", "))
        })
    }
}

impl ConfigValue for ResponseType {
    fn parse_config(s: &str) -> Result<Self, String> {
        ResponseType::parse(s).map_err(|()| {
            let known: Vec<String> = ResponseType::ALL
                .iter()
                .map(|t| format!("\"{}\"", t.as_str()))
                .collect();
            format!("unknown response type `{s}` (known: {})", known.join(", "))
        })
    }
}

impl ConfigValue for TokenEndpointAuthMethod {
    fn parse_config(s: &str) -> Result<Self, String> {
        s.parse().map_err(|()| {
            format!("unknown method `{s}` (use client_secret_basic, client_secret_post or none)")
        })
    }
}

impl ConfigValue for SigningAlg {
    fn parse_config(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|()| format!("unknown signing alg `{s}` (use RS256, ES256 or EdDSA)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_keeps_its_string_and_names_every_broken_rule() {
        let i = Issuer::parse("https://id.example.com").expect("valid");
        assert_eq!(i, "https://id.example.com");
        assert_eq!(i.url().as_str(), "https://id.example.com/");
        assert!(i.is_https() && !i.is_loopback());
        let dev = Issuer::parse("http://localhost:8080/tenant").expect("loopback http");
        assert!(!dev.is_https() && dev.is_loopback());
        assert_eq!(&*dev, "http://localhost:8080/tenant");
        assert_eq!(
            serde_json::to_value(&dev).expect("json"),
            "http://localhost:8080/tenant"
        );
        let e = Issuer::parse("http://id.example.com/?x").expect_err("two rules");
        assert!(
            e.contains("query or fragment") && e.contains("must be https"),
            "{e}"
        );
        let e = Issuer::parse("https://id.example.com/").expect_err("trailing slash");
        assert!(e.contains("remove the trailing slash"), "{e}");
        assert!(
            Issuer::parse("id.example.com")
                .expect_err("relative")
                .starts_with("not a URL")
        );
    }

    #[test]
    fn trusted_proxies_are_networks_or_single_addresses() {
        assert_eq!(
            IpNet::parse_config("10.0.0.0/8"),
            Ok("10.0.0.0/8".parse().expect("net"))
        );
        assert_eq!(
            IpNet::parse_config("10.0.0.1"),
            Ok("10.0.0.1/32".parse().expect("net"))
        );
        assert_eq!(
            IpNet::parse_config("::1"),
            Ok("::1/128".parse().expect("net"))
        );
        for bad in ["10.0.0.0/33", "proxy.example.com", ""] {
            let e = IpNet::parse_config(bad).expect_err(bad);
            assert!(e.contains("is not an IP address or CIDR network"), "{e}");
        }
    }

    #[test]
    fn protocol_names_parse_with_the_config_messages() {
        assert_eq!(
            GrantType::parse_config("urn:ietf:params:oauth:grant-type:device_code"),
            Ok(GrantType::DeviceCode)
        );
        let e = GrantType::parse_config("magic").expect_err("unknown");
        assert!(
            e.starts_with("unknown grant type `magic` (known: authorization_code,"),
            "{e}"
        );
        assert_eq!(
            ResponseType::parse_config("id_token code"),
            Ok(ResponseType::CodeIdToken)
        );
        let e = ResponseType::parse_config("token").expect_err("token alone");
        assert!(e.contains("\"code id_token\""), "{e}");
        assert_eq!(
            TokenEndpointAuthMethod::parse_config("none"),
            Ok(TokenEndpointAuthMethod::None)
        );
        assert!(
            TokenEndpointAuthMethod::parse_config("private_key_jwt")
                .expect_err("unsupported")
                .contains("client_secret_post")
        );
        assert_eq!(SigningAlg::parse_config("EdDSA"), Ok(SigningAlg::EdDsa));
        assert!(
            SigningAlg::parse_config("HS256")
                .expect_err("unsupported")
                .contains("RS256, ES256 or EdDSA")
        );
    }

    #[test]
    fn secrets_and_keys_parse_or_explain() {
        let h = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(
            SecretHash::parse_config(h).map(|h| h.encode()),
            Ok(h.to_owned())
        );
        assert!(
            SecretHash::parse_config("hunter2")
                .expect_err("plaintext")
                .contains("hash-secret")
        );
        let k = MasterKey::generate().to_base64();
        assert!(MasterKey::parse_config(&k).is_ok());
        assert!(
            MasterKey::parse_config("c2hvcnQ=")
                .expect_err("short")
                .contains("exactly 32 bytes")
        );
    }

    #[derive(Debug, Deserialize)]
    struct Listens {
        #[serde(deserialize_with = "bind")]
        main: SocketAddr,
        #[serde(default, deserialize_with = "metrics_bind")]
        metrics: Option<SocketAddr>,
        #[serde(default, deserialize_with = "list")]
        grants: Vec<GrantType>,
    }

    /// Each refused value is a serde error whose message is the parser's, marked as one.
    #[test]
    fn the_deserializers_carry_the_parsers_messages() {
        let ok: Listens =
            toml::from_str("main = \"[::1]:8080\"\ngrants = [\"implicit\", \"password\"]\n")
                .expect("valid");
        assert_eq!(ok.main, "[::1]:8080".parse().expect("addr"));
        assert_eq!(ok.metrics, None);
        assert_eq!(ok.grants, [GrantType::Implicit, GrantType::Password]);
        let e = toml::from_str::<Listens>("main = \"127.0.0.1:8080\"\nmetrics = \"nowhere\"\n")
            .expect_err("bad metrics address");
        assert_eq!(
            e.message(),
            format!("{REFUSED}`nowhere` is not an address like 127.0.0.1:9090")
        );
        let text = "main = \"127.0.0.1:8080\"\ngrants = [\"implicit\", \"magic\"]\n";
        let e = toml::from_str::<Listens>(text).expect_err("bad grant");
        let span = e.span().expect("span");
        assert_eq!(&text[span], "\"magic\"", "the element, not the list");
    }
}
