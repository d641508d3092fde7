//! Flows that scenario modules share: a finished code flow and its exchange, the device flow
//! from both sides, the command line against a test server, and reading a JWT. Each scenario
//! module imports these from here, never from another scenario module.

use std::process::Output;

use serde_json::Value;

use crate::browser::authorize;
use crate::common::{
    PASSWORD, TestApp, WEB_REDIRECT, WEB_SECRET, browser_client, config_toml, hidden, json, param,
};

// The authorization code flow.

/// The raw pieces of a finished code flow for the `web` client.
pub struct Issued {
    pub code: String,
    pub verifier: String,
}

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub async fn get_code(app: &TestApp, scope: &str) -> Issued {
    let done = authorize(
        app,
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", scope),
            ("state", "xyz"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "alice",
    )
    .await;
    Issued {
        code: param(&done.params, "code").expect("code").to_owned(),
        verifier: VERIFIER.into(),
    }
}

pub async fn exchange(app: &TestApp, i: &Issued) -> reqwest::Response {
    app.token_basic(
        "web",
        WEB_SECRET,
        &[
            ("grant_type", "authorization_code"),
            ("code", &i.code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &i.verifier),
        ],
    )
    .await
}

// The device flow (RFC 8628): the device's requests and the person's pages.

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What a page answered.
pub struct Page {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

/// The status, Retry-After and body of a device page.
pub async fn page(r: reqwest::Response) -> Page {
    Page {
        status: r.status().as_u16(),
        retry_after: r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii").to_owned()),
        body: r.text().await.expect("body"),
    }
}

/// Open /device and submit `typed` as the code.
pub async fn enter_code(base: &str, browser: &reqwest::Client, typed: &str) -> Page {
    let entry = page(
        browser
            .get(format!("{base}/device"))
            .send()
            .await
            .expect("GET /device"),
    )
    .await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    page(
        browser
            .post(format!("{base}/device"))
            .form(&[
                ("csrf", hidden(&entry.body, "csrf")),
                ("user_code", typed.into()),
            ])
            .send()
            .await
            .expect("POST /device"),
    )
    .await
}

/// Sign in on the device login page.
pub async fn sign_in(base: &str, browser: &reqwest::Client, login: &Page, password: &str) -> Page {
    assert!(
        login.body.contains("action=\"/device/login\""),
        "expected the login page: {}",
        login.body
    );
    page(
        browser
            .post(format!("{base}/device/login"))
            .form(&[
                ("csrf", hidden(&login.body, "csrf").as_str()),
                ("user_code", &hidden(&login.body, "user_code")),
                ("username", "alice"),
                ("password", password),
            ])
            .send()
            .await
            .expect("POST /device/login"),
    )
    .await
}

/// Press Allow or Deny on the confirmation page.
pub async fn decide(base: &str, browser: &reqwest::Client, confirm: &Page, decision: &str) -> Page {
    assert!(
        confirm.body.contains("action=\"/device/confirm\""),
        "expected the confirmation page: {}",
        confirm.body
    );
    page(
        browser
            .post(format!("{base}/device/confirm"))
            .form(&[
                ("csrf", hidden(&confirm.body, "csrf").as_str()),
                ("user_code", &hidden(&confirm.body, "user_code")),
                ("decision", decision),
            ])
            .send()
            .await
            .expect("POST /device/confirm"),
    )
    .await
}

/// The whole person's side: enter the code, sign in, confirm. Returns the final page.
pub async fn approve(base: &str, user_code: &str, decision: &str) -> Page {
    let b = browser_client();
    let login = enter_code(base, &b, user_code).await;
    let confirm = sign_in(base, &b, &login, PASSWORD).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    decide(base, &b, &confirm, decision).await
}

/// POST /device/code for the public `tv` client.
pub async fn start(app: &TestApp, scope: &str) -> Value {
    let r = app
        .post_form("/device/code", &[("client_id", "tv"), ("scope", scope)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("cache-control").expect("cache-control"),
        "no-store"
    );
    json(r).await
}

pub async fn poll(app: &TestApp, device_code: &str) -> (u16, Value) {
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", "tv"),
                ("device_code", device_code),
            ],
        )
        .await;
    let status = r.status().as_u16();
    // RFC 8628 §3.5 answers are token responses: never cached.
    assert_eq!(
        r.headers().get("cache-control").expect("cache-control"),
        "no-store"
    );
    (status, json(r).await)
}

/// A wrong code sent through a proxy that says the client is `client`.
pub async fn wrong_code_via_proxy(app: &TestApp, client: &str) -> u16 {
    code_via_proxy(
        app,
        &browser_client(),
        "BCDF-BCDF",
        &format!("198.51.100.1, {client}"),
    )
    .await
}

/// `code` typed on the entry page by `browser`, through a proxy that sends this
/// X-Forwarded-For; the status of the answer.
pub async fn code_via_proxy(
    app: &TestApp,
    browser: &reqwest::Client,
    code: &str,
    forwarded_for: &str,
) -> u16 {
    let entry = browser
        .get(app.url("/device"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    browser
        .post(app.url("/device"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("csrf", hidden(&entry, "csrf").as_str()),
            ("user_code", code),
        ])
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

// The command line.

/// Run `latchkey --config <the app's config> args...`.
pub async fn latchkey(app: &TestApp, args: &[&str]) -> Output {
    let config = app.state.config.data_dir.join("cli.toml");
    std::fs::write(
        &config,
        config_toml(
            &app.state.config.database_url,
            &app.state.config.data_dir.display().to_string(),
        ),
    )
    .expect("write config");
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("--config")
            .arg(&config)
            .args(&args)
            .env("LATCHKEY_LOG", "warn")
            .output()
            .expect("run latchkey")
    })
    .await
    .expect("join")
}

// Tokens.

/// The header and the claims of a compact JWT, unverified.
pub fn decode_jwt(t: &str) -> (Value, Value) {
    use base64::Engine;
    let d = |s: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .expect("b64"),
        )
        .expect("json")
    };
    let mut parts = t.split('.');
    (d(parts.next().expect("h")), d(parts.next().expect("p")))
}
