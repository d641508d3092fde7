//! The flow explorer over HTTP: each flow runs to its end through `/explore` on both stores,
//! as a learner's browser drives it (the explorer itself talks to the server's public
//! endpoints), the "break it" experiments show the server's refusals, and the explorer is
//! absent unless turned on.

use crate::common::{Backend, PASSWORD, TestApp, browser_client, hidden};
use crate::mfa::{Got, get, got, post};

async fn explorer(b: Backend) -> Option<TestApp> {
    TestApp::spawn_with(b, |c| c.explorer.enabled = true).await
}

/// Undo the HTML escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#43;", "+")
        .replace("&#x2b;", "+")
        .replace("&#47;", "/")
        .replace("&#x2f;", "/")
        .replace("&#61;", "=")
        .replace("&#x3d;", "=")
}

/// Start `flow` with the experiments `breaks` in browser `b`: the run page.
async fn start(app: &TestApp, b: &reqwest::Client, flow: &str, breaks: &[&str]) -> Got {
    let index = get(app, b, "/explore").await;
    assert_eq!(index.status, 200, "{}", index.body);
    assert!(
        index.body.contains(&format!("id=\"flow-{flow}\"")),
        "{}",
        index.body
    );
    let csrf = hidden(&index.body, "csrf");
    let names: Vec<String> = breaks.iter().map(|k| format!("break-{k}")).collect();
    let mut form = vec![("csrf", csrf.as_str()), ("flow", flow)];
    for n in &names {
        form.push((n.as_str(), "on"));
    }
    let started = post(app, b, "/explore/start", &form).await;
    assert_eq!(
        started.location.as_deref(),
        Some("/explore/run"),
        "{}",
        started.body
    );
    get(app, b, "/explore/run").await
}

/// The run page's link for the browser (the authorization request, the verification page).
fn open_link(run: &str) -> String {
    let at = run
        .find("class=\"button primary\" href=\"")
        .unwrap_or_else(|| panic!("no link for the browser:\n{run}"))
        + 29;
    let end = at + run[at..].find('"').expect("end of href");
    unescape(&run[at..end])
}

/// Ask the explorer to take the follow-up `action`: the run page after it.
async fn act(app: &TestApp, b: &reqwest::Client, run: &Got, action: &str) -> Got {
    assert!(
        run.body
            .contains(&format!("name=\"action\" value=\"{action}\"")),
        "{action} is not offered:\n{}",
        run.body
    );
    let done = post(
        app,
        b,
        "/explore/act",
        &[("csrf", &hidden(&run.body, "csrf")), ("action", action)],
    )
    .await;
    assert_eq!(done.location.as_deref(), Some("/explore/run"));
    get(app, b, "/explore/run").await
}

