//! Two-step sign-in over HTTP: setting up an authenticator app on /account, signing in with
//! its codes on every login page, and each refusal. The codes are computed here with
//! totp-rs, from the key the setup page shows, at the server's clock.

use reqwest::StatusCode;
use totp_rs::{Algorithm, Builder, Secret};

use crate::common::{
    Backend, LEGACY_SECRET, PASSWORD, TestApp, WEB_REDIRECT, browser_client, hidden, json,
    location_params_in, param,
};
use crate::flows::{self, CHALLENGE, Issued, VERIFIER, decode_jwt, latchkey};

/// The 6-digit code of `secret` (base32, as the page shows it) at Unix time `t`.
fn code_at(secret: &str, t: i64) -> String {
    let secret = Secret::try_from_base32(secret.replace(' ', "")).expect("base32 key");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name("test")
        .build()
        .expect("totp")
        .generate(u64::try_from(t).expect("time"))
        .to_string()
}

/// What the browser got back: status, `Location` and body.
pub(crate) struct Got {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

pub(crate) async fn got(r: reqwest::Response) -> Got {
    Got {
        status: r.status(),
        location: r
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ascii").to_owned()),
        body: r.text().await.expect("body"),
    }
}

pub(crate) async fn post(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> Got {
    got(b.post(app.url(path)).form(form).send().await.expect("POST")).await
}

pub(crate) async fn get(app: &TestApp, b: &reqwest::Client, path: &str) -> Got {
    got(b.get(app.url(path)).send().await.expect("GET")).await
}

/// The text between `<code id="totp-secret">` and `</code>`.
fn shown_secret(html: &str) -> String {
    let start = html.find("id=\"totp-secret\">").expect("the key is shown") + 17;
    html[start..start + html[start..].find('<').expect("end")].to_owned()
}

/// Sign in to /account with the password (and nothing else: no factor yet).
pub(crate) async fn account_sign_in(app: &TestApp, b: &reqwest::Client) -> Got {
    let login = get(app, b, "/account").await;
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("action=\"/account/login\""),
        "{}",
        login.body
    );
    post(
        app,
        b,
        "/account/login",
        &[
            ("csrf", &hidden(&login.body, "csrf")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await
}

/// Alice sets up an authenticator app from /account in browser `b`; the key it shows.
async fn enrol(app: &TestApp, b: &reqwest::Client) -> String {
    enrol_with_codes(app, b).await.0
}

/// The recovery codes a page shows.
pub(crate) fn shown_codes(html: &str) -> Vec<String> {
    let list = &html[html
        .find("id=\"recovery-codes\"")
        .expect("the codes are shown")..];
    let list = &list[..list.find("</ul>").expect("end of list")];
    list.split("<code>")
        .skip(1)
        .map(|c| c[..c.find('<').expect("end")].to_owned())
        .collect()
}

/// `enrol`, and the recovery codes shown once the app is on.
async fn enrol_with_codes(app: &TestApp, b: &reqwest::Client) -> (String, Vec<String>) {
    let signed_in = account_sign_in(app, b).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let account = get(app, b, "/account").await;
    assert!(
        account.body.contains("Set up an authenticator app"),
        "{}",
        account.body
    );
    // The password again: a session cookie alone does not set up an app.
    let refused = post(
        app,
        b,
        "/account/totp",
        &[
            ("csrf", &hidden(&account.body, "csrf")),
            ("password", "not it"),
        ],
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused.body.contains("not your password"),
        "{}",
        refused.body
    );
    let setup = post(
        app,
        b,
        "/account/totp",
        &[
            ("csrf", &hidden(&account.body, "csrf")),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    assert!(
        setup.body.contains("src=\"data:image/svg+xml;base64,"),
        "a QR code"
    );
    let secret = shown_secret(&setup.body);
    let confirm = |code: String| {
        let body = setup.body.clone();
        async move {
            post(
                app,
                b,
                "/account/totp/confirm",
                &[
                    ("csrf", &hidden(&body, "csrf")),
                    ("factor", &hidden(&body, "factor")),
                    ("code", &code),
                ],
            )
            .await
        }
    };
    // Not the current code: refused, and the same setup is shown again.
    let now = app.clock.now();
    let wrong = confirm(code_at(&secret, now + 300)).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("not right"), "{}", wrong.body);
    assert_eq!(shown_secret(&wrong.body), secret);
    let done = confirm(code_at(&secret, now)).await;
    // On: the recovery codes are shown, this once.
    assert_eq!(done.status, 200, "{}", done.body);
    let codes = shown_codes(&done.body);
    assert_eq!(codes.len(), 10, "{}", done.body);
    assert!(
        done.body.contains("href=\"/account?notice=enrolled\""),
        "{}",
        done.body
    );
    let account = get(app, b, "/account?notice=enrolled").await;
    assert!(
        account.body.contains("Two-step sign-in is on"),
        "{}",
        account.body
    );
    assert!(
        account.body.contains("Authenticator app"),
        "{}",
        account.body
    );
    assert!(
        account.body.contains("10 unused recovery codes left"),
        "{}",
        account.body
    );
    (secret, codes)
}

/// Start the code flow for `web` in browser `b` and sign in with the password: the page
/// that comes next.
pub(crate) async fn authorize_and_sign_in(
    app: &TestApp,
    b: &reqwest::Client,
    password: &str,
) -> Got {
    let login = got(b
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "xyz"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize"))
    .await;
    assert!(login.body.contains("action=\"/login\""), "{}", login.body);
    post(
        app,
        b,
        "/login",
        &[
            ("csrf", &hidden(&login.body, "csrf")),
            ("interaction", &hidden(&login.body, "interaction")),
            ("username", "alice"),
            ("password", password),
        ],
    )
    .await
}

/// Post `code` on a second-factor page.
async fn send_code(app: &TestApp, b: &reqwest::Client, factor_page: &Got, code: &str) -> Got {
    let body = &factor_page.body;
    let action = if body.contains("action=\"/device/login/factor\"") {
        "/device/login/factor"
    } else if body.contains("action=\"/account/login/factor\"") {
        "/account/login/factor"
    } else {
        assert!(
            body.contains("action=\"/login/factor\""),
            "not the factor page: {body}"
        );
        "/login/factor"
    };
    let mut form = vec![
        ("csrf", hidden(body, "csrf")),
        ("pending", hidden(body, "pending")),
        ("code", code.to_owned()),
    ];
    if action == "/device/login/factor" {
        form.push(("user_code", hidden(body, "user_code")));
    }
    if action == "/login/factor" {
        form.push(("interaction", hidden(body, "interaction")));
    }
    got(b
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .expect("POST"))
    .await
}

/// Allow on the consent page, if it is shown; the redirect back to the client.
pub(crate) async fn past_consent(app: &TestApp, b: &reqwest::Client, after: Got) -> Got {
    if !after.body.contains("action=\"/consent\"") {
        return after;
    }
    post(
        app,
        b,
        "/consent",
        &[
            ("csrf", &hidden(&after.body, "csrf")),
            ("interaction", &hidden(&after.body, "interaction")),
            ("decision", "allow"),
        ],
    )
    .await
}

pub(crate) fn code_in(redirect: &Got) -> String {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "location",
        redirect
            .location
            .as_deref()
            .expect("a redirect")
            .parse()
            .expect("header"),
    );
    let (to, params) = location_params_in(&headers);
    assert!(to.starts_with(WEB_REDIRECT), "{to}");
    param(&params, "code").expect("a code").to_owned()
}

async fn enrol_then_sign_in_with_the_app(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let secret = enrol(&app, &browser_client()).await;
    // Another browser signs in for the web app: the password, then the code.
    let signed_in_at = app.clock.now();
    let other = browser_client();
    let factor = authorize_and_sign_in(&app, &other, PASSWORD).await;
    assert_eq!(factor.status, 200, "{}", factor.body);
    assert!(
        factor.body.contains("autocomplete=\"one-time-code\""),
        "{}",
        factor.body
    );
    // The password alone started no session.
    assert!(
        get(&app, &other, "/account")
            .await
            .body
            .contains("action=\"/account/login\"")
    );
    let wrong = send_code(&app, &other, &factor, "000000").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("not right"), "{}", wrong.body);
    // The code that confirmed the app is used up; the next step's code signs in.
    app.clock.advance(30);
    let right = send_code(&app, &other, &wrong, &code_at(&secret, app.clock.now())).await;
    let back = past_consent(&app, &other, right).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let issued = Issued {
        code: code_in(&back),
        verifier: VERIFIER.into(),
    };
    let tokens = json(flows::exchange(&app, &issued).await).await;
    let (_, id) = decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    // RFC 8176 section 2: a password and a one-time password, two factors.
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    // auth_time is when the password was checked (the first factor).
    assert_eq!(id["auth_time"], serde_json::json!(signed_in_at));
    // The session in that browser now carries the factor: a new request goes straight back.
    let again = authorize_and_sign_in_silently(&app, &other).await;
    assert_eq!(again.status, 303, "{}", again.body);
}

/// /authorize in a browser that has a session: no page.
async fn authorize_and_sign_in_silently(app: &TestApp, b: &reqwest::Client) -> Got {
    got(b
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize"))
    .await
}

async fn a_code_is_accepted_once(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let secret = enrol(&app, &browser_client()).await;
    app.clock.advance(30);
    let (first, second) = (browser_client(), browser_client());
    let page1 = authorize_and_sign_in(&app, &first, PASSWORD).await;
    let page2 = authorize_and_sign_in(&app, &second, PASSWORD).await;
    let code = code_at(&secret, app.clock.now());
    let used = send_code(&app, &first, &page1, &code).await;
    assert!(used.status == 200 || used.status == 303, "{}", used.body);
    assert!(!used.body.contains("not right"), "{}", used.body);
    // RFC 6238 section 5.2: the same code, from another browser at the same moment.
    let replayed = send_code(&app, &second, &page2, &code).await;
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    // An older step's code, never used, is refused too: steps only move forward.
    let older = code_at(&secret, app.clock.now() - 30);
    let older = send_code(&app, &second, &replayed, &older).await;
    assert_eq!(older.status, 401, "{}", older.body);
    app.clock.advance(30);
    let next = send_code(&app, &second, &older, &code_at(&secret, app.clock.now())).await;
    assert!(!next.body.contains("not right"), "{}", next.body);
    assert!(next.status == 200 || next.status == 303, "{}", next.body);
}

async fn code_guessing_is_throttled(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let secret = enrol(&app, &browser_client()).await;
    let audited = || async {
        let kinds = app.state.core.store.audit_kinds(1000).await.expect("audit");
        kinds.iter().filter(|k| *k == "mfa.failure").count()
    };
    // The wrong code typed while setting the app up.
    assert_eq!(audited().await, 1);
    app.clock.advance(30);
    let guesser = browser_client();
    let mut page = authorize_and_sign_in(&app, &guesser, PASSWORD).await;
    let max = app.state.config.login.max_failures;
    for i in 1..=max {
        page = send_code(&app, &guesser, &page, "000000").await;
        // The guess that reaches the limit is answered with the lockout itself.
        let expected = if i < max { 401 } else { 429 };
        assert_eq!(page.status, expected, "{}", page.body);
    }
    // Locked: even the right code waits, and says for how long.
    let locked = send_code(&app, &guesser, &page, &code_at(&secret, app.clock.now())).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(
        locked.body.contains("Too many wrong codes"),
        "{}",
        locked.body
    );
    // A right password again does not lift the lock on codes.
    let fresh = browser_client();
    let other = authorize_and_sign_in(&app, &fresh, PASSWORD).await;
    let still = send_code(&app, &fresh, &other, &code_at(&secret, app.clock.now())).await;
    assert_eq!(still.status, 429, "{}", still.body);
    // Wrong codes were audited, the refusals while locked were not.
    assert_eq!(audited().await, 1 + usize::try_from(max).expect("small"));
    app.clock
        .advance(app.state.config.login.lockout_seconds + 1);
    let after = send_code(&app, &fresh, &still, &code_at(&secret, app.clock.now())).await;
    assert!(!after.body.contains("Too many"), "{}", after.body);
    assert!(after.status == 200 || after.status == 303, "{}", after.body);
}

async fn parallel_guesses_are_checked_one_at_a_time(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    enrol(&app, &browser_client()).await;
    let guesser = browser_client();
    let page = authorize_and_sign_in(&app, &guesser, PASSWORD).await;
    let tries = 12;
    let all = futures_join(
        (0..tries)
            .map(|i| {
                let (app, guesser, page) = (&app, guesser.clone(), &page);
                async move {
                    send_code(app, &guesser, page, &format!("{:06}", i))
                        .await
                        .status
                }
            })
            .collect(),
    )
    .await;
    let wrong = all
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = all
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(wrong + refused, tries, "{all:?}");
    // However they were raced, no more guesses were checked than the limit allows.
    let limit = usize::try_from(app.state.config.login.max_failures).expect("small");
    assert!(
        wrong <= limit,
        "{wrong} guesses checked, limit {limit}: {all:?}"
    );
}

/// Run futures at once (the test crate has no `futures` dependency).
async fn futures_join<F: std::future::Future<Output = StatusCode> + Send>(
    futs: Vec<F>,
) -> Vec<StatusCode> {
    let mut set = Vec::with_capacity(futs.len());
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = Vec::with_capacity(set.len());
    // Polled together: each request is in flight before any is answered.
    let joined = std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out.len() <= i {
                out.resize(i + 1, None);
            }
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(s) => out[i] = Some(s),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    });
    joined.await;
    out.into_iter().map(|s| s.expect("done")).collect()
}

async fn the_device_flow_asks_for_the_factor(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let secret = enrol(&app, &browser_client()).await;
    app.clock.advance(30);
    let started = flows::start(&app, "openid profile").await;
    let user_code = started["user_code"].as_str().expect("user_code");
    let person = browser_client();
    let login = flows::enter_code(&app.base, &person, user_code).await;
    let factor = flows::sign_in(&app.base, &person, &login, PASSWORD).await;
    assert_eq!(factor.status, 200, "{}", factor.body);
    let factor = Got {
        status: StatusCode::OK,
        location: None,
        body: factor.body,
    };
    let confirm = send_code(&app, &person, &factor, &code_at(&secret, app.clock.now())).await;
    assert!(
        confirm.body.contains("action=\"/device/confirm\""),
        "{}",
        confirm.body
    );
    let confirm = flows::Page {
        status: confirm.status.as_u16(),
        retry_after: None,
        body: confirm.body,
    };
    let done = flows::decide(&app.base, &person, &confirm, "allow").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let (status, tokens) =
        flows::poll(&app, started["device_code"].as_str().expect("device_code")).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, id) = decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

async fn the_password_grant_refuses_an_account_with_a_second_factor(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let grant = || {
        app.token_basic(
            "legacy",
            LEGACY_SECRET,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "openid"),
            ],
        )
    };
    assert_eq!(grant().await.status(), 200);
    enrol(&app, &browser_client()).await;
    // It cannot ask for the code: a right password is refused, or the grant would be a way
    // around the second factor.
    let r = grant().await;
    assert_eq!(r.status(), 400);
    let body = json(r).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("second factor")),
        "{body}"
    );
}

