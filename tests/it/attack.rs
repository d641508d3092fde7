//! Attacks over HTTP, as a hostile caller would make them: parallel guessing, floods of
//! abandoned requests, guessing from many addresses. Each is bounded in count and time.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    Backend, HUMAN_SECRET, LEGACY_SECRET, PASSWORD, SERVICE_SECRET, TestApp, browser_client,
    http_client, json,
};
use crate::flows::start;

/// What a password-grant guess came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guess {
    /// The password was checked and was wrong.
    Wrong,
    SignedIn,
    /// Refused before any check: locked out.
    Locked,
    /// Refused before any check: another attempt is being checked.
    InFlight,
    /// 503: no hashing slot.
    Busy,
}

fn classify(status: u16, retry_after: bool, body: &Value) -> Guess {
    if body["access_token"].is_string() {
        return Guess::SignedIn;
    }
    if status == 503 {
        assert!(retry_after, "503 without Retry-After: {body}");
        assert_eq!(body["error"], "temporarily_unavailable");
        return Guess::Busy;
    }
    let d = body["error_description"].as_str().unwrap_or_default();
    if status == 429 {
        assert!(retry_after, "429 without Retry-After: {body}");
        assert!(d.starts_with("too many attempts at once"), "{d}");
        return Guess::InFlight;
    }
    assert_eq!(body["error"], "invalid_grant", "{body}");
    if d == "wrong username or password" {
        Guess::Wrong
    } else {
        assert!(d.starts_with("too many failed attempts"), "{d}");
        Guess::Locked
    }
}

async fn send_guess(req: reqwest::RequestBuilder) -> Guess {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").is_some();
    let body: Value = r.json().await.expect("json");
    classify(status, retry_after, &body)
}

fn guess_request(
    http: &reqwest::Client,
    url: String,
    user: &str,
    pass: &str,
) -> reqwest::RequestBuilder {
    http.post(url)
        .basic_auth("legacy", Some(LEGACY_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", pass),
        ])
}

async fn guess_from(
    app: &TestApp,
    http: &reqwest::Client,
    user: &str,
    pass: &str,
    from: Option<&str>,
) -> Guess {
    let mut req = guess_request(http, app.url("/token"), user, pass);
    if let Some(ip) = from {
        req = req.header("x-forwarded-for", ip);
    }
    send_guess(req).await
}

async fn guess(app: &TestApp, user: &str, pass: &str) -> Guess {
    guess_from(app, &app.http, user, pass, None).await
}

/// `n` guesses at once against `user`; guess number `right_at` (if any) has the right
/// password. The outcomes in the order the guesses were made.
async fn parallel_guesses(
    app: &TestApp,
    user: &str,
    n: usize,
    right_at: Option<usize>,
) -> Vec<Guess> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (http, url, user) = (app.http.clone(), app.url("/token"), user.to_owned());
            let pass = if Some(i) == right_at {
                PASSWORD
            } else {
                "wrong guess"
            };
            tokio::spawn(async move { send_guess(guess_request(&http, url, &user, pass)).await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("join"));
    }
    out
}

fn count(outcomes: &[Guess], which: Guess) -> usize {
    outcomes.iter().filter(|g| **g == which).count()
}

/// 200 parallel wrong guesses, then more until the account locks: exactly `max_failures`
/// (3 in the test config) passwords are ever checked, and then the right one is refused.
async fn parallel_guesses_get_no_more_checks_than_the_limit(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // Checked guesses answer "wrong" until the one that reaches the limit, which locks.
    let mut wrong = count(
        &parallel_guesses(&app, "alice", 200, None).await,
        Guess::Wrong,
    );
    // The burst may have been refused almost whole (one check at a time per account); keep
    // guessing, as an attacker would, until the lock.
    let mut locked = false;
    for _ in 0..50 {
        let wave = parallel_guesses(&app, "alice", 20, None).await;
        wrong += count(&wave, Guess::Wrong);
        match guess(&app, "alice", "wrong again").await {
            Guess::Wrong => wrong += 1,
            Guess::Locked => {
                locked = true;
                break;
            }
            _ => {}
        }
    }
    assert!(locked);
    assert_eq!(wrong, 2, "exactly max_failures (3) guesses were checked");
    assert_eq!(guess(&app, "alice", PASSWORD).await, Guess::Locked);
}

