//! RFC 8628 device authorization: the `oauth2` crate as the device, plain HTTP as the person's
//! browser, and every polling and verification-page rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};
use serde_json::Value;

use crate::common::{Backend, PASSWORD, SERVICE_SECRET, TestApp, WEB_SECRET, browser_client, json};
use crate::flows::{
    DEVICE_GRANT, approve, decide, enter_code, page, poll, sign_in, start, wrong_code_via_proxy,
};

fn error(v: &(u16, Value)) -> &str {
    assert_eq!(v.0, 400, "expected an error, got {v:?}");
    v.1["error"].as_str().expect("error code")
}

async fn device_flow_with_oauth2_crate(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let http = crate::common::http_client();
    let tv = BasicClient::new(ClientId::new("tv".into()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(app.url("/device/code")).expect("url"),
        )
        .set_token_uri(TokenUrl::new(app.url("/token")).expect("url"));
    let details: StandardDeviceAuthorizationResponse = tv
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let code = details.user_code().secret().clone();
    // §6.1: 8 characters of the base-20 alphabet, shown as XXXX-XXXX.
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-");
    assert!(
        code.chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
    );
    assert_eq!(details.verification_uri().as_str(), app.url("/device"));
    assert_eq!(
        details
            .verification_uri_complete()
            .expect("complete uri")
            .secret(),
        &app.url(&format!("/device?user_code={code}"))
    );
    assert_eq!(details.expires_in().as_secs(), 600);
    assert_eq!(details.interval().as_secs(), 5);

    // The crate sleeps between polls; here a "sleep" moves the server's clock instead, and
    // the person approves on their phone during the second one.
    let sleeps = Arc::new(AtomicUsize::new(0));
    let (clock, base, typed) = (app.clock.clone(), app.base.clone(), code.to_lowercase());
    let tokens = tv
        .exchange_device_access_token(&details)
        .request_async(
            &http,
            move |d| {
                let n = sleeps.fetch_add(1, Ordering::SeqCst);
                clock.advance(d.as_secs() as i64);
                let (base, typed) = (base.clone(), typed.clone());
                async move {
                    if n == 1 {
                        let done = approve(&base, &typed, "allow").await;
                        assert_eq!(done.status, 200);
                        assert!(done.body.contains("Device connected"), "{}", done.body);
                    }
                }
            },
            None,
        )
        .await
        .expect("tokens after approval");
    assert!(tokens.refresh_token().is_some(), "offline_access was asked");
    let scopes: Vec<String> = tokens
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["offline_access", "openid"]);
    // The access token works at userinfo, as alice.
    let info = json(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(tokens.access_token().secret())
            .send()
            .await
            .expect("userinfo"),
    )
    .await;
    assert!(info["sub"].is_string());
    // Exactly once: the same device_code again is invalid_grant (§3.5 / RFC 6749 §5.2).
    app.clock.advance(10);
    let again = poll(&app, details.device_code().secret()).await;
    assert_eq!(error(&again), "invalid_grant");
}