async fn an_expired_or_forged_pending_sign_in_goes_nowhere(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let secret = enrol(&app, &browser_client()).await;
    let person = browser_client();
    let factor = authorize_and_sign_in(&app, &person, PASSWORD).await;
    // A CSRF value from another form: refused before anything is read.
    let forged = got(person
        .post(app.url("/login/factor"))
        .form(&[
            ("csrf", "forged"),
            ("pending", &hidden(&factor.body, "pending")),
            ("code", "000000"),
        ])
        .send()
        .await
        .expect("POST"))
    .await;
    assert_eq!(forged.status, 403);
    // The pending sign-in lasts as long as a sign-in page.
    app.clock.advance(app.state.config.sessions.interaction_ttl);
    let late = send_code(&app, &person, &factor, &code_at(&secret, app.clock.now())).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.body.contains("has expired"), "{}", late.body);
    // A pending sign-in of the account page does not finish an authorization request.
    let b2 = browser_client();
    let login = get(&app, &b2, "/account").await;
    let account_factor = post(
        &app,
        &b2,
        "/account/login",
        &[
            ("csrf", &hidden(&login.body, "csrf")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert!(
        account_factor
            .body
            .contains("action=\"/account/login/factor\"")
    );
    let wrong_door = got(b2
        .post(app.url("/login/factor"))
        .form(&[
            ("csrf", hidden(&account_factor.body, "csrf")),
            ("pending", hidden(&account_factor.body, "pending")),
            ("code", code_at(&secret, app.clock.now())),
        ])
        .send()
        .await
        .expect("POST"))
    .await;
    assert_eq!(wrong_door.status, 400, "{}", wrong_door.body);
    // Through its own door it works, and lands on the account page.
    let ok = send_code(
        &app,
        &b2,
        &account_factor,
        &code_at(&secret, app.clock.now()),
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/account"));
}

async fn removing_the_app_needs_a_code(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let person = browser_client();
    let secret = enrol(&app, &person).await;
    app.clock.advance(30);
    let account = get(&app, &person, "/account").await;
    let remove = |code: String| {
        let body = account.body.clone();
        let person = person.clone();
        let app = &app;
        async move {
            post(
                app,
                &person,
                "/account/factor/remove",
                &[
                    ("csrf", &hidden(&body, "csrf")),
                    ("factor", &hidden(&body, "factor")),
                    ("code", &code),
                ],
            )
            .await
        }
    };
    let wrong = remove("000000".into()).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(
        wrong.body.contains("Authenticator app"),
        "still there: {}",
        wrong.body
    );
    let done = remove(code_at(&secret, app.clock.now())).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?notice=removed"));
    // The password alone signs in again.
    let next = authorize_and_sign_in(&app, &browser_client(), PASSWORD).await;
    assert!(!next.body.contains("one-time-code"), "{}", next.body);
}

async fn an_admin_lists_and_resets_the_factor(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let shown = latchkey(&app, &["user", "show", "alice"]).await;
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(text.contains("second factors: none"), "{text}");
    let secret = enrol(&app, &browser_client()).await;
    let shown = latchkey(&app, &["user", "show", "alice"]).await;
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(text.contains("Authenticator app (totp): added "), "{text}");
    // Never the key.
    assert!(!text.contains(&secret.replace(' ', "")), "{text}");
    let reset = latchkey(&app, &["user", "reset-mfa", "alice"]).await;
    assert_eq!(
        reset.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let text = String::from_utf8_lossy(&reset.stdout).into_owned();
    assert!(
        text.contains("1 factor and every recovery code removed"),
        "{text}"
    );
    let next = authorize_and_sign_in(&app, &browser_client(), PASSWORD).await;
    assert!(!next.body.contains("one-time-code"), "{}", next.body);
    let again = latchkey(&app, &["user", "reset-mfa", "alice"]).await;
    let text = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(text.contains("no second factor"), "{text}");
}

async fn recovery_codes_sign_in_once_and_can_be_renewed(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let owner = browser_client();
    let (secret, codes) = enrol_with_codes(&app, &owner).await;
    // Typed in lower case, with spaces for dashes: the same code.
    let typed = codes[0].to_lowercase().replace('-', " ");
    let phoneless = browser_client();
    let factor = authorize_and_sign_in(&app, &phoneless, PASSWORD).await;
    assert!(
        factor.body.contains("Use a recovery code"),
        "{}",
        factor.body
    );
    let used = send_code(&app, &phoneless, &factor, &typed).await;
    let back = past_consent(&app, &phoneless, used).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let issued = Issued {
        code: code_in(&back),
        verifier: VERIFIER.into(),
    };
    let tokens = json(flows::exchange(&app, &issued).await).await;
    let (_, id) = decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    // Each code works once.
    let again = browser_client();
    let factor = authorize_and_sign_in(&app, &again, PASSWORD).await;
    let reused = send_code(&app, &again, &factor, &codes[0]).await;
    assert_eq!(reused.status, 401, "{}", reused.body);
    let account = get(&app, &owner, "/account").await;
    assert!(
        account.body.contains("9 unused recovery codes left"),
        "{}",
        account.body
    );
    // A new set needs a current code from the app, and voids the old set.
    let renew = |code: String| {
        let body = account.body.clone();
        let (app, owner) = (&app, owner.clone());
        async move {
            post(
                app,
                &owner,
                "/account/recovery-codes",
                &[("csrf", &hidden(&body, "csrf")), ("code", &code)],
            )
            .await
        }
    };
    let refused = renew("000000".into()).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    app.clock.advance(30);
    let renewed = renew(code_at(&secret, app.clock.now())).await;
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let fresh = shown_codes(&renewed.body);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    let old = send_code(&app, &again, &reused, &codes[1]).await;
    assert_eq!(old.status, 401, "{}", old.body);
    let new = send_code(&app, &again, &old, &fresh[0]).await;
    assert!(!new.body.contains("not right"), "{}", new.body);
    assert!(new.status == 200 || new.status == 303, "{}", new.body);
    let kinds = app.state.core.store.audit_kinds(1000).await.expect("audit");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "mfa.recovery_code_used")
            .count(),
        2
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "mfa.recovery_codes_renewed")
            .count(),
        1
    );
}

// Step-up and policy: acr_values, an essential acr, prompt=none, max_age, the server's
// `[mfa] mode` and a client's `require_mfa` (OIDC Core sections 2, 3.1.2.1, 5.5.1.1).

const ACR_PWD: &str = "urn:latchkey:acr:pwd";
const ACR_MFA: &str = "urn:latchkey:acr:mfa";

/// GET /authorize for `web` (code + PKCE, openid offline_access) with `extra` parameters.
async fn authorize_with(app: &TestApp, b: &reqwest::Client, extra: &[(&str, &str)]) -> Got {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid offline_access"),
        ("state", "st"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(extra);
    got(b
        .get(app.url("/authorize"))
        .query(&query)
        .send()
        .await
        .expect("authorize"))
    .await
}

/// Post the password on a login page.
async fn password(app: &TestApp, b: &reqwest::Client, login: &Got) -> Got {
    assert!(
        login.body.contains("action=\"/login\""),
        "not the login page: {}",
        login.body
    );
    post(
        app,
        b,
        "/login",
        &[
            ("csrf", &hidden(&login.body, "csrf")),
            ("interaction", &hidden(&login.body, "interaction")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await
}

/// The ID token of a redirect carrying a code (consent allowed on the way).
async fn id_token_of(
    app: &TestApp,
    b: &reqwest::Client,
    after: Got,
) -> (serde_json::Value, serde_json::Value) {
    let back = past_consent(app, b, after).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let issued = Issued {
        code: code_in(&back),
        verifier: VERIFIER.into(),
    };
    let tokens = json(flows::exchange(app, &issued).await).await;
    let (_, id) = decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    (id, tokens)
}

/// The error a redirect back to the client carries, with its `state`.
fn redirect_error(g: &Got) -> (String, String) {
    assert_eq!(g.status, 303, "{}", g.body);
    let loc = g.location.as_deref().expect("location");
    let url = url::Url::parse(loc).expect("url");
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    (
        param(&q, "error").expect("error").to_owned(),
        param(&q, "state").unwrap_or_default().to_owned(),
    )
}

fn essential(values: &[&str]) -> String {
    serde_json::json!({"id_token": {"acr": {"essential": true, "values": values}}}).to_string()
}

async fn acr_values_step_up_the_session_in_place(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // This browser signed in with the password before the app was set up (in another
    // browser): a one-factor session.
    let person = browser_client();
    let login = authorize_with(&app, &person, &[]).await;
    let (id, _) = id_token_of(&app, &person, password(&app, &person, &login).await).await;
    assert_eq!(id["acr"], ACR_PWD);
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    let sid = id["sid"].clone();
    let secret = enrol(&app, &browser_client()).await;
    // From now on the account signs in with its app: the old session gives it first, even
    // when the request does not ask (a password someone else may also know made it).
    let plain = authorize_with(&app, &person, &[]).await;
    assert!(plain.body.contains("one-time-code"), "{}", plain.body);
    // prompt=none cannot show the code page (OIDC Core section 3.1.2.6).
    let none = authorize_with(
        &app,
        &person,
        &[("acr_values", ACR_MFA), ("prompt", "none")],
    )
    .await;
    assert_eq!(
        redirect_error(&none),
        ("interaction_required".into(), "st".into())
    );
    // Asked for two factors: the code page, without the password again.
    let asked = authorize_with(&app, &person, &[("acr_values", ACR_MFA)]).await;
    assert!(asked.body.contains("one-time-code"), "{}", asked.body);
    assert!(!asked.body.contains("type=\"password\""), "{}", asked.body);
    app.clock.advance(30);
    let stepped = send_code(&app, &person, &asked, &code_at(&secret, app.clock.now())).await;
    let (id, tokens) = id_token_of(&app, &person, stepped).await;
    assert_eq!(id["acr"], ACR_MFA);
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    // The same session: its sid is unchanged, so logout still reaches every client.
    assert_eq!(id["sid"], sid);
    // A refreshed ID token keeps acr and amr (OIDC Core section 12.2).
    let refreshed = json(
        app.refresh_web(tokens["refresh_token"].as_str().expect("refresh_token"))
            .await,
    )
    .await;
    let (_, again) = decode_jwt(refreshed["id_token"].as_str().expect("id_token"));
    assert_eq!(
        (again["acr"].clone(), again["amr"].clone()),
        (id["acr"].clone(), id["amr"].clone())
    );
    // Now two-factor, the session answers acr_values=mfa with no page.
    let silent = authorize_with(
        &app,
        &person,
        &[("acr_values", ACR_MFA), ("prompt", "none")],
    )
    .await;
    assert_eq!(silent.status, 303, "{}", silent.body);
    assert!(
        silent
            .location
            .as_deref()
            .is_some_and(|l| l.contains("code=")),
        "{:?}",
        silent.location
    );
}

async fn a_preference_for_two_factors_is_not_a_demand(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // No app set up: acr_values is voluntary (OIDC Core section 3.1.2.1), the password does.
    let person = browser_client();
    let login = authorize_with(
        &app,
        &person,
        &[("acr_values", &format!("urn:unknown {ACR_MFA}"))],
    )
    .await;
    let (id, _) = id_token_of(&app, &person, password(&app, &person, &login).await).await;
    assert_eq!(id["acr"], ACR_PWD);
    // An essential value this server does not know cannot be met.
    let unknown = authorize_with(&app, &person, &[("claims", &essential(&["urn:unknown"]))]).await;
    assert_eq!(
        redirect_error(&unknown),
        ("unmet_authentication_requirements".into(), "st".into())
    );
    // Essential pwd is met by the password, and the claim is that value.
    let pwd = authorize_with(&app, &person, &[("claims", &essential(&[ACR_PWD]))]).await;
    let (id, _) = id_token_of(&app, &person, pwd).await;
    assert_eq!(id["acr"], ACR_PWD);
}

async fn an_essential_second_factor_is_set_up_during_the_sign_in(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let person = browser_client();
    let login = authorize_with(&app, &person, &[("claims", &essential(&[ACR_MFA]))]).await;
    let setup = password(&app, &person, &login).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    assert!(
        setup.body.contains("action=\"/login/enrol\""),
        "{}",
        setup.body
    );
    // The consent form cannot be posted around the setup: nothing is issued.
    let around = post(
        &app,
        &person,
        "/consent",
        &[
            ("csrf", &hidden(&setup.body, "csrf")),
            ("interaction", &hidden(&setup.body, "interaction")),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(redirect_error(&around).0, "interaction_required");
    // Again, and this time set it up.
    let login = authorize_with(&app, &person, &[("claims", &essential(&[ACR_MFA]))]).await;
    let setup = if login.body.contains("action=\"/login\"") {
        password(&app, &person, &login).await
    } else {
        login
    };
    let secret = shown_secret(&setup.body);
    let confirmed = post(
        &app,
        &person,
        "/login/enrol",
        &[
            ("csrf", &hidden(&setup.body, "csrf")),
            ("interaction", &hidden(&setup.body, "interaction")),
            ("factor", &hidden(&setup.body, "factor")),
            ("code", &code_at(&secret, app.clock.now())),
        ],
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(shown_codes(&confirmed.body).len(), 10);
    let next = post(
        &app,
        &person,
        "/login/continue",
        &[
            ("csrf", &hidden(&confirmed.body, "csrf")),
            ("interaction", &hidden(&confirmed.body, "interaction")),
        ],
    )
    .await;
    let (id, _) = id_token_of(&app, &person, next).await;
    assert_eq!(id["acr"], ACR_MFA);
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

async fn declining_the_setup_fails_the_request(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let person = browser_client();
    let login = authorize_with(&app, &person, &[("claims", &essential(&[ACR_MFA]))]).await;
    let setup = password(&app, &person, &login).await;
    let declined = post(
        &app,
        &person,
        "/login/enrol",
        &[
            ("csrf", &hidden(&setup.body, "csrf")),
            ("interaction", &hidden(&setup.body, "interaction")),
            ("decision", "cancel"),
        ],
    )
    .await;
    assert_eq!(
        redirect_error(&declined),
        ("unmet_authentication_requirements".into(), "st".into())
    );
}

async fn max_age_asks_for_both_factors_again(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let secret = enrol(&app, &browser_client()).await;
    let person = browser_client();
    app.clock.advance(30);
    let login = authorize_with(&app, &person, &[]).await;
    let factor = password(&app, &person, &login).await;
    let done = send_code(&app, &person, &factor, &code_at(&secret, app.clock.now())).await;
    let (id, _) = id_token_of(&app, &person, done).await;
    assert_eq!(id["acr"], ACR_MFA);
    app.clock.advance(120);
    let again = authorize_with(&app, &person, &[("max_age", "60")]).await;
    let factor = password(&app, &person, &again).await;
    assert!(
        factor.body.contains("one-time-code"),
        "the code again: {}",
        factor.body
    );
}

async fn a_client_or_the_server_can_require_two_factors(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        for client in &mut c.clients {
            if client.client_id == "web" || client.client_id == "legacy" {
                client.require_mfa = true;
            }
        }
    })
    .await
    else {
        return;
    };
    // No app yet: the setup page comes right after the password.
    let person = browser_client();
    let login = authorize_with(&app, &person, &[]).await;
    let setup = password(&app, &person, &login).await;
    assert!(
        setup.body.contains("action=\"/login/enrol\""),
        "{}",
        setup.body
    );
    // The password grant cannot give two factors.
    let r = app
        .token_basic(
            "legacy",
            LEGACY_SECRET,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");

    let Some(app) =
        TestApp::spawn_with(b, |c| c.mfa.mode = latchkey::config::MfaMode::Required).await
    else {
        return;
    };
    let person = browser_client();
    let login = authorize_with(&app, &person, &[]).await;
    let setup = password(&app, &person, &login).await;
    assert!(
        setup.body.contains("action=\"/login/enrol\""),
        "{}",
        setup.body
    );
}

async fn with_second_factors_off_the_password_is_enough(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    enrol(&app, &browser_client()).await;
    // The same store, served by a node whose config turns second factors off.
    let mut config = (*app.state.config).clone();
    config.mfa.mode = latchkey::config::MfaMode::Off;
    let off = TestApp::start(config, tempfile::tempdir().expect("dir"), None).await;
    let person = browser_client();
    let login = authorize_with(&off, &person, &[]).await;
    let (id, _) = id_token_of(&off, &person, password(&off, &person, &login).await).await;
    assert_eq!(id["acr"], ACR_PWD);
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    let insisted = authorize_with(&off, &person, &[("claims", &essential(&[ACR_MFA]))]).await;
    assert_eq!(
        redirect_error(&insisted).0,
        "unmet_authentication_requirements"
    );
}

async fn a_device_client_that_requires_two_factors_steps_up(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        for client in &mut c.clients {
            if client.client_id == "tv" {
                client.require_mfa = true;
            }
        }
    })
    .await
    else {
        return;
    };
    let person = browser_client();
    // A one-factor session: signed in at /account before the app was set up elsewhere.
    assert_eq!(account_sign_in(&app, &person).await.status, 303);
    let secret = enrol(&app, &browser_client()).await;
    app.clock.advance(30);
    let started = flows::start(&app, "openid").await;
    let user_code = started["user_code"].as_str().expect("user_code");
    let entry = get(&app, &person, "/device").await;
    let asked = post(
        &app,
        &person,
        "/device",
        &[
            ("csrf", &hidden(&entry.body, "csrf")),
            ("user_code", user_code),
        ],
    )
    .await;
    assert!(
        asked.body.contains("action=\"/device/login/factor\""),
        "{}",
        asked.body
    );
    let confirm = send_code(&app, &person, &asked, &code_at(&secret, app.clock.now())).await;
    assert!(
        confirm.body.contains("action=\"/device/confirm\""),
        "{}",
        confirm.body
    );
    let confirm = flows::Page {
        status: confirm.status.as_u16(),
        retry_after: None,
        body: confirm.body,
    };
    let done = flows::decide(&app.base, &person, &confirm, "allow").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let (status, tokens) =
        flows::poll(&app, started["device_code"].as_str().expect("device_code")).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, id) = decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["acr"], ACR_MFA);
}

// What a review attacking the first version found, each now refused.

async fn setup_and_pending_sign_ins_are_bounded_per_account(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // Starting setup over and over keeps one unfinished enrolment.
    let owner = browser_client();
    assert_eq!(account_sign_in(&app, &owner).await.status, 303);
    for _ in 0..12 {
        let account = get(&app, &owner, "/account").await;
        let setup = post(
            &app,
            &owner,
            "/account/totp",
            &[
                ("csrf", &hidden(&account.body, "csrf")),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(setup.status, 200, "{}", setup.body);
    }
    let sealed = app
        .state
        .core
        .store
        .sealed_factor_secrets()
        .await
        .expect("secrets");
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    // Right passwords typed over and over keep at most a few sign-ins waiting for a code.
    enrol(&app, &browser_client()).await;
    let first = authorize_and_sign_in(&app, &browser_client(), PASSWORD).await;
    let first_token = hidden(&first.body, "pending");
    let now = app.clock.now();
    let store = &app.state.core.store;
    let waiting = |t: String| async move {
        store
            .get_pending_login(&latchkey::crypto::secret::hash_token(&t), now)
            .await
            .expect("get")
            .is_some()
    };
    assert!(waiting(first_token.clone()).await);
    for _ in 0..latchkey::store::factors::MAX_PENDING_PER_USER {
        // A second apart: the oldest is the one that goes.
        app.clock.advance(1);
        authorize_and_sign_in(&app, &browser_client(), PASSWORD).await;
    }
    assert!(
        !waiting(first_token).await,
        "the oldest waiting sign-in went"
    );
    // Each right password is in the audit trail, though no session was started yet.
    let kinds = app.state.core.store.audit_kinds(1000).await.expect("audit");
    let accepted = kinds
        .iter()
        .filter(|k| *k == "login.password_accepted")
        .count();
    assert_eq!(
        accepted,
        1 + usize::try_from(latchkey::store::factors::MAX_PENDING_PER_USER).expect("small")
    );
    // A malformed code is no guess: it uses up nothing of the limit.
    let person = browser_client();
    let mut page = authorize_and_sign_in(&app, &person, PASSWORD).await;
    for typed in ["", "12345", "1234567", "abcdef", "12 34 5x"] {
        page = send_code(&app, &person, &page, typed).await;
        assert_eq!(page.status, 401, "{}", page.body);
    }
    let kinds = app.state.core.store.audit_kinds(1000).await.expect("audit");
    // Only the wrong code typed while setting the app up.
    assert_eq!(kinds.iter().filter(|k| *k == "mfa.failure").count(), 1);
}

async fn a_removed_user_leaves_no_second_factor_behind(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    enrol(&app, &browser_client()).await;
    let before = app
        .state
        .core
        .store
        .sealed_factor_secrets()
        .await
        .expect("secrets");
    assert_eq!(before.len(), 1);
    // alice comes from the config file; the store removes what any user held.
    let alice = app
        .state
        .core
        .store
        .find_user_by_login("alice")
        .await
        .expect("find")
        .expect("alice");
    app.state
        .core
        .store
        .remove_user(&alice.id, app.clock.now())
        .await
        .expect("remove");
    let after = app
        .state
        .core
        .store
        .sealed_factor_secrets()
        .await
        .expect("secrets");
    assert!(after.is_empty(), "{after:?}");
}

async fn a_session_from_before_the_app_gives_the_code_on_the_account_page(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let old = browser_client();
    assert_eq!(account_sign_in(&app, &old).await.status, 303);
    let secret = enrol(&app, &browser_client()).await;
    // The old session's page asks for the code; its forms do nothing meanwhile.
    let asked = get(&app, &old, "/account").await;
    assert!(
        asked.body.contains("action=\"/account/login/factor\""),
        "{}",
        asked.body
    );
    assert!(!asked.body.contains("<h2>Sessions</h2>"), "{}", asked.body);
    app.clock.advance(30);
    let done = send_code(&app, &old, &asked, &code_at(&secret, app.clock.now())).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = get(&app, &old, "/account").await;
    assert!(page.body.contains("<h2>Sessions</h2>"), "{}", page.body);
}

/// Without any requirement of the client's: a session from before the app was set up gives
/// the code on the device verification page too, before its confirmation counts.
async fn a_session_from_before_the_app_steps_up_on_the_device_page(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let person = browser_client();
    assert_eq!(account_sign_in(&app, &person).await.status, 303);
    let secret = enrol(&app, &browser_client()).await;
    app.clock.advance(30);
    let started = flows::start(&app, "openid").await;
    let user_code = started["user_code"].as_str().expect("user_code");
    let entry = get(&app, &person, "/device").await;
    let asked = post(
        &app,
        &person,
        "/device",
        &[
            ("csrf", &hidden(&entry.body, "csrf")),
            ("user_code", user_code),
        ],
    )
    .await;
    assert!(
        asked.body.contains("action=\"/device/login/factor\""),
        "{}",
        asked.body
    );
    let confirm = send_code(&app, &person, &asked, &code_at(&secret, app.clock.now())).await;
    assert!(
        confirm.body.contains("action=\"/device/confirm\""),
        "{}",
        confirm.body
    );
}

async fn a_factor_can_be_renamed(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let person = browser_client();
    enrol(&app, &person).await;
    let account = get(&app, &person, "/account").await;
    let rename = |name: String, factor: String| {
        let (body, person, app) = (account.body.clone(), person.clone(), &app);
        async move {
            post(
                app,
                &person,
                "/account/factor/rename",
                &[
                    ("csrf", &hidden(&body, "csrf")),
                    ("factor", &factor),
                    ("name", &name),
                ],
            )
            .await
        }
    };
    let factor = hidden(&account.body, "factor");
    let done = rename("  Work phone ".into(), factor.clone()).await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account?notice=renamed"),
        "{}",
        done.body
    );
    let page = get(&app, &person, "/account").await;
    assert!(
        page.body.contains("<strong>Work phone</strong>"),
        "{}",
        page.body
    );
    for bad in [String::new(), "x".repeat(65), "two\nlines".into()] {
        let refused = rename(bad, factor.clone()).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
    }
    // Another account's factor id (or none) renames nothing.
    let other = rename("Mine now".into(), "not-a-factor".into()).await;
    assert_eq!(other.location.as_deref(), Some("/account?notice=gone"));
    let kinds = app.state.core.store.audit_kinds(100).await.expect("audit");
    assert_eq!(kinds.iter().filter(|k| *k == "mfa.renamed").count(), 1);
}

crate::both_stores!(
    a_factor_can_be_renamed,
    a_session_from_before_the_app_steps_up_on_the_device_page,
    a_session_from_before_the_app_gives_the_code_on_the_account_page,
    setup_and_pending_sign_ins_are_bounded_per_account,
    a_removed_user_leaves_no_second_factor_behind,
    acr_values_step_up_the_session_in_place,
    a_preference_for_two_factors_is_not_a_demand,
    an_essential_second_factor_is_set_up_during_the_sign_in,
    declining_the_setup_fails_the_request,
    max_age_asks_for_both_factors_again,
    a_client_or_the_server_can_require_two_factors,
    with_second_factors_off_the_password_is_enough,
    a_device_client_that_requires_two_factors_steps_up,
    recovery_codes_sign_in_once_and_can_be_renewed,
    enrol_then_sign_in_with_the_app,
    a_code_is_accepted_once,
    code_guessing_is_throttled,
    parallel_guesses_are_checked_one_at_a_time,
    the_device_flow_asks_for_the_factor,
    the_password_grant_refuses_an_account_with_a_second_factor,
    an_expired_or_forged_pending_sign_in_goes_nowhere,
    removing_the_app_needs_a_code,
    an_admin_lists_and_resets_the_factor,
);
