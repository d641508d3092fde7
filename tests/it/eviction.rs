//! An admin takes an account back: a password change, a disable, `user revoke-sessions` and
//! `user remove` end what the user held, over HTTP, driven through the real CLI binary.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::browser::authorize;
use crate::common::{
    Backend, PASSWORD, RS_SECRET, TestApp, WEB_REDIRECT, config_toml, json, param,
};
use crate::flows::{CHALLENGE, Issued, VERIFIER, exchange};

/// What the CLI printed and how it ended.
struct Ran {
    ok: bool,
    out: String,
}

/// Run the `latchkey` binary against this server's store, with `stdin` as its input.
async fn cli(app: &TestApp, args: &[&str], stdin: &str) -> Ran {
    let dir = app.state.config.data_dir.clone();
    let path = dir.join("cli.toml");
    std::fs::write(
        &path,
        config_toml(&app.state.config.database_url, &dir.display().to_string()),
    )
    .expect("write config");
    let (args, stdin): (Vec<String>, String) = (
        args.iter().map(|a| a.to_string()).collect(),
        stdin.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("--config")
            .arg(&path)
            .args(&args)
            .env("LATCHKEY_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run latchkey");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let o = child.wait_with_output().expect("wait");
        Ran {
            ok: o.status.success(),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    })
    .await
    .expect("join")
}

/// A user the CLI owns (the test config's users belong to the config file).
async fn add_carol(app: &TestApp) {
    let r = cli(app, &["user", "add", "carol", "--password-stdin"], PASSWORD).await;
    assert!(r.ok, "{}", r.out);
}