/// Two wrong guesses, then 200 at once with the right password in the middle: the first
/// hundred before it, the rest once the account has locked. One more check is allowed, and
/// the right password does not sign in.
async fn right_password_in_the_middle_of_a_burst_is_refused(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    for _ in 0..2 {
        assert_eq!(guess(&app, "alice", "wrong").await, Guess::Wrong);
    }
    let first = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url("/token"));
        async move {
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let (http, url) = (http.clone(), url.clone());
                    tokio::spawn(async move {
                        send_guess(guess_request(&http, url, "alice", "wrong guess")).await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("join"));
            }
            out
        }
    });
    // Wait for the third (and last allowed) check to be answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !first.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Probes may take the last check themselves; either way, wait for the lock.
        if guess(&app, "alice", "probe").await == Guess::Locked {
            break;
        }
    }
    let rest = parallel_guesses(&app, "alice", 100, Some(50)).await;
    let first = first.await.expect("join");
    assert_eq!(count(&rest, Guess::SignedIn), 0, "{rest:?}");
    assert!(count(&first, Guess::Wrong) <= 1, "{first:?}");
    assert_eq!(count(&rest, Guess::Wrong), 0, "{rest:?}");
}

/// The password grant leaves the same audit trail as the login page; refusals before any
/// check (a flood answered busy, another attempt in flight) leave none.
async fn the_password_grant_is_audited(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    assert_eq!(guess(&app, "alice", "wrong").await, Guess::Wrong);
    assert_eq!(guess(&app, "alice", PASSWORD).await, Guess::SignedIn);
    let kinds = app.state.core.store.audit_kinds(10).await.expect("audit");
    assert_eq!(
        kinds.iter().filter(|k| *k == "login.failure").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "login.success").count(),
        1,
        "{kinds:?}"
    );
}

/// The account counter is the user, whatever name it is typed as.
async fn every_name_of_an_account_shares_one_counter(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    assert_eq!(guess(&app, "alice", "wrong").await, Guess::Wrong);
    assert_eq!(guess(&app, "ALICE", "wrong").await, Guess::Wrong);
    // The third failure (max_failures = 3) locks the account.
    assert_eq!(
        guess(&app, "alice@example.com", "wrong").await,
        Guess::Locked
    );
    assert_eq!(
        guess(&app, "Alice@Example.com", PASSWORD).await,
        Guess::Locked
    );
    assert_eq!(guess(&app, "alice", PASSWORD).await, Guess::Locked);
}

/// Behind a trusted proxy, addresses in one IPv6 /64 share the per-address limit, and
/// another /64 does not.
async fn ipv6_addresses_share_their_64(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("net")];
        c.login.max_failures_per_ip = 2;
    })
    .await
    else {
        return;
    };
    let http = http_client();
    let from = |ip| Some(ip);
    // Different (unknown) accounts each time: only the address counter can lock.
    assert_eq!(
        guess_from(&app, &http, "u1", "x", from("2001:db8:1:2::1")).await,
        Guess::Wrong
    );
    assert_eq!(
        guess_from(&app, &http, "u2", "x", from("2001:db8:1:2::ffff")).await,
        Guess::Locked
    );
    assert_eq!(
        guess_from(&app, &http, "u3", "x", from("2001:db8:1:2:abcd::9")).await,
        Guess::Locked
    );
    assert_eq!(
        guess_from(&app, &http, "alice", PASSWORD, from("2001:db8:1:3::1")).await,
        Guess::SignedIn
    );
}

