//! GET /demo/callback: where the DEMO clients of the example config are sent back to, so
//! the authorization-code example of the README works without an app listening anywhere.
//! It shows the code (or the error) and the curl command that redeems it for demo-web.
//!
//! Served only while DEMO entries are configured and the issuer is a loopback address (the
//! config already refuses DEMO entries on any other issuer; this does not rely on that).
//! Everything shown comes from the query string, which anyone can write: askama escapes it
//! for the page, and the code is single-quoted for the shell in the curl command.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::respond::page;
use super::views::{DemoCallbackPage, Theme};
use crate::config::{Config, is_loopback};
use crate::state::AppState;

/// The DEMO secret of demo-web, published in config/latchkey.toml.
pub const DEMO_WEB_SECRET: &str = "demo-web-secret-change-me-0123456789abcdefghij";

/// Whether GET /demo/callback is served: DEMO entries, on a loopback issuer.
pub fn enabled(config: &Config) -> bool {
    !config.demo_entries().is_empty()
        && url::Url::parse(&config.issuer).is_ok_and(|u| is_loopback(&u))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `s` as one single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub async fn callback(State(state): State<AppState>, Query(q): Query<CallbackQuery>) -> Response {
    let issuer = state.config.issuer.trim_end_matches('/');
    let redirect_uri = format!("{issuer}/demo/callback");
    let curl = q.code.as_deref().map(|code| {
        format!(
            "curl -s -u demo-web:{DEMO_WEB_SECRET} \\\n  -d grant_type=authorization_code \
             --data-urlencode {} \\\n  -d redirect_uri={redirect_uri} -d code_verifier=$VERIFIER \
             \\\n  {issuer}/token",
            shell_quote(&format!("code={code}"))
        )
    });
    page(
        StatusCode::OK,
        &DemoCallbackPage {
            theme: Theme::from(&state),
            code: q.code.as_deref(),
            state: q.state.as_deref(),
            error: q.error.as_deref(),
            error_description: q.error_description.as_deref(),
            code_ttl: state.config.tokens.code_ttl,
            curl: curl.as_deref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_the_one_the_example_config_publishes() {
        let example = include_str!("../../config/latchkey.toml");
        assert!(example.contains(&format!("DEMO secret (published here): {DEMO_WEB_SECRET}")));
        let (c, _) = Config::from_toml(example, &[]).expect("the example loads");
        assert!(enabled(&c));
        let web = c.clients.iter().find(|c| c.client_id == "demo-web");
        let uris = &web.expect("demo-web").redirect_uris;
        assert!(
            uris.iter()
                .any(|u| u == "http://127.0.0.1:8080/demo/callback")
        );
    }

    #[test]
    fn shell_quoting_keeps_one_word() {
        assert_eq!(shell_quote("code=a'b$(x)"), r"'code=a'\''b$(x)'");
    }
}