async fn every_polling_answer(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // Pending, then too fast: slow_down raises the interval by 5 s, kept in the store.
    let d = start(&app, "openid profile offline_access").await;
    let device_code = d["device_code"].as_str().expect("device_code");
    let user_code = d["user_code"].as_str().expect("user_code");
    assert_eq!(
        error(&poll(&app, device_code).await),
        "authorization_pending"
    );
    assert_eq!(error(&poll(&app, device_code).await), "slow_down");
    app.clock.advance(5);
    // 5 s is no longer enough: the interval is now 10 s from the last poll.
    let slow = poll(&app, device_code).await;
    assert_eq!(error(&slow), "slow_down");
    assert!(
        slow.1["error_description"]
            .as_str()
            .expect("description")
            .contains("15 seconds"),
        "{slow:?}"
    );
    app.clock.advance(15);
    assert_eq!(
        error(&poll(&app, device_code).await),
        "authorization_pending"
    );

    // Approved: access, id_token (openid) and refresh (offline_access), once.
    let done = approve(&app.base, user_code, "allow").await;
    assert_eq!(done.status, 200);
    app.clock.advance(15);
    let (status, t) = poll(&app, device_code).await;
    assert_eq!(status, 200, "{t}");
    assert!(t["access_token"].is_string());
    assert!(t["id_token"].is_string());
    assert!(t["refresh_token"].is_string());
    assert_eq!(t["token_type"], "Bearer");
    app.clock.advance(15);
    assert_eq!(error(&poll(&app, device_code).await), "invalid_grant");
    // The refresh token it issued rotates like any other.
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "tv"),
                ("refresh_token", t["refresh_token"].as_str().expect("rt")),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);

    // Denied: access_denied, and it stays that way.
    let d = start(&app, "openid").await;
    let denied = approve(
        &app.base,
        d["user_code"].as_str().expect("user_code"),
        "deny",
    )
    .await;
    assert!(denied.body.contains("Request denied"), "{}", denied.body);
    let dc = d["device_code"].as_str().expect("device_code");
    assert_eq!(error(&poll(&app, dc).await), "access_denied");

    // Expired: expired_token, on a code nobody approved.
    let d = start(&app, "openid").await;
    app.clock.advance(601);
    let dc = d["device_code"].as_str().expect("device_code");
    assert_eq!(error(&poll(&app, dc).await), "expired_token");

    // Unknown code; a code presented by another client; no code at all.
    assert_eq!(error(&poll(&app, "no-such-code").await), "invalid_grant");
    let d = start(&app, "openid").await;
    let r = app
        .token_basic(
            "cli",
            SERVICE_SECRET,
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", d["device_code"].as_str().expect("dc")),
            ],
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    let r = app
        .post_form(
            "/token",
            &[("grant_type", DEVICE_GRANT), ("client_id", "tv")],
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_request");
}

async fn device_authorization_endpoint_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // Discovery names the endpoint and the grant (RFC 8628 §4).
    let doc = app.discovery().await;
    assert_eq!(
        doc["device_authorization_endpoint"],
        app.url("/device/code")
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .expect("grants")
            .contains(&Value::from(DEVICE_GRANT))
    );
    // Defaults: the client's default scopes when `scope` is omitted.
    let r = app.post_form("/device/code", &[("client_id", "tv")]).await;
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert!(body["device_code"].as_str().expect("dc").len() >= 32);

    // A client not registered for the grant.
    let r = app
        .http
        .post(app.url("/device/code"))
        .basic_auth("web", Some(WEB_SECRET))
        .form(&[("scope", "openid")])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "unauthorized_client");
    // Unknown client; a confidential client without its secret; then with it.
    let r = app
        .post_form("/device/code", &[("client_id", "nope")])
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = app.post_form("/device/code", &[("client_id", "cli")]).await;
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.url("/device/code"))
        .basic_auth("cli", Some(SERVICE_SECRET))
        .form(&[("scope", "api.read")])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    // A scope the client may not ask for.
    let r = app
        .post_form("/device/code", &[("client_id", "tv"), ("scope", "admin")])
        .await;
    assert_eq!(json(r).await["error"], "invalid_scope");
    // Not a form body.
    let r = app
        .http
        .post(app.url("/device/code"))
        .json(&serde_json::json!({"client_id": "tv"}))
        .send()
        .await
        .expect("request");
    assert_eq!(json(r).await["error"], "invalid_request");
}