/// A caller that hangs up mid-check still pays for the guess on the keys that count
/// abandoned attempts (an address), and not on the others (an account).
async fn an_abandoned_attempt_counts_as_a_failure(b: Backend) {
    use latchkey::core::attempts::{Attempt, Guard, OnSuccess, ThrottleKey};
    use latchkey::store::throttle::Admission;
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let store = &app.state.core.store;
    let policy = latchkey::core::login::throttle_policy(&app.state.config.login, 1, 1);
    let (address, account) = (
        ThrottleKey::LoginAddress("203.0.113.7".into()),
        ThrottleKey::LoginUser("account".into()),
    );
    let guard = |key: &ThrottleKey, counts_abandoned| Guard {
        key: key.clone(),
        policy,
        on_success: OnSuccess::Clear,
        counts_abandoned,
    };
    let now = app.clock.now();
    let attempt = Attempt::begin(
        store,
        now,
        vec![guard(&address, true), guard(&account, false)],
        30,
    )
    .await
    .expect("begin")
    .expect("admitted");
    drop(attempt);
    // The drop ends the keys in order, in the background: wait for each.
    let mut seen = (Admission::Busy, Admission::Busy);
    for key in 0..2 {
        for _ in 0..100 {
            let probe = store
                .throttle_begin(&[&address, &account][key].to_string(), now, &policy, 30)
                .await
                .expect("begin");
            if key == 0 {
                seen.0 = probe;
            } else {
                seen.1 = probe;
            }
            if probe != Admission::Busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(
        seen.0,
        Admission::Locked {
            until: now + app.state.config.login.lockout_seconds
        }
    );
    assert!(
        matches!(seen.1, Admission::Admitted { attempt: 1, .. }),
        "{seen:?}"
    );
}

/// 300 password guesses from 300 addresses, each abandoned after 0.3 s, with one hashing
/// thread and a queue of 4: most are turned away with 503 at once, those queued and
/// abandoned are dropped unhashed, and a real login from elsewhere succeeds within seconds.
async fn a_flood_of_abandoned_guesses_does_not_take_logins_down(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("net")];
        c.login.max_concurrent_hashes = 1;
        c.login.max_queued_hashes = 4;
        // The other tests running beside this one would starve an idle-priority hashing
        // thread; what is tested here is the queue, not the priority.
        c.login.hash_priority = latchkey::config::HashPriority::Normal;
    })
    .await
    else {
        return;
    };
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let (http, url) = (impatient.clone(), app.url("/token"));
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .basic_auth("legacy", Some(LEGACY_SECRET))
                    .header("x-forwarded-for", format!("198.51.100.{}", i % 250))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", format!("nobody{i}").as_str()),
                        ("password", "guess"),
                    ])
                    .send()
                    .await;
                r.ok().map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut signed_in = false;
    while started.elapsed() < Duration::from_secs(5) {
        match guess_from(
            &app,
            &http_client(),
            "alice",
            PASSWORD,
            Some("203.0.113.77"),
        )
        .await
        {
            Guess::SignedIn => {
                signed_in = true;
                break;
            }
            Guess::Busy => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("{other:?}"),
        }
    }
    let took = started.elapsed();
    let mut busy = 0;
    for t in flood {
        // Answered in time: turned away busy, or checked and wrong; never a server error.
        match t.await.expect("join") {
            Some(503) => busy += 1,
            Some(400) | None => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(signed_in, "the real login did not get through in {took:?}");
    // How many were answered busy depends on the machine's load (the rest were abandoned
    // first); the queue's bound itself is tested in crypto::password.
    eprintln!("real login during the flood took {took:?}; {busy} of 300 turned away busy");
}

/// Wrong secrets for a client whose secret is argon2id: no more are checked than the
/// limit, the rest are answered 429 with Retry-After, without argon2.
async fn client_secret_guessing_is_throttled(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.client_auth.max_failures_per_client = 5;
        c.client_auth.max_failures_per_ip = 1000;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("net")];
    })
    .await
    else {
        return;
    };
    let lockout = app.state.config.client_auth.lockout_seconds;
    let wrong_secret = |i: usize| {
        let (http, url) = (app.http.clone(), app.url("/token"));
        async move {
            let r = http
                .post(url)
                .basic_auth("human", Some(format!("guess {i}")))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("request");
            let retry: Option<i64> = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            (r.status().as_u16(), retry)
        }
    };
    // Waves of parallel wrong secrets until the client locks: the secrets checked answer
    // 401 until the one that reaches the limit (5); all others are refused unchecked.
    let (mut wrong, mut locked) = (0, false);
    for wave in 0..50 {
        let tasks: Vec<_> = (0..20)
            .map(|i| tokio::spawn(wrong_secret(wave * 20 + i)))
            .collect();
        for t in tasks {
            match t.await.expect("join") {
                (401, None) => wrong += 1,
                (429, Some(s)) if s >= lockout => locked = true,
                // Two checks in flight already: busy, not counted.
                (503, Some(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        if locked {
            break;
        }
    }
    assert!(locked);
    assert_eq!(
        wrong, 4,
        "exactly max_failures_per_client secrets were checked"
    );
    // Each secret that was checked and wrong is in the audit trail; the refusals (busy,
    // locked) wrote nothing, so a flood cannot fill it.
    let kinds = app.state.core.store.audit_kinds(1000).await.expect("audit");
    assert_eq!(
        kinds.iter().filter(|k| *k == "client_auth.failure").count(),
        wrong
    );
    // Locked now: even the right secret waits (this node never saw it succeed).
    let r = app
        .token_basic(
            "human",
            HUMAN_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body = json(r).await;
    assert_eq!(body["error"], "temporarily_unavailable");
    // The lock is this client's from this address: from elsewhere its owner gets in.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("human", Some(HUMAN_SECRET))
        .header("x-forwarded-for", "203.0.113.50")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    app.clock
        .advance(app.state.config.client_auth.max_lockout_seconds + 1);
    let r = app
        .token_basic(
            "human",
            HUMAN_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);

    // A generated secret costs nothing to check: failures are counted and refused past
    // the limit, but the right secret is never slowed down.
    for _ in 0..5 {
        app.token_basic("service", "wrong", &[("grant_type", "client_credentials")])
            .await;
    }
    let r = app
        .token_basic("service", "wrong", &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 429);
    let r = app
        .token_basic(
            "service",
            SERVICE_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);
}

/// 200 wrong user codes at once from one address: no more are looked up than the limit.
/// Guessing from everywhere slows the page down but never locks out a person with a real
/// code.
async fn parallel_user_code_guesses_are_bounded(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("net")];
        c.device.max_attempts_per_ip = 10;
        c.device.max_attempts_global = 15;
        c.device.global_slowdown_seconds = 1;
    })
    .await
    else {
        return;
    };
    let entry = browser_client();
    let page = entry
        .get(app.url("/device"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    let csrf = crate::common::hidden(&page, "csrf");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (http, url, csrf) = (entry.clone(), app.url("/device"), csrf.clone());
            tokio::spawn(async move {
                // Distinct wrong codes, all from one address.
                let code = format!("BCDF-{}", ["BCDF", "GHJK", "LMNP", "QRST"][i % 4]);
                http.post(url)
                    .header("x-forwarded-for", "198.51.100.9")
                    .form(&[("csrf", csrf.as_str()), ("user_code", code.as_str())])
                    .send()
                    .await
                    .expect("POST")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let (mut looked_up, mut throttled) = (0, 0);
    for t in tasks {
        match t.await.expect("join") {
            400 => looked_up += 1,
            429 => throttled += 1,
            other => panic!("{other}"),
        }
    }
    assert!(looked_up < 10, "{looked_up} codes looked up, limit 10");
    assert_eq!(looked_up + throttled, 200);
    // Guessing from 10 more addresses passes the global limit of 15 ...
    for i in 0..10 {
        crate::flows::wrong_code_via_proxy(&app, &format!("203.0.113.{i}")).await;
    }
    // ... and still a person with a real code, from their own address, gets through.
    let d = start(&app, "openid").await;
    let person = browser_client();
    let started = Instant::now();
    let p = crate::flows::code_via_proxy(
        &app,
        &person,
        d["user_code"].as_str().expect("uc"),
        "192.0.2.1",
    )
    .await;
    assert_eq!(p, 200);
    assert!(started.elapsed() >= Duration::from_secs(1), "slowed down");
}

/// The `web` client's authorization request with `extra` parameters, opened in `browser`,
/// and its login form posted back as `user`: the answer to the form.
async fn sign_in_through_login_page(
    app: &TestApp,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
    user: &str,
) -> reqwest::Response {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", crate::common::WEB_REDIRECT),
        ("scope", "openid"),
        ("code_challenge", crate::flows::CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(extra);
    let page = browser
        .get(app.url("/authorize"))
        .query(&query)
        .send()
        .await
        .expect("authorize")
        .text()
        .await
        .expect("page");
    browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", crate::common::hidden(&page, "csrf").as_str()),
            (
                "interaction",
                crate::common::hidden(&page, "interaction").as_str(),
            ),
            ("username", user),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login")
}

/// With every hashing slot taken, the login page answers 503 with Retry-After and says to
/// retry in a few seconds; the token endpoint answers 503 temporarily_unavailable.
async fn a_full_hashing_queue_answers_busy(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("net")];
        c.login.max_concurrent_hashes = 1;
        c.login.max_queued_hashes = 1;
        // Slow hashes (unknown users verify against a dummy hash with these parameters),
        // so the one thread and the one queue slot stay taken while the test looks.
        c.login.argon2_iterations = 1000;
        c.login.hash_priority = latchkey::config::HashPriority::Normal;
        // On a loaded machine the wait below can be long: the fillers' requests must not
        // time out (which drops their queued checks) before the test has looked.
        c.limits.request_timeout_seconds = 300;
        c.limits.idle_timeout_seconds = 400;
    })
    .await
    else {
        return;
    };
    // Fillers keep the hashing thread and the queue slot taken: each sends guesses one
    // after another (a new unknown name each time, so no lockout stops it), so a slot a
    // finished hash frees is taken again at once.
    let fillers: Vec<_> = (0..4)
        .map(|i| {
            let (http, url) = (http_client(), app.url("/token"));
            tokio::spawn(async move {
                for n in 0.. {
                    let _ = guess_request(&http, url.clone(), &format!("nobody{i}-{n}"), "x")
                        .header("x-forwarded-for", format!("198.51.100.{i}"))
                        .send()
                        .await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    // The queue is full again and again; each check below is tried at such a moment, and
    // again should a hash have finished between the look and the request (a loaded machine).
    let full = || async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !app.state.core.passwords.is_full() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(app.state.core.passwords.is_full());
    };
    let mut busy = false;
    for _ in 0..20 {
        full().await;
        if guess(&app, "alice", PASSWORD).await == Guess::Busy {
            busy = true;
            break;
        }
    }
    assert!(busy, "the token endpoint never answered busy");

    let mut answered = None;
    for _ in 0..20 {
        full().await;
        let r = sign_in_through_login_page(&app, &app.http, &[], "alice").await;
        if r.status() == 503 {
            answered = Some(r);
            break;
        }
    }
    let r = answered.expect("the login page never answered busy");
    assert!(r.headers().get("retry-after").is_some());
    let body = r.text().await.expect("body");
    assert!(
        body.contains("very busy") && body.contains("few seconds"),
        "{body}"
    );
    for f in fillers {
        f.abort();
    }
}

/// A CSRF cookie planted in the victim's browser, with the form value the server hands out
/// for it on any page, cannot forge a form for the victim: the value is bound to the session.
async fn a_planted_csrf_cookie_cannot_sign_the_victim_out(b: Backend) {
    use std::sync::Arc;
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // The victim signs in in their own browser.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let victim = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .expect("client");
    let r = sign_in_through_login_page(&app, &victim, &[], "alice").await;
    assert_eq!(r.status(), 200, "signed in, now at the consent page");
    let url: reqwest::Url = app.base.parse().expect("url");
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &url).expect("cookies");
    let session = cookies
        .to_str()
        .expect("ascii")
        .split("; ")
        .find_map(|c| c.strip_prefix("latchkey_session="))
        .expect("session cookie")
        .to_owned();

    // The attacker gets a CSRF cookie and its form value from a page anyone can load ...
    let r = http_client()
        .get(app.url("/device"))
        .send()
        .await
        .expect("page");
    let planted = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("latchkey_csrf="))
        .and_then(|c| c.split(';').next())
        .expect("csrf cookie")
        .to_owned();
    let token = crate::common::hidden(&r.text().await.expect("page"), "csrf");
    // ... plants the cookie beside the victim's session and submits the logout form.
    let forged = http_client()
        .post(app.url("/logout/confirm"))
        .header(
            "cookie",
            format!("latchkey_csrf={planted}; latchkey_session={session}"),
        )
        .form(&[("csrf", token.as_str()), ("client_id", "")])
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 403);
    // The victim is still signed in.
    let r = http_client()
        .get(app.url("/authorize"))
        .header("cookie", format!("latchkey_session={session}"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", crate::common::WEB_REDIRECT),
            ("scope", "openid"),
            ("code_challenge", crate::flows::CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    let body = r.text().await.expect("page");
    assert!(body.contains("action=\"/consent\""), "{body}");
}

/// id_token_hint names alice; carol signs in instead: the client gets login_required, never
/// carol's code in alice's place (OIDC Core section 3.1.2.2).
async fn signing_in_as_someone_else_than_the_hint_is_refused(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let hash = latchkey::crypto::password::hash_default(PASSWORD).expect("hash");
    app.state
        .core
        .store
        .insert_user(
            latchkey::store::users::NewUser {
                username: "carol",
                password_hash: &hash,
                claims: &Default::default(),
                source: latchkey::model::Source::Cli,
            },
            app.clock.now(),
        )
        .await
        .expect("insert")
        .expect("carol");
    let issued = crate::flows::get_code(&app, "openid").await;
    let t = json(crate::flows::exchange(&app, &issued).await).await;
    let hint = t["id_token"].as_str().expect("id_token").to_owned();

    let browser = browser_client();
    let r = sign_in_through_login_page(
        &app,
        &browser,
        &[("state", "s1"), ("id_token_hint", hint.as_str())],
        "carol",
    )
    .await;
    assert_eq!(r.status(), 303);
    let (loc, params) = crate::common::location_params(&r);
    assert_eq!(
        crate::common::param(&params, "error"),
        Some("login_required"),
        "{loc}"
    );
    assert_eq!(crate::common::param(&params, "code"), None);
    assert_eq!(crate::common::param(&params, "state"), Some("s1"));
}

/// Credentials refused without any secret being checked (the wrong authentication method, no
/// secret) are counted like a wrong secret: a caller repeating them is throttled, and the
/// audit rows it causes stop at the limit instead of one per request.
async fn refusals_that_check_nothing_are_throttled_too(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.client_auth.max_failures_per_client = 3;
    })
    .await
    else {
        return;
    };
    let mut statuses = Vec::new();
    for i in 0..6 {
        // `web` authenticates with HTTP Basic; a secret in the body, or none, is refused.
        let form: Vec<(&str, &str)> = if i % 2 == 0 {
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "web"),
                ("client_secret", "whatever"),
            ]
        } else {
            vec![("grant_type", "client_credentials"), ("client_id", "web")]
        };
        let r = app.post_form("/token", &form).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429, 429, 429, 429], "{statuses:?}");
    let kinds = app.state.core.store.audit_kinds(100).await.expect("audit");
    assert_eq!(
        kinds.iter().filter(|k| *k == "client_auth.failure").count(),
        2,
        "{kinds:?}"
    );
}

/// A flood against a locked account is refused unchecked, and writes no audit row per
/// request: only the checked guesses are in the trail.
async fn refusals_while_locked_are_not_audited(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let max = app.state.config.login.max_failures;
    for _ in 0..max {
        guess(&app, "alice", "wrong").await;
    }
    for _ in 0..20 {
        assert_eq!(guess(&app, "alice", "wrong").await, Guess::Locked);
    }
    let kinds = app.state.core.store.audit_kinds(100).await.expect("audit");
    assert_eq!(
        kinds.iter().filter(|k| *k == "login.failure").count(),
        usize::try_from(max).expect("small"),
        "{kinds:?}"
    );
}

crate::both_stores!(
    refusals_while_locked_are_not_audited,
    the_password_grant_is_audited,
    signing_in_as_someone_else_than_the_hint_is_refused,
    a_planted_csrf_cookie_cannot_sign_the_victim_out,
    a_full_hashing_queue_answers_busy,
    parallel_guesses_get_no_more_checks_than_the_limit,
    right_password_in_the_middle_of_a_burst_is_refused,
    every_name_of_an_account_shares_one_counter,
    ipv6_addresses_share_their_64,
    an_abandoned_attempt_counts_as_a_failure,
    a_flood_of_abandoned_guesses_does_not_take_logins_down,
    client_secret_guessing_is_throttled,
    parallel_user_code_guesses_are_bounded,
    refusals_that_check_nothing_are_throttled_too,
);
