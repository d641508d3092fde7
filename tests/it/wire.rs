//! The wire format, pinned with `insta` snapshots (tests/it/snapshots/): every JSON error
//! body, discovery, the token, introspection and UserInfo responses, and the HTML error
//! pages, as a client sees them over HTTP from a real server.
//!
//! SQLite only: the store is behind the handlers and never shapes a response (both_stores!
//! tests elsewhere check the behaviour on both), and one backend means one set of snapshots
//! that cannot disagree with itself. Values that change from run to run (the random port in
//! the base URL, tokens, ids, times, keys, CSRF values) are replaced with placeholders
//! before snapshotting; everything else is pinned byte for byte.
//!
//! To accept a deliberate change of the wire: `INSTA_UPDATE=always cargo test --test it
//! wire`, then read every changed `.snap` (git diff). Under CI=true insta never writes a
//! snapshot, and a missing or different one fails the test.

use serde_json::{Map, Value, json};

use crate::common::{Backend, RS_SECRET, SERVICE_SECRET, TestApp, WEB_SECRET, hidden};
use crate::flows::{exchange, get_code};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The headers a client acts on; any other header is not part of what we pin here.
const PINNED_HEADERS: [&str; 5] = [
    "content-type",
    "cache-control",
    "pragma",
    "www-authenticate",
    "retry-after",
];

/// JWT claims (and header fields) whose values change from run to run.
const VOLATILE_CLAIMS: [&str; 11] = [
    "iat",
    "exp",
    "nbf",
    "auth_time",
    "jti",
    "sid",
    "sub",
    "grant_id",
    "at_hash",
    "c_hash",
    "iss",
];

async fn app() -> TestApp {
    TestApp::spawn(Backend::Sqlite)
        .await
        .expect("SQLite is always there")
}

/// Status, pinned headers and JSON body of a response, with the base URL replaced.
async fn capture(app: &TestApp, r: reqwest::Response) -> Value {
    let status = r.status().as_u16();
    let mut headers = Map::new();
    for h in PINNED_HEADERS {
        if let Some(v) = r.headers().get(h) {
            headers.insert(h.into(), v.to_str().expect("ascii header").into());
        }
    }
    let text = r.text().await.expect("body");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
    unbase(
        app,
        json!({"status": status, "headers": headers, "body": body}),
    )
}

/// Replace the server's base URL (random port) everywhere in a JSON value.
fn unbase(app: &TestApp, v: Value) -> Value {
    let s = serde_json::to_string(&v)
        .expect("serialize")
        .replace(&app.base, "[BASE]");
    serde_json::from_str(&s).expect("reparse")
}

fn b64(s: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON segment")
}

/// A JWT as its decoded header and claims, with volatile values redacted; the signature is
/// dropped.
fn jwt_view(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS compact serialization: {token}");
    let mut header = b64(parts[0]);
    if header.get("kid").is_some() {
        header["kid"] = "[kid]".into();
    }
    let mut claims = b64(parts[1]);
    for c in VOLATILE_CLAIMS {
        if let Some(v) = claims.get_mut(c) {
            *v = format!("[{c}]").into();
        }
    }
    json!({"header": header, "claims": claims})
}

/// A token response with every token replaced by its redacted decoded form (JWTs) or a
/// placeholder (opaque refresh tokens), and the base URL replaced inside them too.
fn token_view(app: &TestApp, mut v: Value) -> Value {
    let body = &mut v["body"];
    for t in ["access_token", "id_token"] {
        if let Some(s) = body.get(t).and_then(Value::as_str) {
            body[t] = jwt_view(s);
        }
    }
    if body.get("refresh_token").is_some() {
        body["refresh_token"] = "[refresh_token]".into();
    }
    unbase(app, v)
}

