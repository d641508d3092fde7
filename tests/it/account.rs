//! The account page's sessions, connected apps and password change, over HTTP as a browser
//! drives them: each form, its refusals, and what it does to other browsers and apps.

use latchkey::model::{Source, UserClaims};
use latchkey::store::users::NewUser;
use reqwest::StatusCode;
use reqwest::redirect::Policy;

use crate::browser::through_pages;
use crate::common::{Backend, PASSWORD, TestApp, WEB_REDIRECT, browser_client, hidden, json};
use crate::flows::{CHALLENGE, decode_jwt, exchange, get_code};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// What the browser got back: status, `Location` and body.
struct Got {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn got(r: reqwest::Response) -> Got {
    Got {
        status: r.status(),
        location: r
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ascii").to_owned()),
        body: r.text().await.expect("body"),
    }
}

async fn post(app: &TestApp, b: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> Got {
    got(b.post(app.url(path)).form(form).send().await.expect("POST")).await
}

async fn get(app: &TestApp, b: &reqwest::Client, path: &str) -> Got {
    got(b.get(app.url(path)).send().await.expect("GET")).await
}

/// A browser with its own cookies that names itself `user_agent`.
fn browser_named(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .user_agent(user_agent)
        .build()
        .expect("client")
}

/// Sign in to /account as `user` with `password`: the answer to the login form.
async fn try_sign_in(app: &TestApp, b: &reqwest::Client, user: &str, password: &str) -> Got {
    let login = get(app, b, "/account").await;
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
            ("username", user),
            ("password", password),
        ],
    )
    .await
}

async fn sign_in(app: &TestApp, b: &reqwest::Client, user: &str) {
    let done = try_sign_in(app, b, user, PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
}

/// Whether browser `b` is signed in: /account shows the page, not the login form.
async fn signed_in(app: &TestApp, b: &reqwest::Client) -> bool {
    let page = get(app, b, "/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    !page.body.contains("action=\"/account/login\"")
}

/// The account page in `b`, which must be signed in.
async fn account(app: &TestApp, b: &reqwest::Client) -> String {
    let page = get(app, b, "/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h2>Sessions</h2>"), "{}", page.body);
    page.body
}

/// Carol: an account the CLI added (so not the config file's), with the test password.
async fn add_carol(app: &TestApp) {
    let store = &app.state.core.store;
    let alice = store
        .find_user_by_login("alice")
        .await
        .expect("store")
        .expect("alice");
    store
        .insert_user(
            NewUser {
                username: "carol",
                password_hash: &alice.password_hash,
                claims: &UserClaims::default(),
                source: Source::Cli,
            },
            app.clock.now(),
        )
        .await
        .expect("store")
        .expect("carol is new");
}

/// The sids of the live sessions of `user`, from the store.
async fn sids(app: &TestApp, user: &str) -> Vec<String> {
    let store = &app.state.core.store;
    let u = store
        .find_user_by_login(user)
        .await
        .expect("store")
        .expect("user");
    store
        .live_sessions(&u.id, app.clock.now(), app.state.config.sessions.idle_ttl)
        .await
        .expect("store")
        .into_iter()
        .map(|s| s.sid)
        .collect()
}

async fn audited(app: &TestApp, kind: &str) -> usize {
    let kinds = app.state.core.store.audit_kinds(1000).await.expect("audit");
    kinds.iter().filter(|k| *k == kind).count()
}

/// The `<li>` of the session list that holds `needle`.
fn session_item<'a>(page: &'a str, needle: &str) -> &'a str {
    let list = &page[page
        .find("<ul class=\"factors sessions\">")
        .expect("session list")..];
    let list = &list[..list.find("</ul>").expect("end of list")];
    list.split("<li>")
        .find(|item| item.contains(needle))
        .unwrap_or_else(|| panic!("no session with {needle}: {list}"))
}

