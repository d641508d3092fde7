//! Passkeys over HTTP: adding one on /account, using it as the second factor and to sign in
//! without a password, and each refusal (a replayed answer, a tampered signature, no user
//! verification, a removed passkey). The browser's part is `SoftAuthenticator`, a software
//! authenticator that signs real WebAuthn answers; the server runs on `http://localhost`,
//! since an IP address cannot be a WebAuthn relying party.

use serde_json::Value;

use crate::common::{Backend, PASSWORD, TestApp, browser_client, hidden, json};
use crate::flows::{self, Issued, VERIFIER, decode_jwt};
use crate::mfa::{
    Got, account_sign_in, authorize_and_sign_in, code_in, get, past_consent, post, shown_codes,
};
use crate::soft_authenticator::SoftAuthenticator;

/// The ceremony options a page carries in its form's `data-options` attribute.
fn options_in(html: &str) -> Value {
    let start = html
        .find("data-options=\"")
        .unwrap_or_else(|| panic!("no passkey ceremony in page:\n{html}"))
        + 14;
    let end = start + html[start..].find('"').expect("end of attribute");
    let text = html[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("options are JSON ({e}): {text}"))
}

/// The form fields of the ceremony on `page`, with the browser's answer.
fn answer_form(page: &str, answer: &Value, extra: &[&str]) -> Vec<(String, String)> {
    let mut form = vec![
        ("csrf".to_owned(), hidden(page, "csrf")),
        ("ceremony".to_owned(), hidden(page, "ceremony")),
        ("credential".to_owned(), answer.to_string()),
    ];
    for name in extra {
        form.push(((*name).to_owned(), hidden(page, name)));
    }
    form
}

async fn post_owned(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
    form: &[(String, String)],
) -> Got {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post(app, b, path, &form).await
}

/// Alice, signed in with her password in `b`, adds a passkey named `name` kept by
/// `authenticator`: the page after the browser's answer.
async fn add_passkey(
    app: &TestApp,
    b: &reqwest::Client,
    authenticator: &mut SoftAuthenticator,
    name: &str,
) -> Got {
    let account = get(app, b, "/account").await;
    assert!(account.body.contains("Add a passkey"), "{}", account.body);
    let start = |password: &'static str| {
        let body = account.body.clone();
        async move {
            post(
                app,
                b,
                "/account/passkey",
                &[
                    ("csrf", &hidden(&body, "csrf")),
                    ("name", name),
                    ("password", password),
                ],
            )
            .await
        }
    };
    // The password again: a stolen session cookie alone does not add a passkey.
    let refused = start("not it").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let page = start(PASSWORD).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let options = options_in(&page.body);
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost", "{options}");
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let answer = authenticator
        .create(&options, true)
        .expect("the authenticator makes a credential");
    post_owned(
        app,
        b,
        "/account/passkey/finish",
        &answer_form(&page.body, &answer, &[]),
    )
    .await
}

/// A browser with a passkey on alice's account (and recovery codes): the browser, its
/// authenticator, and the codes.
async fn alice_with_a_passkey(app: &TestApp) -> (reqwest::Client, SoftAuthenticator, Vec<String>) {
    let b = browser_client();
    let mut authenticator = SoftAuthenticator::new(&app.issuer());
    assert_eq!(account_sign_in(app, &b).await.status, 303);
    let added = add_passkey(app, &b, &mut authenticator, "Laptop").await;
    // The first second factor: recovery codes, shown once.
    assert_eq!(added.status, 200, "{}", added.body);
    let codes = shown_codes(&added.body);
    assert_eq!(codes.len(), 10);
    let held = authenticator.credentials();
    assert!(
        matches!(held.as_slice(), [(_, true)]),
        "one discoverable credential"
    );
    (b, authenticator, codes)
}

/// The ID token's claims after redeeming the code a redirect carries.
async fn id_token_claims(app: &TestApp, redirect: &Got) -> Value {
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    let issued = Issued {
        code: code_in(redirect),
        verifier: VERIFIER.into(),
    };
    let tokens = json(flows::exchange(app, &issued).await).await;
    decode_jwt(tokens["id_token"].as_str().expect("an id_token")).1
}

fn amr(claims: &Value) -> Vec<String> {
    claims["amr"]
        .as_array()
        .expect("amr")
        .iter()
        .map(|v| v.as_str().expect("text").to_owned())
        .collect()
}