async fn verification_pages(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // Asked in this order, and shown in it on the confirmation page.
    let d = start(&app, "profile openid").await;
    let user_code = d["user_code"].as_str().expect("user_code").to_owned();
    let device_code = d["device_code"].as_str().expect("device_code").to_owned();
    let base = app.base.as_str();
    let person = browser_client();

    // verification_uri_complete pre-fills the code but decides nothing (§5.4).
    let pre = page(
        person
            .get(app.url("/device"))
            .query(&[("user_code", &user_code)])
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(pre.status, 200);
    assert!(pre.body.contains(&format!("value=\"{user_code}\"")));
    assert_eq!(
        error(&poll(&app, &device_code).await),
        "authorization_pending"
    );

    // No CSRF token: refused before anything else.
    let r = person
        .post(app.url("/device"))
        .form(&[("user_code", user_code.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);

    // A wrong code, and a malformed one, say so plainly.
    let wrong = enter_code(base, &person, "BCDF-BCDF").await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("not valid"), "{}", wrong.body);
    let junk = enter_code(base, &person, "hello").await;
    assert!(junk.body.contains("not valid"));

    // Lower case, spaces instead of the dash: the same code. Then a wrong password.
    let typed = user_code.to_lowercase().replace('-', " ");
    let login = enter_code(base, &person, &typed).await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("Living Room TV"), "{}", login.body);
    let failed = sign_in(base, &person, &login, "wrong password").await;
    assert_eq!(failed.status, 401);
    assert!(failed.body.contains("Wrong username or password"));
    // The confirmation page shows the code to compare, the app and the scopes in words.
    let confirm = sign_in(base, &person, &failed, PASSWORD).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains(&user_code));
    assert!(confirm.body.contains("Living Room TV"));
    assert!(confirm.body.contains("See your name and basic profile"));
    let profile = confirm.body.find("See your name and basic profile");
    let openid = confirm.body.find("Know who you are");
    assert!(
        profile.is_some() && openid.is_some() && profile < openid,
        "the scopes are not in the order the device asked for them"
    );
    assert!(confirm.body.contains("matches") || confirm.body.contains("differ"));
    let done = decide(base, &person, &confirm, "allow").await;
    assert!(done.body.contains("Return to your device"), "{}", done.body);

    // Signed in now: a second code goes straight to confirmation; a used code is refused.
    let used = enter_code(base, &person, &user_code).await;
    assert_eq!(used.status, 400);
    assert!(used.body.contains("already been used"), "{}", used.body);
    let d2 = start(&app, "openid").await;
    let confirm = enter_code(base, &person, d2["user_code"].as_str().expect("uc")).await;
    assert!(confirm.body.contains("action=\"/device/confirm\""));
    // A replayed Allow after the decision changes nothing.
    let _ = decide(base, &person, &confirm, "deny").await;
    let replay = decide(base, &person, &confirm, "allow").await;
    assert_eq!(replay.status, 400);
    let dc2 = d2["device_code"].as_str().expect("dc");
    assert_eq!(error(&poll(&app, dc2).await), "access_denied");
    // Every decision and sign-in attempt is in the audit log.
    let kinds = app.state.core.store.audit_kinds(50).await.expect("audit");
    for kind in [
        "login.failure",
        "login.success",
        "device.approved",
        "device.denied",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
    }

    // An expired code says so.
    let d3 = start(&app, "openid").await;
    app.clock.advance(601);
    let expired = enter_code(base, &person, d3["user_code"].as_str().expect("uc")).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("expired"), "{}", expired.body);
}

async fn user_code_guessing_is_throttled(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.device.max_attempts_per_ip = 3;
        c.device.attempt_window_seconds = 300;
    })
    .await
    else {
        return;
    };
    let d = start(&app, "openid").await;
    let real = d["user_code"].as_str().expect("user_code");
    let person = browser_client();
    for _ in 0..2 {
        let p = enter_code(&app.base, &person, "BCDF-BCDF").await;
        assert_eq!(p.status, 400);
    }
    // The third wrong code locks this address out, and then even the right code waits.
    let locked = enter_code(&app.base, &person, "BCDF-BCDF").await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    let p = enter_code(&app.base, &person, real).await;
    assert_eq!(p.status, 429);
    assert!(p.body.contains("try again in 5 minutes"), "{}", p.body);
    assert_eq!(p.retry_after.as_deref(), Some("300"));
    // Once the window has passed, the right code works.
    app.clock.advance(301);
    let p = enter_code(&app.base, &person, real).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("action=\"/device/login\""));
}

async fn client_addresses_behind_a_trusted_proxy(b: Backend) {
    // Behind a trusted proxy, X-Forwarded-For tells clients apart.
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.device.max_attempts_per_ip = 2;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("net")];
    })
    .await
    else {
        return;
    };
    assert_eq!(wrong_code_via_proxy(&app, "203.0.113.1").await, 400);
    assert_eq!(wrong_code_via_proxy(&app, "203.0.113.1").await, 429);
    assert_eq!(wrong_code_via_proxy(&app, "203.0.113.2").await, 400);

    // From an untrusted peer the header is ignored: a guesser cannot dodge the throttle by
    // inventing addresses.
    let Some(app) = TestApp::spawn_with(b, |c| c.device.max_attempts_per_ip = 2).await else {
        return;
    };
    assert_eq!(wrong_code_via_proxy(&app, "203.0.113.1").await, 400);
    assert_eq!(wrong_code_via_proxy(&app, "203.0.113.2").await, 429);
}

crate::both_stores!(
    client_addresses_behind_a_trusted_proxy,
    device_flow_with_oauth2_crate,
    every_polling_answer,
    device_authorization_endpoint_errors,
    verification_pages,
    user_code_guessing_is_throttled,
);