async fn sessions_are_listed_with_their_browsers(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let (one, two) = (
        browser_named("Browser-One/1.0"),
        browser_named("Browser-Two/2.0"),
    );
    sign_in(&app, &one, "alice").await;
    app.clock.advance(90);
    sign_in(&app, &two, "alice").await;
    let page = account(&app, &one).await;
    assert_eq!(page.matches("this browser").count(), 1, "{page}");
    let mine = session_item(&page, "Browser-One/1.0");
    assert!(mine.contains("this browser"), "{mine}");
    assert!(mine.contains("from 127.0.0.1"), "{mine}");
    // Only the others can be signed out one by one; this one has the Sign out link.
    assert!(!mine.contains("name=\"sid\""), "{mine}");
    let other = session_item(&page, "Browser-Two/2.0");
    assert!(!other.contains("this browser"), "{other}");
    assert!(other.contains("name=\"sid\""), "{other}");
    assert!(page.contains("Sign out all other sessions"), "{page}");
    // Sessions are named by their public sid, never by the store's key.
    let store = &app.state.core.store;
    let alice = store
        .find_user_by_login("alice")
        .await
        .expect("store")
        .expect("alice");
    let live = store
        .live_sessions(&alice.id, app.clock.now(), 3600)
        .await
        .expect("store");
    assert_eq!(live.len(), 2);
    for s in &live {
        assert!(!page.contains(&s.id_hash), "{page}");
    }
    // A session from before addresses and user agents were recorded.
    let mut old = live[0].clone();
    old.id_hash = "0".repeat(64);
    old.sid = "an-old-session".into();
    (old.ip, old.user_agent) = (None, None);
    store.insert_session(&old).await.expect("store");
    let page = account(&app, &one).await;
    let item = session_item(&page, "an-old-session");
    assert!(item.contains("<strong>unknown</strong>"), "{item}");
    assert!(item.contains("from unknown"), "{item}");
}

async fn signing_out_all_others_keeps_this_browser(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let (here, there, elsewhere) = (browser_client(), browser_client(), browser_client());
    for browser in [&here, &there, &elsewhere] {
        sign_in(&app, browser, "alice").await;
    }
    let page = account(&app, &here).await;
    let done = post(
        &app,
        &here,
        "/account/sessions/end-others",
        &[("csrf", &hidden(&page, "csrf"))],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/account?notice=others-ended")
    );
    assert!(!signed_in(&app, &there).await);
    assert!(!signed_in(&app, &elsewhere).await);
    let page = get(&app, &here, "/account?notice=others-ended").await.body;
    assert!(
        page.contains("Every other session was signed out"),
        "{page}"
    );
    assert_eq!(page.matches("this browser").count(), 1, "{page}");
    assert!(!page.contains("Sign out all other sessions"), "{page}");
    assert_eq!(sids(&app, "alice").await.len(), 1);
    assert_eq!(audited(&app, "session.others_ended").await, 1);
    // With nobody else signed in, the page says so.
    let again = post(
        &app,
        &here,
        "/account/sessions/end-others",
        &[("csrf", &hidden(&page, "csrf"))],
    )
    .await;
    assert_eq!(again.location.as_deref(), Some("/account?notice=no-others"));
    assert!(signed_in(&app, &here).await);
}

async fn signing_out_one_session_and_not_someone_elses(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    add_carol(&app).await;
    let (here, there, carols) = (browser_client(), browser_client(), browser_client());
    sign_in(&app, &here, "alice").await;
    let mine = sids(&app, "alice").await;
    sign_in(&app, &there, "alice").await;
    sign_in(&app, &carols, "carol").await;
    let other = sids(&app, "alice")
        .await
        .into_iter()
        .find(|s| !mine.contains(s))
        .expect("the other session");
    let carol_sid = sids(&app, "carol").await.pop().expect("carol's session");
    let page = account(&app, &here).await;
    let end = |sid: String| {
        let (app, here, csrf) = (&app, &here, hidden(&page, "csrf"));
        async move {
            post(
                app,
                here,
                "/account/sessions/end",
                &[("csrf", &csrf), ("sid", &sid)],
            )
            .await
        }
    };
    // Someone else's sid: nothing happens to it.
    let refused = end(carol_sid.clone()).await;
    assert_eq!(
        refused.location.as_deref(),
        Some("/account?notice=session-gone")
    );
    assert!(signed_in(&app, &carols).await);
    assert_eq!(sids(&app, "carol").await, [carol_sid]);
    // This browser's own: it is not ended this way.
    let own = end(mine[0].clone()).await;
    assert_eq!(
        own.location.as_deref(),
        Some("/account?notice=this-session")
    );
    assert!(signed_in(&app, &here).await);
    let done = end(other.clone()).await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account?notice=session-ended")
    );
    assert!(!signed_in(&app, &there).await);
    assert!(signed_in(&app, &here).await);
    assert_eq!(sids(&app, "alice").await, mine);
    let again = end(other).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/account?notice=session-gone")
    );
    assert_eq!(audited(&app, "session.ended").await, 1);
}