/// The learner's browser signs in and allows, from the authorization request's URL to the
/// server's answer (a redirect to the callback, or a form_post page).
async fn sign_in_and_allow(app: &TestApp, b: &reqwest::Client, url: &str) -> Got {
    let path = url.strip_prefix(&app.base).expect("a URL of this server");
    let login = get(app, b, path).await;
    assert!(login.body.contains("action=\"/login\""), "{}", login.body);
    let consent = post(
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
    .await;
    if !consent.body.contains("action=\"/consent\"") {
        // Allowed before: the remembered consent answers at once.
        return consent;
    }
    post(
        app,
        b,
        "/consent",
        &[
            ("csrf", &hidden(&consent.body, "csrf")),
            ("interaction", &hidden(&consent.body, "interaction")),
            ("decision", "allow"),
        ],
    )
    .await
}

/// Follow the server's answer back to the explorer's callback: the run page.
async fn back_to_explorer(app: &TestApp, b: &reqwest::Client, answer: Got) -> Got {
    let back = if let Some(to) = answer.location {
        let path = to.strip_prefix(&app.base).expect("the explorer's callback");
        assert!(path.starts_with("/explore/callback?"), "{path}");
        get(app, b, path).await
    } else {
        // form_post: the page's form, posted as the browser would.
        assert!(
            answer.body.contains("action=\"http"),
            "a form_post page: {}",
            answer.body
        );
        let fields: Vec<(String, String)> = answer
            .body
            .split("<input type=\"hidden\" name=\"")
            .skip(1)
            .map(|f| {
                let name = &f[..f.find('"').expect("name")];
                (name.to_owned(), unescape(&hidden(&answer.body, name)))
            })
            .collect();
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        post(app, b, "/explore/callback", &form).await
    };
    assert_eq!(
        back.location.as_deref(),
        Some("/explore/run"),
        "{}",
        back.body
    );
    get(app, b, "/explore/run").await
}

async fn absent_unless_turned_on(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let browser = browser_client();
    assert_eq!(get(&app, &browser, "/explore").await.status, 404);
    assert_eq!(get(&app, &browser, "/explore/run").await.status, 404);
    // Nor are its clients registered.
    assert!(
        app.state
            .core
            .clients
            .get("explorer-web")
            .await
            .expect("clients")
            .is_none()
    );
}

async fn client_credentials_through_the_explorer(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    let browser = browser_client();
    let run = start(&app, &browser, "client-credentials", &[]).await;
    assert!(run.body.contains("POST /token HTTP/1.1"), "{}", run.body);
    assert!(run.body.contains("HTTP/1.1 200 OK"), "{}", run.body);
    assert!(run.body.contains("grant_type=client_credentials"));
    assert!(run.body.contains("Signature: valid"), "{}", run.body);
    assert!(run.body.contains("<svg"), "a sequence diagram");
    assert!(run.body.contains("RFC 6749 section 4.4"));
    // Break it: a wrong secret, and the server's answer.
    let broken = start(&app, &browser, "client-credentials", &["wrong-secret"]).await;
    assert!(broken.body.contains("HTTP/1.1 401"), "{}", broken.body);
    assert!(broken.body.contains("invalid_client"), "{}", broken.body);
    assert!(
        broken.body.contains("www-authenticate: Basic"),
        "{}",
        broken.body
    );
    // Another browser sees none of it.
    let other = browser_client();
    let nothing = get(&app, &other, "/explore/run").await;
    assert_eq!(nothing.location.as_deref(), Some("/explore"));
}

async fn code_with_pkce_through_the_explorer(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    let browser = browser_client();
    let run = start(&app, &browser, "code-pkce", &[]).await;
    // The S256 computation is shown, and every parameter explained.
    assert!(
        run.body
            .contains("code_challenge = BASE64URL(SHA-256(code_verifier))")
    );
    assert!(run.body.contains("<code>state</code>"), "{}", run.body);
    let answer = sign_in_and_allow(&app, &browser, &open_link(&run.body)).await;
    let run = back_to_explorer(&app, &browser, answer).await;
    assert!(run.body.contains("state matches"), "{}", run.body);
    assert!(run.body.contains("mix-up defence"), "{}", run.body);
    assert!(run.body.contains("code_verifier="), "{}", run.body);
    assert!(run.body.contains("HTTP/1.1 200 OK"), "{}", run.body);
    assert!(run.body.contains("(ID token)"), "{}", run.body);
    assert!(run.body.contains("at_hash recomputed"), "{}", run.body);
    assert!(!run.body.contains("NOT valid"), "{}", run.body);
    // Follow-ups with the tokens it got.
    let run = act(&app, &browser, &run, "userinfo").await;
    assert!(run.body.contains("GET /userinfo HTTP/1.1"), "{}", run.body);
    assert!(run.body.contains("Authorization: Bearer"), "{}", run.body);
    let run = act(&app, &browser, &run, "refresh").await;
    // Past the grace period for retries, the old refresh token is a thief's.
    app.clock
        .advance(app.state.config.tokens.refresh_grace_period + 1);
    let run = act(&app, &browser, &run, "reuse-refresh").await;
    assert!(
        run.body
            .contains("The new refresh token no longer works either"),
        "{}",
        run.body
    );
    assert!(run.body.contains("invalid_grant"), "{}", run.body);
}

/// The confidential web app: the code flow with its secret, then every next step, ending
/// with RP-initiated logout through the browser.
async fn the_code_flow_and_every_next_step(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    let browser = browser_client();
    let run = start(&app, &browser, "code", &[]).await;
    let answer = sign_in_and_allow(&app, &browser, &open_link(&run.body)).await;
    let run = back_to_explorer(&app, &browser, answer).await;
    assert!(run.body.contains("Authorization: Basic"), "{}", run.body);
    let run = act(&app, &browser, &run, "introspection").await;
    assert!(
        run.body.contains("POST /introspect HTTP/1.1"),
        "{}",
        run.body
    );
    assert!(run.body.contains("&#34;active&#34;: true"), "{}", run.body);
    let run = act(&app, &browser, &run, "bad-token-userinfo").await;
    assert!(run.body.contains("HTTP/1.1 401"), "{}", run.body);
    assert!(
        run.body.contains("www-authenticate: Bearer"),
        "{}",
        run.body
    );
    let run = act(&app, &browser, &run, "revocation").await;
    assert!(run.body.contains("POST /revoke HTTP/1.1"), "{}", run.body);
    assert!(
        !run.body.contains("value=\"refresh\""),
        "nothing left to refresh"
    );
    let run = act(&app, &browser, &run, "logout").await;
    let url = open_link(&run.body);
    let path = url.strip_prefix(&app.base).expect("ours");
    let out = get(&app, &browser, path).await;
    let to = out
        .location
        .expect("straight back: the hint names the session");
    let path = to.strip_prefix(&app.base).expect("the explorer's page");
    assert!(path.starts_with("/explore/signed-out?"), "{path}");
    let back = get(&app, &browser, path).await;
    assert_eq!(back.location.as_deref(), Some("/explore/run"));
    let run = get(&app, &browser, "/explore/run").await;
    assert!(run.body.contains("signed out"), "{}", run.body);
    assert!(run.body.contains("state matches"), "{}", run.body);
    assert!(run.body.contains("This run is over"), "{}", run.body);
}

/// What a review attacking the explorer found, each now refused: an answer the run did not
/// ask for (another site's link, a reload) changes nothing; runs are sealed in the store.
async fn only_the_runs_own_answer_is_taken_once(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    let browser = browser_client();
    let run = start(&app, &browser, "code-pkce", &[]).await;
    let before = run.body.matches("<li id=\"step-").count();
    // Another site sends the learner's browser here with an answer of its own.
    let forged = get(
        &app,
        &browser,
        "/explore/callback?error=access_denied&error_description=sign+in+at+evil.example&state=guess",
    )
    .await;
    assert_eq!(forged.location.as_deref(), Some("/explore/run"));
    let after = get(&app, &browser, "/explore/run").await;
    assert_eq!(after.body.matches("<li id=\"step-").count(), before);
    assert!(!after.body.contains("evil.example"), "{}", after.body);
    // The real answer, then the same URL again (a reload): redeemed once.
    let answer = sign_in_and_allow(&app, &browser, &open_link(&run.body)).await;
    let callback = answer.location.clone().expect("a redirect");
    let run = back_to_explorer(&app, &browser, answer).await;
    let steps = run.body.matches("<li id=\"step-").count();
    let path = callback.strip_prefix(&app.base).expect("ours");
    get(&app, &browser, path).await;
    let again = get(&app, &browser, "/explore/run").await;
    assert_eq!(again.body.matches("<li id=\"step-").count(), steps);
    // The tokens the run holds are sealed in the store.
    let sealed: Vec<String> = app.state.core.store.explorer_run_data_for_tests().await;
    assert!(!sealed.is_empty());
    // A token the page shows (its first 60 characters) is nowhere in what the store holds
    // ("eyJ" alone would turn up in random ciphertext now and then).
    let at = run.body.find("eyJ").expect("a token on the page");
    let token = &run.body[at..at + 60];
    assert!(
        sealed.iter().all(|d| !d.contains(token)),
        "a token in the clear"
    );
    // An oversized answer is refused, not stored.
    let huge = format!("/explore/callback?error_description={}", "x".repeat(9000));
    assert_eq!(get(&app, &browser, &huge).await.status, 400);
}

/// The explorer is for a server on one's own machine: refused on a public issuer.
async fn refused_on_a_public_issuer(_: Backend) {
    let text = "issuer = \"https://id.example.com\"\n[explorer]\nenabled = true\n";
    let err = latchkey::config::Config::from_toml(text, &[]).expect_err("refused");
    assert!(
        err.iter().any(|p| p.field == "explorer.enabled"),
        "{:?}",
        err.iter().map(|p| &p.message).collect::<Vec<_>>()
    );
}

async fn broken_code_flows_show_the_refusal(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    for (breaks, expect) in [
        (&["wrong-verifier"][..], "invalid_grant"),
        (
            &["replay-code"][..],
            "Break it: the client redeems the same code again",
        ),
    ] {
        let browser = browser_client();
        let run = start(&app, &browser, "code-pkce", breaks).await;
        let answer = sign_in_and_allow(&app, &browser, &open_link(&run.body)).await;
        let run = back_to_explorer(&app, &browser, answer).await;
        assert!(run.body.contains(expect), "{breaks:?}: {}", run.body);
        assert!(run.body.contains("class=\"step refused\""), "{}", run.body);
    }
    // No PKCE from a public client: refused at the authorization endpoint, back through the
    // browser with the error.
    let browser = browser_client();
    let run = start(&app, &browser, "code-pkce", &["no-challenge"]).await;
    let url = open_link(&run.body);
    let path = url.strip_prefix(&app.base).expect("ours");
    let refused = got(browser.get(app.url(path)).send().await.expect("GET")).await;
    let run = back_to_explorer(&app, &browser, refused).await;
    assert!(run.body.contains("error=invalid_request"), "{}", run.body);
}

async fn the_device_flow_through_the_explorer(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    let device = browser_client();
    let run = start(&app, &device, "device", &["poll-too-fast"]).await;
    assert!(run.body.contains("class=\"device-code\""), "{}", run.body);
    // Polled before the user approved, twice at once: pending, then slow_down.
    let run = act(&app, &device, &run, "poll").await;
    assert!(run.body.contains("authorization_pending"), "{}", run.body);
    assert!(run.body.contains("slow_down"), "{}", run.body);
    // The user, on their phone: the verification page, sign in, allow.
    let phone = browser_client();
    let url = open_link(&run.body);
    let path = url.strip_prefix(&app.base).expect("ours");
    let entry = get(&app, &phone, path).await;
    let typed = url::Url::parse(&url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned())
        .expect("the code in verification_uri_complete");
    let login = post(
        &app,
        &phone,
        "/device",
        &[
            ("csrf", &hidden(&entry.body, "csrf")),
            ("user_code", &typed),
        ],
    )
    .await;
    let confirm = post(
        &app,
        &phone,
        "/device/login",
        &[
            ("csrf", &hidden(&login.body, "csrf")),
            ("user_code", &hidden(&login.body, "user_code")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let allowed = post(
        &app,
        &phone,
        "/device/confirm",
        &[
            ("csrf", &hidden(&confirm.body, "csrf")),
            ("user_code", &hidden(&confirm.body, "user_code")),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    app.clock.advance(30);
    let run = act(&app, &device, &run, "poll").await;
    assert!(run.body.contains("HTTP/1.1 200 OK"), "{}", run.body);
    assert!(run.body.contains("(ID token)"), "{}", run.body);
}

async fn implicit_and_hybrid_come_back_by_form_post(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    for flow in ["implicit-form-post", "hybrid"] {
        let browser = browser_client();
        let run = start(&app, &browser, flow, &[]).await;
        assert!(run.body.contains("response_mode=form_post"), "{}", run.body);
        let answer = sign_in_and_allow(&app, &browser, &open_link(&run.body)).await;
        assert_eq!(answer.status, 200, "a form_post page: {}", answer.body);
        let run = back_to_explorer(&app, &browser, answer).await;
        assert!(run.body.contains("POST /explore/callback"), "{}", run.body);
        assert!(run.body.contains("(ID token)"), "{flow}: {}", run.body);
        if flow == "hybrid" {
            assert!(run.body.contains("c_hash recomputed"), "{}", run.body);
        }
    }
}

async fn the_password_grant_through_the_explorer(b: Backend) {
    let Some(app) = explorer(b).await else {
        return;
    };
    let browser = browser_client();
    let run = start(&app, &browser, "password", &[]).await;
    assert!(run.body.contains("RFC 9700 section 2.4"), "{}", run.body);
    let done = post(
        &app,
        &browser,
        "/explore/act",
        &[
            ("csrf", &hidden(&run.body, "csrf")),
            ("action", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.location.as_deref(), Some("/explore/run"));
    let run = get(&app, &browser, "/explore/run").await;
    assert!(run.body.contains("HTTP/1.1 200 OK"), "{}", run.body);
    assert!(run.body.contains("password=(hidden)"), "{}", run.body);
    assert!(!run.body.contains(PASSWORD), "the password is not kept");
}

crate::both_stores!(
    absent_unless_turned_on,
    client_credentials_through_the_explorer,
    code_with_pkce_through_the_explorer,
    the_code_flow_and_every_next_step,
    only_the_runs_own_answer_is_taken_once,
    refused_on_a_public_issuer,
    broken_code_flows_show_the_refusal,
    the_device_flow_through_the_explorer,
    implicit_and_hybrid_come_back_by_form_post,
    the_password_grant_through_the_explorer,
);