/// Carol's tokens from a code flow in `app.http`'s browser, which keeps her session.
async fn carol_tokens(app: &TestApp) -> Value {
    let done = authorize(
        app,
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid offline_access"),
            ("nonce", "n"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "carol",
    )
    .await;
    let issued = Issued {
        code: param(&done.params, "code").expect("code").to_owned(),
        verifier: VERIFIER.into(),
    };
    let t = json(exchange(app, &issued).await).await;
    assert!(t["refresh_token"].is_string(), "{t}");
    t
}

async fn introspect(app: &TestApp, token: &str) -> bool {
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(RS_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    json(r).await["active"] == true
}

async fn refresh_works(app: &TestApp, t: &Value) -> bool {
    app.refresh_web(t["refresh_token"].as_str().expect("rt"))
        .await
        .status()
        == 200
}

async fn userinfo_status(app: &TestApp, t: &Value) -> u16 {
    app.http
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("userinfo")
        .status()
        .as_u16()
}

/// `prompt=none` with the browser's session: a code, or `login_required`.
async fn silent_code(app: &TestApp) -> Option<String> {
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid offline_access"),
            ("prompt", "none"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    let (_, params) = crate::common::location_params(&r);
    param(&params, "code").map(str::to_owned)
}

/// The CLI runs on the wall clock, the server on a manual one that started at the same
/// moment: move the server past the CLI's revocation before issuing anything new.
fn after_the_cli(app: &TestApp) {
    let wall = latchkey::clock::Clock::System.now();
    let behind = wall - app.clock.now();
    app.clock.advance(behind.max(0) + 2);
}

async fn a_password_change_signs_the_user_out_everywhere(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    add_carol(&app).await;
    let t = carol_tokens(&app).await;
    assert!(introspect(&app, t["access_token"].as_str().expect("at")).await);
    assert!(
        silent_code(&app).await.is_some(),
        "the session signs in silently"
    );

    // --keep-sessions keeps them.
    let r = cli(
        &app,
        &[
            "user",
            "set-password",
            "carol",
            "--password-stdin",
            "--keep-sessions",
        ],
        "another password 1",
    )
    .await;
    assert!(r.ok, "{}", r.out);
    assert!(refresh_works(&app, &t).await);
    // The refresh above rotated the token: start again from a fresh pair.
    let t = carol_tokens(&app).await;

    let r = cli(
        &app,
        &["user", "set-password", "carol", "--password-stdin"],
        "another password 2",
    )
    .await;
    assert!(r.ok, "{}", r.out);
    assert!(r.out.contains("signed out everywhere"), "{}", r.out);
    assert!(
        !refresh_works(&app, &t).await,
        "the old refresh token is dead"
    );
    assert!(!introspect(&app, t["access_token"].as_str().expect("at")).await);
    assert!(!introspect(&app, t["refresh_token"].as_str().expect("rt")).await);
    assert_eq!(userinfo_status(&app, &t).await, 401);
    after_the_cli(&app);
    assert_eq!(silent_code(&app).await, None, "the browser session ended");
}

async fn disabling_revokes_and_enabling_revives_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    add_carol(&app).await;
    let t = carol_tokens(&app).await;
    let r = cli(&app, &["user", "disable", "carol"], "").await;
    assert!(r.ok, "{}", r.out);
    for token in ["access_token", "refresh_token"] {
        assert!(
            !introspect(&app, t[token].as_str().expect("token")).await,
            "{token} of a disabled user is inactive"
        );
    }
    let r = cli(&app, &["user", "enable", "carol"], "").await;
    assert!(r.ok, "{}", r.out);
    for token in ["access_token", "refresh_token"] {
        assert!(
            !introspect(&app, t[token].as_str().expect("token")).await,
            "{token} from before the disable stays dead"
        );
    }
    assert!(!refresh_works(&app, &t).await);
    assert_eq!(userinfo_status(&app, &t).await, 401);
    // Carol herself can sign in again and gets working tokens.
    after_the_cli(&app);
    let fresh = carol_tokens(&app).await;
    assert!(introspect(&app, fresh["access_token"].as_str().expect("at")).await);
}

async fn revoke_sessions_and_remove(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    add_carol(&app).await;
    let t = carol_tokens(&app).await;
    let r = cli(&app, &["user", "revoke-sessions", "carol"], "").await;
    assert!(r.ok, "{}", r.out);
    assert!(!refresh_works(&app, &t).await);
    assert!(!introspect(&app, t["access_token"].as_str().expect("at")).await);
    after_the_cli(&app);
    assert_eq!(silent_code(&app).await, None);

    let t = carol_tokens(&app).await;
    let r = cli(&app, &["user", "remove", "carol"], "").await;
    assert!(r.ok, "{}", r.out);
    assert!(!refresh_works(&app, &t).await);
    assert!(!introspect(&app, t["access_token"].as_str().expect("at")).await);
    let list = cli(&app, &["user", "list"], "").await;
    assert!(!list.out.contains("carol"), "{}", list.out);
    let r = cli(&app, &["user", "remove", "carol"], "").await;
    assert!(!r.ok && r.out.contains("no user carol"), "{}", r.out);
}

/// What the config file owns, the CLI refuses to change (the file would undo it at the next
/// start), naming the file; signing out everywhere is still allowed.
async fn config_users_belong_to_the_config_file(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    for args in [
        vec!["user", "set-password", "alice", "--password-stdin"],
        vec!["user", "disable", "alice"],
        vec!["user", "enable", "bob"],
        vec!["user", "remove", "alice"],
    ] {
        let r = cli(&app, &args, "a new password").await;
        assert!(!r.ok, "{args:?}: {}", r.out);
        assert!(
            r.out.contains("cli.toml") && r.out.contains("[[users]]"),
            "{args:?}: {}",
            r.out
        );
    }
    let r = cli(&app, &["user", "revoke-sessions", "alice"], "").await;
    assert!(r.ok, "{}", r.out);

    // A user removed from the config is disabled at the next start, like a client.
    let mut config = (*app.state.config).clone();
    config.users.retain(|u| u.username != "alice");
    let now = app.clock.now() + 10;
    latchkey::app::bootstrap(&config, &app.state.core.store, now)
        .await
        .expect("bootstrap");
    let alice = app
        .state
        .core
        .store
        .find_user_by_login("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert!(alice.disabled);
    app.clock.advance(10);
    let r = app
        .token_basic(
            "legacy",
            crate::common::LEGACY_SECRET,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");
}

/// Tokens of a client that has been disabled are inactive at introspection.
async fn tokens_of_a_disabled_client_are_inactive(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| c.cache.clients_seconds = 0).await else {
        return;
    };
    add_carol(&app).await;
    let t = carol_tokens(&app).await;
    let store = &app.state.core.store;
    let mut web = store.get_client("web").await.expect("get").expect("web");
    web.enabled = false;
    store
        .upsert_client(&web, app.clock.now())
        .await
        .expect("disable");
    for token in ["access_token", "refresh_token"] {
        assert!(
            !introspect(&app, t[token].as_str().expect("token")).await,
            "{token}"
        );
    }
}

/// A login that was still being checked when the admin acted creates its session after the
/// sweep: it is refused when used, because it authenticated before the revocation.
async fn a_login_racing_a_revocation_does_not_survive_it(b: Backend) {
    use latchkey::model::Session;
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let store = &app.state.core.store;
    let alice = store
        .find_user_by_login("alice")
        .await
        .expect("lookup")
        .expect("alice");
    let began = app.clock.now();
    store.revoke_user(&alice.id, began).await.expect("revoke");
    let session = |id: &str, auth_time: i64| Session {
        id_hash: id.into(),
        sid: format!("sid-{id}"),
        user_id: alice.id.clone(),
        auth_time,
        amr: vec!["pwd".into()],
        created_at: began + 1,
        last_seen_at: began + 1,
        expires_at: began + 3600,
        mfa_at: None,
        ip: None,
        user_agent: None,
    };
    store
        .insert_session(&session("raced", began))
        .await
        .expect("insert");
    store
        .insert_session(&session("after", began + 1))
        .await
        .expect("insert");
    let get = |id: &'static str| store.get_session(id, began + 1, 3600);
    assert!(get("raced").await.expect("get").is_none());
    assert!(get("after").await.expect("get").is_some());
}

crate::both_stores!(
    a_login_racing_a_revocation_does_not_survive_it,
    a_password_change_signs_the_user_out_everywhere,
    disabling_revokes_and_enabling_revives_nothing,
    revoke_sessions_and_remove,
    config_users_belong_to_the_config_file,
    tokens_of_a_disabled_client_are_inactive,
);
