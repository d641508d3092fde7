//! OIDC RP-Initiated Logout 1.0 at /logout: straight through with a valid id_token_hint, a
//! confirmation page otherwise, redirects only to registered URIs.

use crate::browser::through_pages;
use crate::common::{Backend, TestApp, WEB_REDIRECT, hidden, json};
use crate::flows::{exchange, get_code};

const AFTER: &str = "http://localhost:3000/";

/// Sign alice in to `web`; returns (id_token, refresh_token). The refresh token is one of
/// the browser session (no `offline_access`): `app` issues those (`online_refresh`).
async fn sign_in(app: &TestApp) -> (String, String) {
    sign_in_for(app, "openid").await
}

async fn sign_in_for(app: &TestApp, scope: &str) -> (String, String) {
    let issued = get_code(app, scope).await;
    let t = json(exchange(app, &issued).await).await;
    (
        t["id_token"].as_str().expect("id_token").to_owned(),
        t["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}

/// Whether this browser still has a session: /authorize goes straight back to the app.
async fn signed_in(app: &TestApp) -> bool {
    let f = through_pages(
        app,
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
        "alice",
    )
    .await;
    let loc = f
        .headers
        .get("location")
        .expect("prompt=none always redirects")
        .to_str()
        .expect("ascii");
    !loc.contains("error=login_required")
}

/// A test app that issues refresh tokens without `offline_access` too, so the tests see the
/// session-bound kind a logout revokes.
async fn online_refresh(b: Backend) -> Option<TestApp> {
    TestApp::spawn_with(b, |c| c.tokens.issue_refresh_without_offline_access = true).await
}

async fn refresh_works(app: &TestApp, refresh: &str) -> bool {
    let r = app.refresh_web(refresh).await;
    r.status() == 200
}

async fn logout(app: &TestApp, query: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .get(app.url("/logout"))
        .query(query)
        .send()
        .await
        .expect("logout")
}

/// A code issued before the user logged out cannot be redeemed after: its client may
/// already have been told of the logout (Back-Channel Logout 1.0 section 2.7).
async fn a_code_from_an_ended_session_is_refused(b: Backend) {
    let Some(app) = online_refresh(b).await else {
        return;
    };
    let (id_token, _) = sign_in(&app).await;
    let pending = crate::flows::get_code(&app, "openid").await;
    let r = logout(&app, &[("id_token_hint", &id_token)]).await;
    assert!(
        r.status().is_redirection() || r.status() == 200,
        "{}",
        r.status()
    );
    let r = crate::flows::exchange(&app, &pending).await;
    assert_eq!(r.status(), 400);
    let body = json(r).await;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("session that authorized this grant has ended"),
        "{body}"
    );
}

async fn valid_hint_logs_out_and_redirects(b: Backend) {
    let Some(app) = online_refresh(b).await else {
        return;
    };
    let doc = app.discovery().await;
    assert_eq!(doc["end_session_endpoint"], app.url("/logout"));

    let (id_token, refresh) = sign_in(&app).await;
    assert!(signed_in(&app).await);
    let r = logout(
        &app,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", AFTER),
            ("state", "bye 1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers().get("location").expect("location"),
        "http://localhost:3000/?state=bye+1"
    );
    assert!(!signed_in(&app).await, "the session ended");
    let kinds = app.state.core.store.audit_kinds(50).await.expect("audit");
    assert!(kinds.iter().any(|k| k == "logout"), "{kinds:?}");
    // logout.revoke_session_tokens (default true): the session's refresh tokens are gone.
    assert!(!refresh_works(&app, &refresh).await);

    // With no session left, the same request just goes back to the app.
    let r = logout(
        &app,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", AFTER),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
}

async fn tokens_survive_logout_when_configured(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.logout.revoke_session_tokens = false;
        c.tokens.issue_refresh_without_offline_access = true;
    })
    .await
    else {
        return;
    };
    let (id_token, refresh) = sign_in(&app).await;
    let r = logout(&app, &[("id_token_hint", &id_token)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains("signed out"));
    assert!(!signed_in(&app).await);
    assert!(refresh_works(&app, &refresh).await);
}

async fn without_a_hint_the_user_confirms(b: Backend) {
    let Some(app) = online_refresh(b).await else {
        return;
    };
    let (_, refresh) = sign_in(&app).await;
    // A bare link (anyone can plant one) only shows a question.
    let r = logout(
        &app,
        &[
            ("client_id", "web"),
            ("post_logout_redirect_uri", AFTER),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("body");
    assert!(page.contains("Sign out?"), "{page}");
    assert!(page.contains("Test Web App"));
    assert!(signed_in(&app).await, "nothing ended yet");

    // The confirmation form is CSRF-protected.
    let r = app
        .post_form(
            "/logout/confirm",
            &[("decision", "logout"), ("client_id", "web")],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(signed_in(&app).await);

    // "Stay signed in" changes nothing.
    let r = app
        .post_form(
            "/logout/confirm",
            &[("csrf", &hidden(&page, "csrf")), ("decision", "stay")],
        )
        .await;
    assert!(r.text().await.expect("body").contains("still signed in"));
    assert!(signed_in(&app).await);

    // A tampered redirect in the form is checked again and not followed.
    let r = app
        .post_form(
            "/logout/confirm",
            &[
                ("csrf", &hidden(&page, "csrf")),
                ("client_id", "web"),
                ("post_logout_redirect_uri", "https://attacker.example/"),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("location").is_none());
    assert!(!signed_in(&app).await);
    assert!(!refresh_works(&app, &refresh).await);

    // Sign in again and confirm the real form: back to the app with its state.
    let _ = sign_in(&app).await;
    let r = logout(
        &app,
        &[
            ("client_id", "web"),
            ("post_logout_redirect_uri", AFTER),
            ("state", "s1"),
        ],
    )
    .await;
    let page = r.text().await.expect("body");
    let r = app
        .post_form(
            "/logout/confirm",
            &[
                ("csrf", &hidden(&page, "csrf")),
                ("client_id", &hidden(&page, "client_id")),
                (
                    "post_logout_redirect_uri",
                    &hidden(&page, "post_logout_redirect_uri"),
                ),
                ("state", &hidden(&page, "state")),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers().get("location").expect("location"),
        "http://localhost:3000/?state=s1"
    );
    assert!(!signed_in(&app).await);
}

async fn a_hint_from_an_earlier_session_asks_first(b: Backend) {
    let Some(app) = online_refresh(b).await else {
        return;
    };
    let (old_hint, _) = sign_in(&app).await;
    // prompt=login starts a new session (a new sid) for the same user.
    let f = through_pages(
        &app,
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("prompt", "login"),
        ],
        "alice",
    )
    .await;
    assert!(f.pages.contains(&"login"));
    let r = logout(&app, &[("id_token_hint", &old_hint)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains("Sign out?"));
    assert!(signed_in(&app).await);
}

async fn unregistered_redirect_is_not_followed(b: Backend) {
    let Some(app) = online_refresh(b).await else {
        return;
    };
    let (id_token, _) = sign_in(&app).await;
    let r = logout(
        &app,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "https://attacker.example/"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("location").is_none());
    let body = r.text().await.expect("body");
    assert!(body.contains("not registered"), "{body}");
    assert!(!signed_in(&app).await, "the valid hint still signs out");
}

async fn bad_requests_get_an_error_page(b: Backend) {
    let Some(app) = online_refresh(b).await else {
        return;
    };
    let (id_token, _) = sign_in(&app).await;
    // Not our token; the wrong client for the hint; an unknown client; a repeated parameter.
    for query in [
        vec![("id_token_hint", "not-a-jwt")],
        vec![("id_token_hint", id_token.as_str()), ("client_id", "spa")],
        vec![("client_id", "nobody")],
        vec![("state", "a"), ("state", "b")],
    ] {
        let r = logout(&app, &query).await;
        assert_eq!(r.status(), 400, "{query:?}");
        let body = r.text().await.expect("body");
        assert!(body.contains("error=invalid_request"), "{body}");
    }
    assert!(signed_in(&app).await, "no error signs anyone out");
    // A tampered hint (signature no longer matches).
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let r = logout(&app, &[("id_token_hint", &parts.join("."))]).await;
    assert_eq!(r.status(), 400);
}

/// Logging out revokes the refresh tokens of the session, but not one granted with
/// `offline_access`: that is access for when the user is not signed in (OpenID Connect Core
/// section 11), and Back-Channel Logout 1.0 section 2.7 says such tokens "normally SHOULD
/// NOT be revoked". Signing out everywhere still revokes it.
async fn offline_access_outlives_the_logout(b: Backend) {
    let Some(app) = online_refresh(b).await else {
        return;
    };
    let (_, online) = sign_in_for(&app, "openid").await;
    let (id_token, offline) = sign_in_for(&app, "openid offline_access").await;
    let r = logout(&app, &[("id_token_hint", &id_token)]).await;
    assert!(r.status() == 200 || r.status() == 303, "{}", r.status());
    assert!(!signed_in(&app).await);
    assert!(
        !refresh_works(&app, &online).await,
        "the session's token is revoked"
    );
    let r = app.refresh_web(&offline).await;
    assert_eq!(r.status(), 200, "the offline token is not");
    let rotated = json(r).await["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    // An administrator's sign-out everywhere ends offline access too.
    let alice = app
        .state
        .core
        .store
        .find_user_by_login("alice")
        .await
        .expect("store")
        .expect("alice");
    app.state
        .core
        .store
        .revoke_user(&alice.id, app.clock.now())
        .await
        .expect("revoke");
    app.clock.advance(1);
    assert!(!refresh_works(&app, &rotated).await);
}

crate::both_stores!(
    offline_access_outlives_the_logout,
    a_code_from_an_ended_session_is_refused,
    valid_hint_logs_out_and_redirects,
    tokens_survive_logout_when_configured,
    without_a_hint_the_user_confirms,
    a_hint_from_an_earlier_session_asks_first,
    unregistered_redirect_is_not_followed,
    bad_requests_get_an_error_page,
);