async fn basic(app: &TestApp, path: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> Value {
    let r = app
        .http
        .post(app.url(path))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("request");
    capture(app, r).await
}

async fn anonymous(app: &TestApp, path: &str, form: &[(&str, &str)]) -> Value {
    let r = app.post_form(path, form).await;
    capture(app, r).await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_errors() {
    let app = app().await;
    let web = |form: &'static [(&'static str, &'static str)]| {
        let app = &app;
        async move { basic(app, "/token", "web", WEB_SECRET, form).await }
    };
    insta::assert_json_snapshot!("token_missing_grant_type", web(&[]).await);
    insta::assert_json_snapshot!(
        "token_missing_code",
        web(&[("grant_type", "authorization_code")]).await
    );
    insta::assert_json_snapshot!(
        "token_unsupported_grant_type",
        web(&[("grant_type", "magic")]).await
    );
    insta::assert_json_snapshot!(
        "token_unauthorized_client",
        web(&[("grant_type", "client_credentials")]).await
    );
    insta::assert_json_snapshot!(
        "token_invalid_grant_bad_code",
        web(&[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", crate::common::WEB_REDIRECT),
            ("code_verifier", crate::flows::VERIFIER),
        ])
        .await
    );
    insta::assert_json_snapshot!(
        "token_duplicate_parameter",
        capture(
            &app,
            app.http
                .post(app.url("/token"))
                .basic_auth("web", Some(WEB_SECRET))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=authorization_code&code=a&code=b")
                .send()
                .await
                .expect("request"),
        )
        .await
    );
    insta::assert_json_snapshot!(
        "token_not_a_form",
        capture(
            &app,
            app.http
                .post(app.url("/token"))
                .basic_auth("web", Some(WEB_SECRET))
                .json(&json!({"grant_type": "client_credentials"}))
                .send()
                .await
                .expect("request"),
        )
        .await
    );
    insta::assert_json_snapshot!(
        "token_invalid_client_basic",
        basic(
            &app,
            "/token",
            "web",
            "wrong",
            &[("grant_type", "authorization_code"), ("code", "x")]
        )
        .await
    );
    insta::assert_json_snapshot!(
        "token_invalid_client_no_credentials",
        anonymous(
            &app,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody")
            ]
        )
        .await
    );
    insta::assert_json_snapshot!(
        "token_invalid_scope",
        basic(
            &app,
            "/token",
            "service",
            SERVICE_SECRET,
            &[("grant_type", "client_credentials"), ("scope", "admin")]
        )
        .await
    );
    insta::assert_json_snapshot!(
        "token_password_invalid_grant",
        basic(
            &app,
            "/token",
            "legacy",
            crate::common::LEGACY_SECRET,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "wrong"),
                ("scope", "openid"),
            ]
        )
        .await
    );
}