async fn a_passkey_is_a_second_factor(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (owner, mut authenticator, _) = alice_with_a_passkey(&app).await;
    let account = get(&app, &owner, "/account?notice=passkey-added").await;
    assert!(account.body.contains("Laptop"), "{}", account.body);
    assert!(
        account.body.contains("signs in without a password"),
        "{}",
        account.body
    );

    // Another browser: the password, then the passkey (no code field: alice has no app).
    let other = browser_client();
    let factor = authorize_and_sign_in(&app, &other, PASSWORD).await;
    assert_eq!(factor.status, 200, "{}", factor.body);
    assert!(factor.body.contains("Use your passkey"), "{}", factor.body);
    assert!(!factor.body.contains("id=\"code\""), "{}", factor.body);
    let answer = authenticator
        .get(&options_in(&factor.body))
        .expect("an assertion");
    let form = answer_form(&factor.body, &answer, &["pending", "interaction"]);
    let done = post_owned(&app, &other, "/login/factor", &form).await;
    let back = past_consent(&app, &other, done).await;
    let claims = id_token_claims(&app, &back).await;
    assert_eq!(amr(&claims), ["pwd", "swk", "user", "mfa"], "{claims}");
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");

    // The same answer again: the sign-in it finished is gone.
    let replayed = post_owned(&app, &other, "/login/factor", &form).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    assert!(replayed.body.contains("expired"), "{}", replayed.body);
}

