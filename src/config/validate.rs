//! The rules no single value can break on its own: what one setting means for another, what
//! a client's grant types need from the rest of its entry, and the RFC 9700 warnings.

use std::collections::BTreeSet;

use url::Url;

use super::problem::{Problem, error, warning};
use super::values::is_loopback;
use super::{ClientConfig, Config, EDITABLE_CLAIMS, Theme};
use crate::oauth::scope::is_scope_token;
use crate::oauth::types::{GrantType, TokenEndpointAuthMethod};

impl Config {
    /// Every problem in the config that is not one value's own, errors and RFC 9700
    /// warnings.
    pub fn validate(&self, env: &[(String, String)]) -> Vec<Problem> {
        let mut out = Vec::new();
        // The DEMO secrets and password are published in the example config: on a server
        // others can reach they are a way in for anyone who read it.
        if !self.issuer.is_loopback() && !self.demo_entries().is_empty() {
            out.push(error(
                "issuer",
                format!(
                    "is not a loopback address, but the DEMO entries of the example config are still here ({}); their secrets and password are published, so remove them before serving anyone else",
                    self.demo_entries().join(", ")
                ),
            ));
        }
        // The explorer shows its clients' secrets and the tokens it gets to whoever runs a
        // flow, and its calls to this server come from the server's own address: a tool for
        // learning on one's own machine, not for a server others reach.
        if self.explorer.enabled && !self.issuer.is_loopback() {
            out.push(error(
                "explorer.enabled",
                "is true, but the issuer is not a loopback address: the flow explorer shows its clients' secrets and the tokens it gets to anyone who runs a flow, and its calls to this server count against the server's own address. Run it with an issuer such as http://127.0.0.1:8080 or http://localhost:8080".into(),
            ));
        }
        self.theme.validate(&mut out);
        for (i, c) in self.account.editable_claims.iter().enumerate() {
            if !EDITABLE_CLAIMS.contains(&c.as_str()) {
                out.push(error(
                    &format!("account.editable_claims[{i}]"),
                    format!(
                        "`{c}` cannot be edited by its owner; these can: {}",
                        EDITABLE_CLAIMS.join(", ")
                    ),
                ));
            }
        }
        if let Some(m) = self.metrics.bind
            && same_socket(self.bind, m)
        {
            out.push(error(
                "metrics.bind",
                "is the address of bind: give the metrics listener another port".into(),
            ));
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_ttl", t.access_token_ttl),
            ("tokens.id_token_ttl", t.id_token_ttl),
            ("tokens.code_ttl", t.code_ttl),
            ("tokens.refresh_token_ttl", t.refresh_token_ttl),
            ("tokens.refresh_token_idle_ttl", t.refresh_token_idle_ttl),
            ("sessions.idle_ttl", self.sessions.idle_ttl),
            ("sessions.absolute_ttl", self.sessions.absolute_ttl),
            ("device.code_ttl", self.device.code_ttl),
            ("device.poll_interval", self.device.poll_interval),
            (
                "device.attempt_window_seconds",
                self.device.attempt_window_seconds,
            ),
            ("login.lockout_seconds", self.login.lockout_seconds),
            (
                "login.failure_window_seconds",
                self.login.failure_window_seconds,
            ),
            (
                "client_auth.lockout_seconds",
                self.client_auth.lockout_seconds,
            ),
            (
                "client_auth.failure_window_seconds",
                self.client_auth.failure_window_seconds,
            ),
        ] {
            if v <= 0 {
                out.push(error(name, "must be a positive number of seconds".into()));
            }
        }
        for (name, v) in [
            ("login.max_failures", self.login.max_failures),
            ("login.max_failures_per_ip", self.login.max_failures_per_ip),
            (
                "login.max_in_flight_per_ip",
                self.login.max_in_flight_per_ip,
            ),
            (
                "device.max_attempts_per_ip",
                self.device.max_attempts_per_ip,
            ),
            (
                "device.max_attempts_global",
                self.device.max_attempts_global,
            ),
            (
                "client_auth.max_failures_per_client",
                self.client_auth.max_failures_per_client,
            ),
            (
                "client_auth.max_failures_per_ip",
                self.client_auth.max_failures_per_ip,
            ),
        ] {
            if v <= 0 {
                out.push(error(name, "must be a positive count".into()));
            }
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.max_params", l.max_params as u64),
            ("limits.max_param_bytes", l.max_param_bytes as u64),
            ("limits.request_timeout_seconds", l.request_timeout_seconds),
            (
                "limits.header_read_timeout_seconds",
                l.header_read_timeout_seconds,
            ),
            ("limits.max_connections", l.max_connections as u64),
            ("janitor.batch_size", self.janitor.batch_size.max(0) as u64),
        ] {
            if v == 0 {
                out.push(error(name, "must be positive".into()));
            }
        }
        if l.idle_timeout_seconds <= l.request_timeout_seconds {
            out.push(error(
                "limits.idle_timeout_seconds",
                "must exceed limits.request_timeout_seconds, or a slow but legitimate request is cut off".into(),
            ));
        }
        // hyper's smallest read buffer.
        if l.max_header_bytes < 8192 {
            out.push(error(
                "limits.max_header_bytes",
                "must be at least 8192".into(),
            ));
        }
        if self.janitor.audit_retention_days < 0 {
            out.push(error(
                "janitor.audit_retention_days",
                "must be 0 (keep forever) or a number of days".into(),
            ));
        }
        // The janitor forgets throttle rows a day after their window began.
        for (name, v) in [
            (
                "login.failure_window_seconds",
                self.login.failure_window_seconds,
            ),
            (
                "client_auth.failure_window_seconds",
                self.client_auth.failure_window_seconds,
            ),
            (
                "device.attempt_window_seconds",
                self.device.attempt_window_seconds,
            ),
        ] {
            if v > 86_400 {
                out.push(error(name, "must be at most 86400 (one day)".into()));
            }
        }
        if self.device.global_slowdown_seconds >= self.limits.request_timeout_seconds {
            out.push(error(
                "device.global_slowdown_seconds",
                "must be shorter than limits.request_timeout_seconds, or every code check would time out".into(),
            ));
        }
        let b = &self.backchannel_logout;
        for (name, ok, rule) in [
            (
                "backchannel_logout.poll_interval_seconds",
                b.poll_interval_seconds > 0,
                "must be a positive number of seconds",
            ),
            (
                "backchannel_logout.timeout_seconds",
                (1..=60).contains(&b.timeout_seconds),
                "must be 1 to 60 seconds",
            ),
            (
                "backchannel_logout.concurrency",
                (1..=256).contains(&b.concurrency),
                "must be 1 to 256",
            ),
            (
                "backchannel_logout.max_attempts",
                (1..=100).contains(&b.max_attempts),
                "must be 1 to 100",
            ),
            (
                "backchannel_logout.retry_delay_seconds",
                b.retry_delay_seconds >= 1,
                // 0 would retry a client that refuses at once in a tight loop.
                "must be a positive number of seconds",
            ),
            (
                "backchannel_logout.max_retry_delay_seconds",
                b.max_retry_delay_seconds >= b.retry_delay_seconds,
                "must be at least backchannel_logout.retry_delay_seconds",
            ),
            (
                "backchannel_logout.token_ttl",
                b.token_ttl > 0,
                "must be a positive number of seconds",
            ),
            (
                "backchannel_logout.retention_seconds",
                b.retention_seconds >= 0,
                "must be 0 or a number of seconds",
            ),
        ] {
            if !ok {
                out.push(error(name, rule.into()));
            }
        }
        if t.code_ttl > 600 {
            out.push(warning(
                "tokens.code_ttl",
                "RFC 6749 §4.1.2 recommends at most 10 minutes".into(),
            ));
        }
        if self.keys.prepublish_seconds < self.keys.jwks_max_age {
            out.push(warning(
                "keys.prepublish_seconds",
                "is shorter than keys.jwks_max_age: relying parties with a cached JWKS may reject tokens signed right after a rotation".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let at = format!("clients[{i}] ({})", c.client_id);
            if !seen.insert(c.client_id.clone()) {
                out.push(error(&at, "client_id is registered twice".into()));
            }
            validate_client(c, &at, env, &mut out);
        }
        let mut scopes = BTreeSet::new();
        for (i, sc) in self.scopes.iter().enumerate() {
            let at = format!("scopes[{i}] ({})", sc.name);
            if !is_scope_token(&sc.name) {
                out.push(error(
                    &format!("{at}.name"),
                    "is not a scope: one word of printable ASCII without spaces, quotes or backslashes (RFC 6749 section 3.3)".into(),
                ));
            } else if crate::oauth::scope::standard(&sc.name).is_some() {
                out.push(error(
                    &format!("{at}.name"),
                    "is a standard scope, which the server already describes".into(),
                ));
            }
            if !scopes.insert(sc.name.clone()) {
                out.push(error(&at, "the scope is described twice".into()));
            }
            let words = sc.description.trim();
            if words.is_empty()
                || words.chars().count() > 200
                || words.chars().any(char::is_control)
            {
                out.push(error(
                    &format!("{at}.description"),
                    "must be one line of 1 to 200 characters: the consent page shows it".into(),
                ));
            }
        }
        let mut users = BTreeSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let at = format!("users[{i}] ({})", u.username);
            if !users.insert(u.username.to_lowercase()) {
                out.push(error(&at, "username is listed twice".into()));
            }
            if !u.password_hash.starts_with("$argon2") {
                out.push(error(
                    &format!("{at}.password_hash"),
                    "must be an argon2 hash: run `echo -n 'the password' | latchkey hash-secret`"
                        .into(),
                ));
            }
        }
        out
    }
}

/// Would listeners on `a` and `b` fight over one socket?
fn same_socket(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Every problem with one client, named under `at`. The one validator of a client's shape:
/// `[[clients]]` entries and `latchkey client add` both come through here.
pub fn validate_client(
    c: &ClientConfig,
    at: &str,
    env: &[(String, String)],
    out: &mut Vec<Problem>,
) {
    let field = |f: &str| format!("{at}.{f}");
    if c.client_id.is_empty()
        || c.client_id.len() > 255
        || c.client_id.chars().any(|ch| ch.is_control() || ch == ' ')
    {
        out.push(error(
            &field("client_id"),
            "must be 1-255 printable characters without spaces".into(),
        ));
    }
    if c.client_secret.is_some() {
        out.push(error(
            &field("client_secret"),
            "plaintext secrets are refused. Hash it and use client_secret_hash: `echo -n 'the secret' | latchkey hash-secret`, or name an environment variable with secret_env = \"VAR\"".into(),
        ));
    }
    if c.client_secret_hash.is_some() && c.secret_env.is_some() {
        out.push(error(
            at,
            "give either client_secret_hash or secret_env, not both".into(),
        ));
    }
    if let Some(var) = &c.secret_env
        && !env.iter().any(|(k, v)| k == var && !v.is_empty())
    {
        out.push(error(
            &field("secret_env"),
            format!("environment variable {var} is not set"),
        ));
    }
    let confidential = c.is_confidential();
    let method = c.auth_method();
    if method == TokenEndpointAuthMethod::None && confidential {
        out.push(error(
            &field("token_endpoint_auth_method"),
            "is none but the client has a secret".into(),
        ));
    }
    if method != TokenEndpointAuthMethod::None && !confidential {
        out.push(error(
            at,
            format!(
                "uses {} but has no client_secret_hash or secret_env",
                method.as_str()
            ),
        ));
    }
    let grants = &c.grant_types;
    if c.grant_types.is_empty() {
        out.push(error(
            &field("grant_types"),
            "list at least one grant type".into(),
        ));
    }
    for rt in &c.response_types {
        // Listed but unusable otherwise: /authorize also checks the grant types.
        let missing: Vec<&str> = rt
            .grant_types()
            .iter()
            .filter(|g| !grants.contains(g))
            .map(|g| g.as_str())
            .collect();
        if !missing.is_empty() {
            out.push(error(
                &field("response_types"),
                format!(
                    "`{}` needs grant_types to include {} (OpenID Connect Dynamic Client Registration section 2)",
                    rt.as_str(),
                    missing.join(" and ")
                ),
            ));
        }
    }
    let redirect_grant =
        grants.contains(&GrantType::AuthorizationCode) || grants.contains(&GrantType::Implicit);
    if redirect_grant && c.redirect_uris.is_empty() {
        out.push(error(
            &field("redirect_uris"),
            "a client using authorization_code or implicit needs at least one".into(),
        ));
    }
    for (j, uri) in c
        .redirect_uris
        .iter()
        .chain(c.post_logout_redirect_uris.iter())
        .enumerate()
    {
        let f = if j < c.redirect_uris.len() {
            format!("{}[{j}]", field("redirect_uris"))
        } else {
            format!(
                "{}[{}]",
                field("post_logout_redirect_uris"),
                j - c.redirect_uris.len()
            )
        };
        check_redirect_uri(uri, &f, out);
    }
    match &c.backchannel_logout_uri {
        Some(uri) => check_backchannel_logout_uri(uri, &field("backchannel_logout_uri"), out),
        None if c.backchannel_logout_session_required => out.push(error(
            &field("backchannel_logout_session_required"),
            "needs backchannel_logout_uri (OpenID Connect Back-Channel Logout 1.0 section 2.2)"
                .into(),
        )),
        None => {}
    }
    if !confidential && grants.contains(&GrantType::ClientCredentials) {
        out.push(error(
            &field("grant_types"),
            "client_credentials needs a confidential client (RFC 6749 §4.4): add client_secret_hash".into(),
        ));
    }
    if grants.contains(&GrantType::Password) {
        out.push(warning(
            &field("grant_types"),
            "the password grant exposes user credentials to the client; RFC 9700 §2.4 says it MUST NOT be used".into(),
        ));
    }
    if grants.contains(&GrantType::Implicit) {
        out.push(warning(
            &field("grant_types"),
            "the implicit grant puts tokens in the front channel; RFC 9700 §2.1.2 recommends the code flow (use response_mode=form_post if you must)".into(),
        ));
    }
    if !confidential && grants.contains(&GrantType::AuthorizationCode) && c.allow_plain_pkce {
        out.push(warning(&field("allow_plain_pkce"), "plain PKCE gives a public client no protection if the request leaks (RFC 9700 §2.1.1): use S256".into()));
    }
    for s in &c.default_scopes {
        if !c.scopes.contains(s) {
            out.push(error(
                &field("default_scopes"),
                format!("`{s}` is not in scopes"),
            ));
        }
    }
    for s in &c.scopes {
        if s.is_empty()
            || s.chars()
                .any(|ch| ch == ' ' || ch == '"' || ch == '\\' || !ch.is_ascii_graphic())
        {
            out.push(error(
                &field("scopes"),
                format!("`{s}` is not a valid scope token (RFC 6749 §3.3)"),
            ));
        }
    }
    for o in &c.allowed_origins {
        match Url::parse(o) {
            Ok(u) if u.path() == "/" && !o.ends_with('/') => {}
            _ => out.push(error(
                &field("allowed_origins"),
                format!("`{o}` is not an origin like https://app.example.com"),
            )),
        }
    }
}

fn check_redirect_uri(uri: &str, field: &str, out: &mut Vec<Problem>) {
    if uri.contains('*') {
        out.push(warning(
            field,
            "wildcards are never matched: redirect URIs are compared exactly (RFC 9700 §4.1.3)"
                .into(),
        ));
    }
    match Url::parse(uri) {
        Ok(u) => {
            // RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
            if u.fragment().is_some() {
                out.push(error(
                    field,
                    "must not contain a fragment (#…) (RFC 6749 §3.1.2)".into(),
                ));
            }
            if u.scheme() == "http" && !is_loopback(&u) {
                out.push(error(
                    field,
                    "http: is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https (RFC 9700 §2.6)".into(),
                ));
            }
            if u.scheme() == "javascript" || u.scheme() == "data" {
                out.push(error(
                    field,
                    "this scheme can run script and is never allowed".into(),
                ));
            }
        }
        Err(e) => out.push(error(field, format!("`{uri}` is not an absolute URI: {e}"))),
    }
}

/// Back-Channel Logout 1.0 section 2.2: an absolute URL without a fragment. Latchkey POSTs
/// Logout Tokens to it, so it must be https, or http to a loopback host (as redirect URIs).
fn check_backchannel_logout_uri(uri: &str, field: &str, out: &mut Vec<Problem>) {
    match Url::parse(uri) {
        Ok(u) => {
            if u.fragment().is_some() {
                out.push(error(
                    field,
                    "must not contain a fragment (#...) (OpenID Connect Back-Channel Logout 1.0 section 2.2)".into(),
                ));
            }
            match u.scheme() {
                "https" if u.host().is_some() => {}
                "http" if is_loopback(&u) => {}
                "http" => out.push(error(
                    field,
                    "http: is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https".into(),
                )),
                _ => out.push(error(
                    field,
                    format!("`{uri}` is not an https URL"),
                )),
            }
        }
        Err(e) => out.push(error(field, format!("`{uri}` is not an absolute URL: {e}"))),
    }
}

impl Theme {
    fn validate(&self, out: &mut Vec<Problem>) {
        if let Some(logo) = &self.logo_url {
            // The pages' CSP is `img-src 'self' https: data:`: any other image is blocked.
            let ok = match Url::parse(logo) {
                Ok(u) => {
                    u.scheme() == "https"
                        || (u.scheme() == "data" && u.path().starts_with("image/"))
                }
                Err(_) => logo.starts_with('/') && !logo.starts_with("//"),
            };
            if !ok {
                out.push(error(
                    "theme.logo_url",
                    format!(
                        "`{logo}` would be blocked by the pages' Content-Security-Policy (img-src 'self' https: data:): use an https:// URL, a data:image/ URL or a path on this server"
                    ),
                ));
            }
        }
        // It is written into a style sheet: only a hex colour, nothing that could end the rule.
        let c = self.accent_color.as_bytes();
        let hex =
            matches!(c.len(), 4 | 7) && c[0] == b'#' && c[1..].iter().all(u8::is_ascii_hexdigit);
        if !hex {
            out.push(error(
                "theme.accent_color",
                format!(
                    "`{}` is not a hex colour: use #rgb or #rrggbb, e.g. \"#2f5bd3\"",
                    self.accent_color
                ),
            ));
        }
    }
}