/// Past `max_failures_per_client` failed authentications a client is throttled: 429 with
/// Retry-After (the test clock stands still, so the seconds are fixed). A generated secret
/// costs nothing to check, so this takes no argon2 and no waiting.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn token_throttled() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.client_auth.max_failures_per_client = 2;
    })
    .await
    .expect("SQLite is always there");
    let mut last = Value::Null;
    for _ in 0..3 {
        last = basic(
            &app,
            "/token",
            "service",
            "wrong",
            &[("grant_type", "client_credentials")],
        )
        .await;
    }
    assert_eq!(last["status"], 429, "{last}");
    insta::assert_json_snapshot!("token_throttled", last);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_and_introspect_errors() {
    let app = app().await;
    insta::assert_json_snapshot!(
        "revoke_unsupported_token_type",
        basic(
            &app,
            "/revoke",
            "web",
            WEB_SECRET,
            &[("token", "unknown"), ("token_type_hint", "id_token")]
        )
        .await
    );
    insta::assert_json_snapshot!(
        "revoke_missing_token",
        basic(&app, "/revoke", "web", WEB_SECRET, &[]).await
    );
    insta::assert_json_snapshot!(
        "revoke_unknown_token",
        basic(&app, "/revoke", "web", WEB_SECRET, &[("token", "unknown")]).await
    );
    insta::assert_json_snapshot!(
        "revoke_invalid_client",
        anonymous(&app, "/revoke", &[("token", "unknown")]).await
    );
    insta::assert_json_snapshot!(
        "introspect_missing_token",
        basic(&app, "/introspect", "rs", RS_SECRET, &[]).await
    );
    insta::assert_json_snapshot!(
        "introspect_invalid_client",
        anonymous(&app, "/introspect", &[("token", "unknown")]).await
    );
    insta::assert_json_snapshot!(
        "introspect_public_client",
        anonymous(
            &app,
            "/introspect",
            &[("token", "unknown"), ("client_id", "tv")]
        )
        .await
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_errors() {
    let app = app().await;
    let userinfo = |bearer: Option<String>| {
        let app = &app;
        async move {
            let mut r = app.http.get(app.url("/userinfo"));
            if let Some(b) = bearer {
                r = r.bearer_auth(b);
            }
            let r = r.send().await.expect("userinfo");
            // A Bearer challenge may come with an empty body; pin what is there.
            let status = r.status().as_u16();
            let mut headers = Map::new();
            for h in PINNED_HEADERS {
                if let Some(v) = r.headers().get(h) {
                    headers.insert(h.into(), v.to_str().expect("ascii").into());
                }
            }
            let text = r.text().await.expect("body");
            let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
            unbase(
                app,
                json!({"status": status, "headers": headers, "body": body}),
            )
        }
    };
    insta::assert_json_snapshot!("userinfo_no_token", userinfo(None).await);
    insta::assert_json_snapshot!(
        "userinfo_invalid_token",
        userinfo(Some("not-a-token".into())).await
    );
    let t = basic(
        &app,
        "/token",
        "service",
        SERVICE_SECRET,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = t["body"]["access_token"].as_str().expect("at").to_owned();
    insta::assert_json_snapshot!("userinfo_insufficient_scope", userinfo(Some(at)).await);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn device_errors() {
    let app = app().await;
    insta::assert_json_snapshot!(
        "device_code_unauthorized_client",
        basic(
            &app,
            "/device/code",
            "web",
            WEB_SECRET,
            &[("scope", "openid")]
        )
        .await
    );
    insta::assert_json_snapshot!(
        "device_code_invalid_client",
        anonymous(&app, "/device/code", &[("client_id", "nope")]).await
    );
    insta::assert_json_snapshot!(
        "device_code_invalid_scope",
        anonymous(
            &app,
            "/device/code",
            &[("client_id", "tv"), ("scope", "admin")]
        )
        .await
    );
    let start = |scope: &'static str| {
        let app = &app;
        async move {
            let v = anonymous(
                app,
                "/device/code",
                &[("client_id", "tv"), ("scope", scope)],
            )
            .await;
            assert_eq!(v["status"], 200, "{v}");
            v
        }
    };
    let d = start("openid").await;
    insta::assert_json_snapshot!("device_code_ok", d, {
        ".body.device_code" => "[device_code]",
        ".body.user_code" => "[user_code]",
        ".body.verification_uri_complete" => "[verification_uri_complete]",
    });
    let poll = |device_code: String| {
        let app = &app;
        async move {
            anonymous(
                app,
                "/token",
                &[
                    ("grant_type", DEVICE_GRANT),
                    ("client_id", "tv"),
                    ("device_code", &device_code),
                ],
            )
            .await
        }
    };
    let dc = d["body"]["device_code"].as_str().expect("dc").to_owned();
    insta::assert_json_snapshot!("device_authorization_pending", poll(dc.clone()).await);
    insta::assert_json_snapshot!("device_slow_down", poll(dc.clone()).await);
    app.clock.advance(601);
    insta::assert_json_snapshot!("device_expired_token", poll(dc).await);
    insta::assert_json_snapshot!("device_unknown_code", poll("no-such-code".into()).await);

    let d = start("openid").await;
    let done = crate::flows::approve(
        &app.base,
        d["body"]["user_code"].as_str().expect("user_code"),
        "deny",
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let dc = d["body"]["device_code"].as_str().expect("dc").to_owned();
    insta::assert_json_snapshot!("device_access_denied", poll(dc).await);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents() {
    let app = app().await;
    for (name, path) in [
        (
            "discovery_openid_configuration",
            "/.well-known/openid-configuration",
        ),
        (
            "discovery_oauth_authorization_server",
            "/.well-known/oauth-authorization-server",
        ),
    ] {
        let r = app.http.get(app.url(path)).send().await.expect("discovery");
        insta::assert_json_snapshot!(name, capture(&app, r).await);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn successful_responses() {
    let app = app().await;
    // client_credentials, and introspection of that token (active), then of nothing.
    let cc = basic(
        &app,
        "/token",
        "service",
        SERVICE_SECRET,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let cc_at = cc["body"]["access_token"].as_str().expect("at").to_owned();
    insta::assert_json_snapshot!("token_client_credentials", token_view(&app, cc));
    let introspect = |token: String| {
        let app = &app;
        async move {
            let mut v = basic(app, "/introspect", "rs", RS_SECRET, &[("token", &token)]).await;
            for c in VOLATILE_CLAIMS {
                if let Some(x) = v["body"].get_mut(c) {
                    *x = format!("[{c}]").into();
                }
            }
            v
        }
    };
    insta::assert_json_snapshot!(
        "introspect_active_client_credentials",
        introspect(cc_at).await
    );
    insta::assert_json_snapshot!("introspect_inactive", introspect("unknown".into()).await);

    // authorization_code with openid offline_access, then refresh.
    let i = get_code(&app, "openid offline_access").await;
    let code = capture(&app, exchange(&app, &i).await).await;
    assert_eq!(code["status"], 200, "{code}");
    let rt = code["body"]["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    let at = code["body"]["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    insta::assert_json_snapshot!("token_authorization_code", token_view(&app, code));
    insta::assert_json_snapshot!("introspect_active_user_token", introspect(at.clone()).await);
    let r = app.refresh_web(&rt).await;
    let refreshed = capture(&app, r).await;
    assert_eq!(refreshed["status"], 200, "{refreshed}");
    let new_rt = refreshed["body"]["refresh_token"]
        .as_str()
        .expect("rotated rt")
        .to_owned();
    insta::assert_json_snapshot!("token_refresh", token_view(&app, refreshed));
    // The rotated-out refresh token is dead; the new one is active.
    insta::assert_json_snapshot!("introspect_used_refresh_token", introspect(rt).await);
    insta::assert_json_snapshot!("introspect_refresh_token", introspect(new_rt).await);
    insta::assert_json_snapshot!(
        "revoke_ok",
        basic(&app, "/revoke", "web", WEB_SECRET, &[("token", &at)]).await
    );

    // UserInfo with every scope the client may ask for.
    let i = get_code(&app, "openid profile email address phone").await;
    let t = capture(&app, exchange(&app, &i).await).await;
    let at = t["body"]["access_token"].as_str().expect("at").to_owned();
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .expect("userinfo");
    insta::assert_json_snapshot!("userinfo_ok", capture(&app, r).await, {
        ".body.sub" => "[sub]",
        // When the user row was written: the server's start, not the test clock.
        ".body.updated_at" => "[updated_at]",
    });
}

/// Status, pinned headers and body of an HTML page, with the base URL replaced (the CSRF
/// and interaction values are filtered by `assert_html_snapshot!`).
async fn html_page(app: &TestApp, r: reqwest::Response) -> String {
    let mut out = format!("status: {}\n", r.status().as_u16());
    for h in PINNED_HEADERS {
        if let Some(v) = r.headers().get(h) {
            out += &format!("{h}: {}\n", v.to_str().expect("ascii"));
        }
    }
    let body = r.text().await.expect("body").replace(&app.base, "[BASE]");
    format!("{out}\n{body}")
}

macro_rules! assert_html_snapshot {
    ($name:expr, $page:expr) => {{
        let page: String = $page;
        insta::with_settings!({filters => vec![
            (r#"name="csrf" value="[^"]*""#, r#"name="csrf" value="[csrf]""#),
            (r#"name="interaction" value="[^"]*""#, r#"name="interaction" value="[interaction]""#),
        ]}, {
            insta::assert_snapshot!($name, page);
        })
    }};
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn html_error_pages() {
    let app = app().await;
    let authorize = |q: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            let r = app
                .http
                .get(app.url("/authorize"))
                .query(&q)
                .send()
                .await
                .expect("authorize");
            html_page(app, r).await
        }
    };
    assert_html_snapshot!(
        "html_authorize_unknown_client",
        authorize(vec![
            ("response_type", "code"),
            ("client_id", "nobody"),
            ("redirect_uri", crate::common::WEB_REDIRECT),
        ])
        .await
    );
    assert_html_snapshot!(
        "html_authorize_bad_redirect_uri",
        authorize(vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .await
    );

    // The login page, then its form submitted with a wrong CSRF value, then too late.
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", crate::common::WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "xyz"),
            ("code_challenge", crate::flows::CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    let login = r.text().await.expect("login page");
    let interaction = hidden(&login, "interaction");
    let csrf = hidden(&login, "csrf");
    let submit = |csrf: String| {
        let (app, interaction) = (&app, interaction.clone());
        async move {
            let r = app
                .post_form(
                    "/login",
                    &[
                        ("csrf", &csrf),
                        ("interaction", &interaction),
                        ("username", "alice"),
                        ("password", crate::common::PASSWORD),
                    ],
                )
                .await;
            html_page(app, r).await
        }
    };
    assert_html_snapshot!("html_csrf_failed", submit("forged".into()).await);
    app.clock
        .advance(app.state.config.sessions.interaction_ttl + 1);
    assert_html_snapshot!("html_sign_in_expired", submit(csrf).await);
}

crate::tests!(
    token_endpoint_errors,
    token_throttled,
    revoke_and_introspect_errors,
    userinfo_errors,
    device_errors,
    discovery_documents,
    successful_responses,
    html_error_pages,
);