async fn a_passkey_signs_in_without_a_password(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (_, mut authenticator, _) = alice_with_a_passkey(&app).await;
    let other = browser_client();
    let login = crate::mfa::got(
        other
            .get(app.url("/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", "web"),
                ("redirect_uri", crate::common::WEB_REDIRECT),
                ("scope", "openid"),
                ("state", "xyz"),
                ("nonce", "n-0S6_WzA2Mj"),
                ("code_challenge", flows::CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize"),
    )
    .await;
    assert!(
        login.body.contains("action=\"/login/passkey\""),
        "{}",
        login.body
    );
    let ceremony = post(
        &app,
        &other,
        "/login/passkey",
        &[
            ("csrf", &hidden(&login.body, "csrf")),
            ("interaction", &hidden(&login.body, "interaction")),
        ],
    )
    .await;
    assert_eq!(ceremony.status, 200, "{}", ceremony.body);
    let options = options_in(&ceremony.body);
    // No credential named: the browser offers the discoverable passkeys it has.
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    let answer = authenticator.get(&options).expect("an assertion");
    let form = answer_form(&ceremony.body, &answer, &["interaction"]);
    let done = post_owned(&app, &other, "/login/passkey/finish", &form).await;
    let back = past_consent(&app, &other, done).await;
    let claims = id_token_claims(&app, &back).await;
    assert_eq!(amr(&claims), ["swk", "user", "mfa"], "{claims}");
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    assert!(claims["auth_time"].as_i64().is_some());

    // Replayed: the ceremony was answered once.
    let again = browser_client();
    let replayed = post_owned(&app, &again, "/login/passkey/finish", &form).await;
    assert_ne!(replayed.status, 303, "{}", replayed.body);

    // The account page's login form has the button too.
    let third = browser_client();
    let login = get(&app, &third, "/account").await;
    assert!(
        login.body.contains("action=\"/account/login/passkey\""),
        "{}",
        login.body
    );
    let ceremony = post(
        &app,
        &third,
        "/account/login/passkey",
        &[("csrf", &hidden(&login.body, "csrf"))],
    )
    .await;
    let answer = authenticator
        .get(&options_in(&ceremony.body))
        .expect("an assertion");
    let done = post_owned(
        &app,
        &third,
        "/account/login/passkey/finish",
        &answer_form(&ceremony.body, &answer, &[]),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let account = get(&app, &third, "/account").await;
    assert!(account.body.contains("Signed in as"), "{}", account.body);
}

/// A passkey-only account's recovery codes stand in for a lost passkey.
async fn a_recovery_code_stands_in_for_a_lost_passkey(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (_, _, codes) = alice_with_a_passkey(&app).await;
    let phoneless = browser_client();
    let factor = authorize_and_sign_in(&app, &phoneless, PASSWORD).await;
    assert!(
        factor.body.contains("Use a recovery code"),
        "{}",
        factor.body
    );
    let used = post(
        &app,
        &phoneless,
        "/login/factor",
        &[
            ("csrf", &hidden(&factor.body, "csrf")),
            ("pending", &hidden(&factor.body, "pending")),
            ("interaction", &hidden(&factor.body, "interaction")),
            ("code", &codes[0]),
        ],
    )
    .await;
    let back = past_consent(&app, &phoneless, used).await;
    let claims = id_token_claims(&app, &back).await;
    assert_eq!(amr(&claims), ["pwd", "otp", "mfa"], "{claims}");
}

/// Someone with a stolen session cookie and the password cannot add their own passkey to
/// an account that has one, then remove the owner's with it: adding asks for the factor the
/// account has once the session's is some minutes old.
async fn adding_a_factor_asks_for_the_one_the_account_has(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (owner, mut authenticator, _) = alice_with_a_passkey(&app).await;
    app.clock.advance(600);
    let account = get(&app, &owner, "/account").await;
    let thief_adds = post(
        &app,
        &owner,
        "/account/passkey",
        &[
            ("csrf", &hidden(&account.body, "csrf")),
            ("name", "Thief"),
            ("password", PASSWORD),
        ],
    )
    .await;
    // Not the ceremony: the second-factor page, for the passkey alice has.
    assert!(
        !thief_adds.body.contains("Create the passkey"),
        "{}",
        thief_adds.body
    );
    assert!(
        thief_adds.body.contains("Use your passkey"),
        "{}",
        thief_adds.body
    );
    // Alice herself gives it, and then adds a second passkey.
    let answer = authenticator
        .get(&options_in(&thief_adds.body))
        .expect("an assertion");
    let confirmed = post_owned(
        &app,
        &owner,
        "/account/login/factor",
        &answer_form(&thief_adds.body, &answer, &["pending"]),
    )
    .await;
    assert_eq!(
        confirmed.location.as_deref(),
        Some("/account?notice=confirmed")
    );
    let mut second = SoftAuthenticator::new(&app.issuer());
    let added = add_passkey(&app, &owner, &mut second, "Phone").await;
    // Not the first factor: no new recovery codes.
    assert_eq!(
        added.location.as_deref(),
        Some("/account?notice=passkey-added"),
        "{}",
        added.body
    );
}

/// A device (RFC 8628) connected by a person who signs in with a passkey alone on the
/// verification page; the device's ID token says so.
async fn a_device_is_connected_with_a_passkey(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (_, mut authenticator, _) = alice_with_a_passkey(&app).await;
    let started = flows::start(&app, "openid").await;
    let user_code = started["user_code"].as_str().expect("user_code");
    let person = browser_client();
    let entry = get(&app, &person, "/device").await;
    let login = post(
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
        login.body.contains("action=\"/device/login/passkey\""),
        "{}",
        login.body
    );
    let ceremony = post(
        &app,
        &person,
        "/device/login/passkey",
        &[
            ("csrf", &hidden(&login.body, "csrf")),
            ("user_code", &hidden(&login.body, "user_code")),
        ],
    )
    .await;
    let answer = authenticator
        .get(&options_in(&ceremony.body))
        .expect("an assertion");
    let form = answer_form(&ceremony.body, &answer, &["user_code"]);
    let confirm = post_owned(&app, &person, "/device/login/passkey/finish", &form).await;
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
    let claims = decode_jwt(tokens["id_token"].as_str().expect("id_token")).1;
    assert_eq!(amr(&claims), ["swk", "user", "mfa"], "{claims}");
}

/// One passwordless ceremony on the account page's login form, answered by `answer`.
async fn passwordless(
    app: &TestApp,
    authenticator: &mut SoftAuthenticator,
    tamper: impl FnOnce(&mut Value),
) -> Got {
    let b = browser_client();
    let login = get(app, &b, "/account").await;
    let ceremony = post(
        app,
        &b,
        "/account/login/passkey",
        &[("csrf", &hidden(&login.body, "csrf"))],
    )
    .await;
    let mut answer = authenticator
        .get(&options_in(&ceremony.body))
        .expect("an assertion");
    tamper(&mut answer);
    post_owned(
        app,
        &b,
        "/account/login/passkey/finish",
        &answer_form(&ceremony.body, &answer, &[]),
    )
    .await
}

async fn refused_passkeys_sign_nobody_in(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (owner, mut authenticator, _) = alice_with_a_passkey(&app).await;

    // A signature that does not verify.
    let tampered = passwordless(&app, &mut authenticator, |a| {
        let sig = a["response"]["signature"].as_str().expect("signature");
        let flipped = if sig.starts_with('M') { "N" } else { "M" };
        a["response"]["signature"] = Value::from(format!("{flipped}{}", &sig[1..]));
    })
    .await;
    assert_eq!(tampered.status, 401, "{}", tampered.body);
    assert!(
        tampered.body.contains("could not be checked"),
        "{}",
        tampered.body
    );
    // Not a credential at all.
    let garbage = passwordless(&app, &mut authenticator, |a| *a = Value::from("nonsense")).await;
    assert_eq!(garbage.status, 401, "{}", garbage.body);

    // The authenticator did not verify the user (no PIN, no biometric): not two factors.
    authenticator.set_user_verified(false);
    let unverified = passwordless(&app, &mut authenticator, |_| {}).await;
    assert_eq!(unverified.status, 401, "{}", unverified.body);
    authenticator.set_user_verified(true);
    assert_eq!(
        passwordless(&app, &mut authenticator, |_| {}).await.status,
        303
    );

    // Removed on the account page (no app: the recent passkey sign-in stands in for a
    // code), the passkey is unknown here.
    let account = get(&app, &owner, "/account").await;
    let removed = post(
        &app,
        &owner,
        "/account/factor/remove",
        &[
            ("csrf", &hidden(&account.body, "csrf")),
            ("factor", &hidden(&account.body, "factor")),
        ],
    )
    .await;
    assert_eq!(
        removed.location.as_deref(),
        Some("/account?notice=removed"),
        "{}",
        removed.body
    );
    let unknown = passwordless(&app, &mut authenticator, |_| {}).await;
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    assert!(
        unknown.body.contains("not registered here"),
        "{}",
        unknown.body
    );
}

/// Refused passkeys are counted against the address, as wrong codes are, so a flood of them
/// writes a bounded number of audit rows and then waits; never against the account.
async fn refused_passkeys_are_limited_per_address(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |c| {
        c.login.max_failures_per_ip = 2;
    })
    .await
    else {
        return;
    };
    let (_, mut authenticator, _) = alice_with_a_passkey(&app).await;
    let tamper = |a: &mut Value| a["response"]["signature"] = Value::from("AAAA");
    for _ in 0..2 {
        let refused = passwordless(&app, &mut authenticator, tamper).await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let audited = || async {
        let kinds = app.state.core.store.audit_kinds(1000).await.expect("audit");
        kinds.iter().filter(|k| *k == "login.failure").count()
    };
    let rows = audited().await;
    let waiting = passwordless(&app, &mut authenticator, tamper).await;
    assert_eq!(waiting.status, 429, "{}", waiting.body);
    assert!(waiting.body.contains("Too many"), "{}", waiting.body);
    assert_eq!(
        audited().await,
        rows,
        "a refusal while waiting is not audited"
    );
    // The lockout passes; the right passkey signs in.
    app.clock
        .advance(app.state.config.login.max_lockout_seconds);
    assert_eq!(
        passwordless(&app, &mut authenticator, |_| {}).await.status,
        303
    );
}

/// A passkey without a signature counter (a synced one) cannot replay a sign-in: the
/// ceremony is spent once it signed someone in, however its token is spelled.
async fn a_counterless_passkey_cannot_replay_a_sign_in(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (_, mut authenticator, _) = alice_with_a_passkey(&app).await;
    authenticator.without_counter();
    let b1 = browser_client();
    let login = get(&app, &b1, "/account").await;
    let ceremony = post(
        &app,
        &b1,
        "/account/login/passkey",
        &[("csrf", &hidden(&login.body, "csrf"))],
    )
    .await;
    let answer = authenticator
        .get(&options_in(&ceremony.body))
        .expect("an assertion");
    let form = answer_form(&ceremony.body, &answer, &[]);
    let first = post_owned(&app, &b1, "/account/login/passkey/finish", &form).await;
    assert_eq!(first.status, 303, "{}", first.body);
    // The same answer, and the same token spelled otherwise: nobody is signed in.
    let respell = |prefix: &str| {
        form.iter()
            .map(|(k, v)| {
                let v = if k == "ceremony" {
                    format!("{prefix}{v}")
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect::<Vec<_>>()
    };
    for (i, replay) in [respell(""), respell("0"), respell("+")].iter().enumerate() {
        let thief = browser_client();
        let csrf_page = get(&app, &thief, "/account").await;
        let mut replay = replay.clone();
        for (k, v) in &mut replay {
            if k == "csrf" {
                *v = hidden(&csrf_page.body, "csrf");
            }
        }
        let r = post_owned(&app, &thief, "/account/login/passkey/finish", &replay).await;
        assert_eq!(r.status, 401, "replay {i}: {}", r.body);
        let account = get(&app, &thief, "/account").await;
        assert!(!account.body.contains("Signed in as"), "replay {i}");
    }
}

/// One passkey answer posted from two browsers at once signs one of them in.
async fn one_answer_raced_signs_in_once(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |_| {}).await else {
        return;
    };
    let (_, mut authenticator, _) = alice_with_a_passkey(&app).await;
    authenticator.without_counter();
    let first = browser_client();
    let login = get(&app, &first, "/account").await;
    let ceremony = post(
        &app,
        &first,
        "/account/login/passkey",
        &[("csrf", &hidden(&login.body, "csrf"))],
    )
    .await;
    let answer = authenticator
        .get(&options_in(&ceremony.body))
        .expect("an assertion");
    let form = answer_form(&ceremony.body, &answer, &[]);
    // The second browser sends the same answer, with the CSRF value of its own page.
    let second = browser_client();
    let page = get(&app, &second, "/account").await;
    let mut copied = form.clone();
    for (k, v) in &mut copied {
        if k == "csrf" {
            *v = hidden(&page.body, "csrf");
        }
    }
    let (x, y) = tokio::join!(
        post_owned(&app, &first, "/account/login/passkey/finish", &form),
        post_owned(&app, &second, "/account/login/passkey/finish", &copied)
    );
    let signed_in = [x.status, y.status].iter().filter(|s| **s == 303).count();
    assert_eq!(signed_in, 1, "{} {}", x.status, y.status);
}

/// Without an authenticator app, a change that needs the second factor asks for the
/// passkey once the last one is some minutes old; where the server requires a second
/// factor, the last one cannot be removed.
async fn changes_ask_for_the_passkey_again(b: Backend) {
    let Some(app) = TestApp::spawn_on_localhost(b, |c| {
        c.mfa.mode = latchkey::config::MfaMode::Required;
    })
    .await
    else {
        return;
    };
    let (owner, mut authenticator, _) = alice_with_a_passkey(&app).await;
    let account = get(&app, &owner, "/account").await;
    let remove = |body: String| {
        let owner = owner.clone();
        let app = &app;
        async move {
            post(
                app,
                &owner,
                "/account/factor/remove",
                &[
                    ("csrf", &hidden(&body, "csrf")),
                    ("factor", &hidden(&body, "factor")),
                ],
            )
            .await
        }
    };
    let kept = remove(account.body.clone()).await;
    assert_eq!(
        kept.location.as_deref(),
        Some("/account?notice=last-factor")
    );

    // Ten minutes later, new recovery codes need the passkey first.
    app.clock.advance(600);
    let account = get(&app, &owner, "/account").await;
    let renew = post(
        &app,
        &owner,
        "/account/recovery-codes",
        &[("csrf", &hidden(&account.body, "csrf"))],
    )
    .await;
    assert_eq!(renew.status, 200, "{}", renew.body);
    assert!(renew.body.contains("Use your passkey"), "{}", renew.body);
    let answer = authenticator
        .get(&options_in(&renew.body))
        .expect("an assertion");
    let confirmed = post_owned(
        &app,
        &owner,
        "/account/login/factor",
        &answer_form(&renew.body, &answer, &["pending"]),
    )
    .await;
    assert_eq!(
        confirmed.location.as_deref(),
        Some("/account?notice=confirmed")
    );
    let account = get(&app, &owner, "/account").await;
    let renewed = post(
        &app,
        &owner,
        "/account/recovery-codes",
        &[("csrf", &hidden(&account.body, "csrf"))],
    )
    .await;
    assert_eq!(shown_codes(&renewed.body).len(), 10, "{}", renewed.body);
}

/// On an issuer whose host is an IP address there are no passkeys: no button, and the
/// endpoints say so.
async fn an_ip_issuer_has_no_passkeys(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let browser = browser_client();
    let login = get(&app, &browser, "/account").await;
    assert!(!login.body.contains("passkey"), "{}", login.body);
    let refused = post(
        &app,
        &browser,
        "/account/login/passkey",
        &[("csrf", &hidden(&login.body, "csrf"))],
    )
    .await;
    assert_eq!(refused.status, 404, "{}", refused.body);
}

crate::both_stores!(
    a_passkey_is_a_second_factor,
    a_passkey_signs_in_without_a_password,
    refused_passkeys_sign_nobody_in,
    changes_ask_for_the_passkey_again,
    refused_passkeys_are_limited_per_address,
    an_ip_issuer_has_no_passkeys,
    a_device_is_connected_with_a_passkey,
    a_recovery_code_stands_in_for_a_lost_passkey,
    adding_a_factor_asks_for_the_one_the_account_has,
    a_counterless_passkey_cannot_replay_a_sign_in,
    one_answer_raced_signs_in_once,
);