/// `web` gets Logout Tokens (nobody listens: no worker runs), so removing it queues one.
fn web_has_backchannel_logout(c: &mut latchkey::config::Config) {
    for client in c.clients.iter_mut().filter(|c| c.client_id == "web") {
        client.backchannel_logout_uri = Some("http://127.0.0.1:9/bcl".into());
    }
}

async fn removing_an_app_revokes_its_tokens_and_asks_consent_again(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, web_has_backchannel_logout).await else {
        return;
    };
    // The app's browser is app.http: the code flow signs alice in there.
    let tokens =
        json(exchange(&app, &get_code(&app, "openid email offline_access").await).await).await;
    let first = tokens["refresh_token"].as_str().expect("refresh_token");
    let (_, id_token) = decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    let sid = id_token["sid"].as_str().expect("sid");
    let rotated = json(app.refresh_web(first).await).await;
    let refresh = rotated["refresh_token"]
        .as_str()
        .expect("a new refresh_token");
    let page = account(&app, &app.http).await;
    let apps = &page[page.find("<h2>Connected apps</h2>").expect("apps")..];
    assert!(apps.contains("<strong>Test Web App</strong>"), "{apps}");
    assert!(
        apps.contains("<code class=\"scope-name\">email</code>"),
        "{apps}"
    );
    assert!(apps.contains("name=\"client_id\" value=\"web\""), "{apps}");
    let done = post(
        &app,
        &app.http,
        "/account/apps/remove",
        &[("csrf", &hidden(&page, "csrf")), ("client_id", "web")],
    )
    .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account?notice=app-removed")
    );
    // Its refresh tokens (offline_access included) are dead, the rotated one too, even
    // within the grace window that answers a repeat: RFC 6749 section 5.2.
    for token in [refresh, first] {
        let r = app.refresh_web(token).await;
        assert_eq!(r.status(), 400);
        assert_eq!(json(r).await["error"], "invalid_grant");
    }
    // The app was told to sign alice out of its session, which goes on here.
    let delivery = app
        .state
        .core
        .store
        .backchannel_logout_state(sid, "web")
        .await
        .expect("store")
        .expect("a delivery for web");
    assert!(delivery.due_at.is_some(), "{delivery:?}");
    assert!(signed_in(&app, &app.http).await);
    let page = account(&app, &app.http).await;
    assert!(
        page.contains("You have not allowed any app to use your account."),
        "{page}"
    );
    // The consent is forgotten: the next request asks again (the session still stands).
    let next = through_pages(
        &app,
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid email"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "alice",
    )
    .await;
    assert_eq!(next.pages, ["consent"]);
    assert_eq!(audited(&app, "consent.revoked").await, 1);
    // An app that has nothing to remove.
    let page = account(&app, &app.http).await;
    let nothing = post(
        &app,
        &app.http,
        "/account/apps/remove",
        &[("csrf", &hidden(&page, "csrf")), ("client_id", "spa")],
    )
    .await;
    assert_eq!(
        nothing.location.as_deref(),
        Some("/account?notice=app-gone")
    );
    assert_eq!(audited(&app, "consent.revoked").await, 1);
}

/// Post the password form of `page` in browser `b`.
async fn change(
    app: &TestApp,
    b: &reqwest::Client,
    page: &str,
    current: &str,
    new: &str,
    again: &str,
) -> Got {
    post(
        app,
        b,
        "/account/password",
        &[
            ("csrf", &hidden(page, "csrf")),
            ("current_password", current),
            ("new_password", new),
            ("new_password_again", again),
        ],
    )
    .await
}

async fn changing_the_password_signs_out_everywhere_else(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    add_carol(&app).await;
    let (here, there) = (browser_client(), browser_client());
    sign_in(&app, &here, "carol").await;
    sign_in(&app, &there, "carol").await;
    let page = account(&app, &here).await;
    assert!(page.contains("action=\"/account/password\""), "{page}");

    let mismatch = change(
        &app,
        &here,
        &page,
        PASSWORD,
        NEW_PASSWORD,
        "a brand new passphrasE",
    )
    .await;
    assert_eq!(mismatch.status, 400, "{}", mismatch.body);
    assert!(
        mismatch.body.contains("are not the same"),
        "{}",
        mismatch.body
    );
    let short = change(&app, &here, &page, PASSWORD, "short", "short").await;
    assert_eq!(short.status, 400, "{}", short.body);
    assert!(
        short.body.contains("at least 8 characters"),
        "{}",
        short.body
    );
    // NIST SP 800-63B section 5.1.1.2: a common password, in any case.
    let common = change(&app, &here, &page, PASSWORD, "Football1", "Football1").await;
    assert_eq!(common.status, 400, "{}", common.body);
    assert!(common.body.contains("most common"), "{}", common.body);
    // None of these checked (or counted) the current password.
    assert_eq!(audited(&app, "login.failure").await, 0);

    // A wrong current password is a failed login: audited and counted, up to the lockout.
    let max = app.state.config.login.max_failures;
    for i in 1..=max {
        let wrong = change(
            &app,
            &here,
            &page,
            "not my password",
            NEW_PASSWORD,
            NEW_PASSWORD,
        )
        .await;
        if i < max {
            assert_eq!(wrong.status, 401, "{}", wrong.body);
            assert!(
                wrong.body.contains("current password is not right"),
                "{}",
                wrong.body
            );
        } else {
            assert_eq!(wrong.status, 429, "{}", wrong.body);
            assert!(
                wrong.body.contains("Too many failed attempts"),
                "{}",
                wrong.body
            );
        }
        // What was typed is never put back in the page.
        assert!(!wrong.body.contains(NEW_PASSWORD), "{}", wrong.body);
    }
    assert_eq!(
        audited(&app, "login.failure").await,
        usize::try_from(max).expect("small")
    );
    // Locked: even the right password waits.
    let locked = change(&app, &here, &page, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    app.clock
        .advance(app.state.config.login.lockout_seconds + 1);

    // The clock stands still from here: the change and the new session share a second.
    let done = change(&app, &here, &page, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/account?notice=password-changed")
    );
    let after = get(&app, &here, "/account?notice=password-changed")
        .await
        .body;
    assert!(after.contains("Your password was changed"), "{after}");
    assert!(after.contains("this browser"), "{after}");
    assert!(signed_in(&app, &here).await);
    assert!(!signed_in(&app, &there).await);
    assert_eq!(sids(&app, "carol").await.len(), 1);
    assert_eq!(audited(&app, "password.changed").await, 1);
    // The old password no longer signs in; the new one does.
    let old = try_sign_in(&app, &browser_client(), "carol", PASSWORD).await;
    assert_eq!(old.status, 401, "{}", old.body);
    let new = try_sign_in(&app, &browser_client(), "carol", NEW_PASSWORD).await;
    assert_eq!(new.status, 303, "{}", new.body);
    assert!(signed_in(&app, &here).await);
}

async fn a_config_user_cannot_change_the_password_here(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let here = browser_client();
    sign_in(&app, &here, "alice").await;
    let page = account(&app, &here).await;
    assert!(page.contains("<h2>Password</h2>"), "{page}");
    assert!(!page.contains("action=\"/account/password\""), "{page}");
    assert!(
        page.contains("set in the server's configuration file"),
        "{page}"
    );
    let refused = change(&app, &here, &page, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(signed_in(&app, &here).await);
    let still = try_sign_in(&app, &browser_client(), "alice", PASSWORD).await;
    assert_eq!(still.status, 303, "{}", still.body);
    assert_eq!(audited(&app, "password.changed").await, 0);
}

async fn the_forms_need_this_sessions_csrf_value(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    add_carol(&app).await;
    let (here, there) = (browser_client(), browser_client());
    sign_in(&app, &here, "carol").await;
    sign_in(&app, &there, "carol").await;
    let other = sids(&app, "carol").await;
    // A value made for another session (another browser's page) is as good as none.
    let theirs = hidden(&account(&app, &there).await, "csrf");
    for csrf in ["forged", theirs.as_str()] {
        for (path, form) in [
            ("/account/sessions/end", vec![("sid", other[0].as_str())]),
            ("/account/sessions/end-others", vec![]),
            ("/account/apps/remove", vec![("client_id", "web")]),
            (
                "/account/password",
                vec![
                    ("current_password", PASSWORD),
                    ("new_password", NEW_PASSWORD),
                    ("new_password_again", NEW_PASSWORD),
                ],
            ),
        ] {
            let mut form = form;
            form.push(("csrf", csrf));
            let r = post(&app, &here, path, &form).await;
            assert_eq!(r.status, 403, "{path}: {}", r.body);
        }
    }
    // The same browser's own value for a form bound to nothing (its login form, from
    // before it signed in) is refused too: the binding to the session is what is checked,
    // not only the cookie.
    let fresh = browser_client();
    let login_form = get(&app, &fresh, "/account").await;
    let unbound = hidden(&login_form.body, "csrf");
    sign_in(&app, &fresh, "carol").await;
    for (path, form) in [
        ("/account/sessions/end-others", vec![]),
        ("/account/apps/remove", vec![("client_id", "web")]),
        ("/account/profile", vec![("name", "Mallory")]),
    ] {
        let mut form = form;
        form.push(("csrf", unbound.as_str()));
        let r = post(&app, &fresh, path, &form).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert!(signed_in(&app, &there).await);
    assert_eq!(sids(&app, "carol").await.len(), 3);
    let still = try_sign_in(&app, &browser_client(), "carol", PASSWORD).await;
    assert_eq!(still.status, 303, "{}", still.body);
}

/// A person edits the profile claims the config allows, and an app's next ID token carries
/// them; a claim the config does not allow is never changed, whatever the form sends.
async fn a_person_edits_their_own_profile(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    add_carol(&app).await;
    let carol = browser_client();
    sign_in(&app, &carol, "carol").await;
    let page = account(&app, &carol).await;
    assert!(page.contains("<h2>Profile</h2>"), "{page}");
    assert!(page.contains("name=\"given_name\""), "{page}");
    assert!(!page.contains("name=\"email\""), "{page}");
    let csrf = hidden(&page, "csrf");
    let saved = post(
        &app,
        &carol,
        "/account/profile",
        &[
            ("csrf", &csrf),
            ("name", "Carol Example"),
            ("given_name", "Carol"),
            ("email", "carol@evil.example"),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        saved.location.as_deref(),
        Some("/account?notice=profile-saved")
    );
    let stored = app
        .state
        .core
        .store
        .find_user_by_login("carol")
        .await
        .expect("store")
        .expect("carol");
    assert_eq!(stored.claims.name.as_deref(), Some("Carol Example"));
    assert_eq!(stored.claims.given_name.as_deref(), Some("Carol"));
    assert_eq!(stored.claims.email, None);
    // A value of the wrong type is refused with the reason, and nothing is stored.
    let bad = post(
        &app,
        &carol,
        "/account/profile",
        &[("csrf", &csrf), ("zoneinfo", "Europe/\u{7}Paris")],
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("Time zone"), "{}", bad.body);
    let kinds = app.state.core.store.audit_kinds(100).await.expect("audit");
    assert_eq!(kinds.iter().filter(|k| *k == "profile.updated").count(), 1);
    // alice comes from the config file: no form, and a forged post changes nothing.
    let alice = browser_client();
    sign_in(&app, &alice, "alice").await;
    let page = account(&app, &alice).await;
    assert!(page.contains("managed by the server"), "{page}");
    let refused = post(
        &app,
        &alice,
        "/account/profile",
        &[("csrf", &hidden(&page, "csrf")), ("name", "Mallory")],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
}

/// A device holds access without a consent page: it is listed under the apps all the same,
/// and removing it ends its refresh token.
async fn a_device_is_listed_and_can_be_removed(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let started = crate::flows::start(&app, "openid offline_access").await;
    let done = crate::flows::approve(
        &app.base,
        started["user_code"].as_str().expect("user_code"),
        "allow",
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let (status, tokens) =
        crate::flows::poll(&app, started["device_code"].as_str().expect("device_code")).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    let owner = browser_client();
    sign_in(&app, &owner, "alice").await;
    let page = account(&app, &owner).await;
    assert!(page.contains("<strong>Living Room TV</strong>"), "{page}");
    assert!(page.contains("without a consent page"), "{page}");
    let removed = post(
        &app,
        &owner,
        "/account/apps/remove",
        &[("csrf", &hidden(&page, "csrf")), ("client_id", "tv")],
    )
    .await;
    assert_eq!(
        removed.location.as_deref(),
        Some("/account?notice=app-removed")
    );
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "tv"),
                ("refresh_token", &refresh),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_grant");
    assert!(!account(&app, &owner).await.contains("Living Room TV"));
}

crate::both_stores!(
    a_device_is_listed_and_can_be_removed,
    a_person_edits_their_own_profile,
    sessions_are_listed_with_their_browsers,
    signing_out_all_others_keeps_this_browser,
    signing_out_one_session_and_not_someone_elses,
    removing_an_app_revokes_its_tokens_and_asks_consent_again,
    changing_the_password_signs_out_everywhere_else,
    a_config_user_cannot_change_the_password_here,
    the_forms_need_this_sessions_csrf_value,
);
