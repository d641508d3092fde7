//! OpenID Connect Back-Channel Logout 1.0: a receiver inside the test plays the client's
//! backchannel_logout_uri and checks every Logout Token with jsonwebtoken against /jwks.json.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::config::Config;
use latchkey::store::backchannel::DeliveryState;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::browser::authorize;
use crate::common::{
    Backend, POST_SECRET, TestApp, browser_client, config_toml, database_for, json, param,
};
use crate::flows::{CHALLENGE, VERIFIER, exchange, get_code};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One POST the receiver got.
struct Received {
    content_type: String,
    logout_token: Option<String>,
}

/// A client's back-channel logout endpoint on 127.0.0.1:0. It answers the statuses of `plan`
/// in order, then 200, each after `delay`; a 0 in the plan answers only after 5 s, too late.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(plan: &[u16], delay: Duration) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let plan = Arc::new(Mutex::new(plan.iter().rev().copied().collect::<Vec<_>>()));
        let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (tx, plan) = (tx.clone(), plan.clone());
            async move {
                let logout_token = url::form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned());
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(Received {
                    content_type,
                    logout_token,
                });
                let status = plan.lock().unwrap().pop().unwrap_or(200);
                if status == 0 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    return axum::http::StatusCode::OK;
                }
                tokio::time::sleep(delay).await;
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        };
        let router = axum::Router::new().route("/bcl", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bcl", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            url,
            rx,
            _server: server,
        }
    }

    /// The next POST; fails the test after 10 s.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a back-channel logout within 10 s")
            .expect("receiver open")
    }

    fn nothing_more(&mut self) -> bool {
        self.rx.try_recv().is_err()
    }
}

/// `web`, `first-party` and `tv` get Logout Tokens at `uri`; the worker polls often.
fn with_receiver(c: &mut Config, uri: &str) {
    for client in c
        .clients
        .iter_mut()
        .filter(|c| ["web", "first-party", "tv"].contains(&c.client_id.as_str()))
    {
        client.backchannel_logout_uri = Some(uri.to_owned());
        client.backchannel_logout_session_required = client.client_id == "web";
    }
    c.backchannel_logout.poll_interval_seconds = 1;
    c.backchannel_logout.timeout_seconds = 2;
}

/// The claims of a JWT, unverified (to read our own ID tokens).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// Check a Logout Token as a relying party must (Back-Channel Logout 1.0 section 2.6), with
/// jsonwebtoken and the server's JWKS, and return its claims.
async fn validate(app: &TestApp, r: &Received, client_id: &str) -> Value {
    // Section 2.5: a form POST.
    assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    let token = r.logout_token.as_deref().expect("logout_token parameter");
    let header = jsonwebtoken::decode_header(token).expect("JWS header");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"), "section 2.4");
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .http
        .get(app.url("/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JWK set");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[app.state.issuer()]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["iss", "aud", "iat", "exp", "jti"]);
    // The test clock may run ahead of the system clock the library reads.
    v.leeway = 3600;
    let c = jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("a valid Logout Token")
        .claims;
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        app.state.config.backchannel_logout.token_ttl
    );
    assert_eq!(c["events"][EVENT], serde_json::json!({}), "section 2.4");
    assert!(c.get("nonce").is_none(), "section 2.4: nonce is prohibited");
    assert!(c["sub"].is_string() && c["sid"].is_string());
    c
}

/// Wait until the store shows the delivery of (`sid`, `client_id`) as `done` says.
async fn until(
    app: &TestApp,
    sid: &str,
    client_id: &str,
    done: impl Fn(&DeliveryState) -> bool,
) -> DeliveryState {
    for _ in 0..500 {
        if let Some(s) = app
            .state
            .core
            .store
            .backchannel_logout_state(sid, client_id)
            .await
            .expect("state")
            && done(&s)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the delivery of {client_id} in {sid} never got there");
}

fn delivered(s: &DeliveryState) -> bool {
    s.outcome.as_deref() == Some("delivered")
}

/// Sign alice in to `web` through the code flow; the ID token's claims.
async fn sign_in(app: &TestApp) -> (String, Value) {
    let t = json(exchange(app, &get_code(app, "openid offline_access").await).await).await;
    let id_token = t["id_token"].as_str().expect("id_token").to_owned();
    let c = claims(&id_token);
    (id_token, c)
}

/// Sign the same browser in to `first-party` (no consent page, ES256 ID tokens).
async fn sign_in_first_party(app: &TestApp) -> Value {
    let done = authorize(
        app,
        &[
            ("response_type", "code"),
            ("client_id", "first-party"),
            ("redirect_uri", "http://localhost:4000/cb"),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "alice",
    )
    .await;
    let code = param(&done.params, "code").expect("code");
    let t = json(
        app.post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "http://localhost:4000/cb"),
                ("code_verifier", VERIFIER),
                ("client_id", "first-party"),
                ("client_secret", POST_SECRET),
            ],
        )
        .await,
    )
    .await;
    claims(t["id_token"].as_str().expect("id_token"))
}

async fn logout(app: &TestApp, id_token: &str) {
    let r = app
        .http
        .get(app.url("/logout"))
        .query(&[("id_token_hint", id_token)])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
}

async fn metric(app: &TestApp, outcome: &str) -> u64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = format!("latchkey_backchannel_logouts_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.parse().expect("a count"))
}

/// RP-initiated logout ends the session, and each client the session signed in to gets one
/// Logout Token, signed with its own ID token algorithm, naming the session of its ID token.
async fn logout_sends_a_logout_token_to_each_client_of_the_session(b: Backend) {
    let mut rx = Receiver::start(&[], Duration::ZERO).await;
    let Some(mut app) = TestApp::spawn_with(b, |c| with_receiver(c, &rx.url)).await else {
        return;
    };
    app.start_logout_worker();
    let doc = app.discovery().await;
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);

    let (id_token, web) = sign_in(&app).await;
    let first = sign_in_first_party(&app).await;
    let sid = web["sid"].as_str().expect("sid").to_owned();
    assert_eq!(first["sid"], web["sid"], "one browser session");
    assert!(rx.nothing_more(), "nothing is sent while the session lives");
    logout(&app, &id_token).await;

    let mut got = HashMap::new();
    for _ in 0..2 {
        let r = rx.next().await;
        let aud = claims(r.logout_token.as_deref().expect("token"))["aud"]
            .as_str()
            .expect("aud")
            .to_owned();
        let c = validate(&app, &r, &aud).await;
        let alg = jsonwebtoken::decode_header(r.logout_token.as_deref().expect("token"))
            .expect("header")
            .alg;
        got.insert(aud, (c, alg));
    }
    let (c, alg) = &got["web"];
    assert_eq!(*alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(c["sub"], web["sub"]);
    let (c, alg) = &got["first-party"];
    assert_eq!(
        *alg,
        jsonwebtoken::Algorithm::ES256,
        "signed like its ID tokens"
    );
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(c["sub"], first["sub"]);
    assert_ne!(got["web"].0["jti"], got["first-party"].0["jti"]);

    for client in ["web", "first-party"] {
        let s = until(&app, &sid, client, delivered).await;
        assert_eq!(s.attempts, 1);
    }
    assert_eq!(metric(&app, "delivered").await, 2);
    // `spa` has no backchannel_logout_uri and was never signed in to: nothing for it.
    assert!(
        app.state
            .core
            .store
            .backchannel_logout_state(&sid, "spa")
            .await
            .expect("state")
            .is_none()
    );
    assert!(rx.nothing_more());
}

/// A client that answers 500 twice gets the token on the third attempt, each attempt after
/// a doubling delay on the server's clock, each a freshly signed token with the same jti.
async fn a_failing_client_is_retried_with_backoff(b: Backend) {
    let mut rx = Receiver::start(&[500, 500], Duration::ZERO).await;
    let Some(mut app) = TestApp::spawn_with(b, |c| {
        with_receiver(c, &rx.url);
        c.backchannel_logout.retry_delay_seconds = 5;
    })
    .await
    else {
        return;
    };
    app.start_logout_worker();
    let (id_token, web) = sign_in(&app).await;
    let sid = web["sid"].as_str().expect("sid").to_owned();
    let t0 = app.clock.now();
    logout(&app, &id_token).await;

    let first = validate(&app, &rx.next().await, "web").await;
    assert_eq!(first["iat"], t0);
    // The first failure is retried 5 s later, the second 10 s after that.
    let mut at = t0;
    for (attempt, delay) in [(1, 5), (2, 10)] {
        at += delay;
        let s = until(&app, &sid, "web", |s| {
            s.attempts == attempt && s.next_attempt_at == Some(at)
        })
        .await;
        assert!(s.outcome.is_none());
        assert!(rx.nothing_more(), "no retry before its time");
        app.clock.advance(delay);
        app.state.core.store.backchannel_queued().wake();
        let again = validate(&app, &rx.next().await, "web").await;
        assert_eq!(again["jti"], first["jti"], "one logout, one jti");
        assert_eq!(again["iat"], at, "signed afresh for each attempt");
    }
    let s = until(&app, &sid, "web", delivered).await;
    assert_eq!(s.attempts, 3);
    assert_eq!(metric(&app, "retried").await, 2);
    assert_eq!(metric(&app, "delivered").await, 1);
    assert!(rx.nothing_more());
}

/// A client that never answers 200 (here: 503, then too slowly) is given up after
/// max_attempts; the failure is counted.
async fn a_client_that_never_answers_200_is_given_up(b: Backend) {
    let mut rx = Receiver::start(&[503, 0, 503], Duration::ZERO).await;
    let Some(mut app) = TestApp::spawn_with(b, |c| {
        with_receiver(c, &rx.url);
        c.backchannel_logout.retry_delay_seconds = 0;
        c.backchannel_logout.max_attempts = 3;
    })
    .await
    else {
        return;
    };
    app.start_logout_worker();
    let (id_token, web) = sign_in(&app).await;
    let sid = web["sid"].as_str().expect("sid").to_owned();
    logout(&app, &id_token).await;
    for _ in 0..3 {
        validate(&app, &rx.next().await, "web").await;
    }
    let s = until(&app, &sid, "web", |s| s.finished_at.is_some()).await;
    assert_eq!(s.outcome.as_deref(), Some("failed"));
    assert_eq!(s.attempts, 3);
    assert_eq!(s.next_attempt_at, None);
    assert_eq!(metric(&app, "failed").await, 1);
    assert_eq!(metric(&app, "retried").await, 2);
    app.state.core.store.backchannel_queued().wake();
    assert!(rx.nothing_more());
}

/// A delivery queued while no worker runs, and even one claimed by a node that died before
/// sending it, is sent once by the next server on the same store, after the dead node's
/// lease.
async fn a_delivery_survives_a_restart(b: Backend) {
    let mut rx = Receiver::start(&[], Duration::ZERO).await;
    let Some((url, dir, db)) = database_for(b).await else {
        return;
    };
    let text = config_toml(&url, &dir.path().display().to_string());
    let (mut config, _) = Config::from_toml(&text, &[]).expect("config");
    with_receiver(&mut config, &rx.url);
    // The first server runs no worker; it does not own the database either.
    let a = TestApp::start(config.clone(), tempfile::tempdir().expect("dir"), None).await;
    let (id_token, web) = sign_in(&a).await;
    let sid = web["sid"].as_str().expect("sid").to_owned();
    logout(&a, &id_token).await;
    let s = until(&a, &sid, "web", |s| s.next_attempt_at.is_some()).await;
    assert_eq!(s.attempts, 0);
    // A node claims it and dies before sending.
    let lease = config.backchannel_logout.lease();
    let claimed = a
        .state
        .core
        .store
        .claim_backchannel_logouts(a.clock.now(), lease, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    drop(a);

    let mut b = TestApp::start(config, dir, db).await;
    let http = reqwest::Client::new();
    let claimed = latchkey::core::backchannel::pass(&b.state.core, &b.state.clock, &http)
        .await
        .expect("pass");
    assert_eq!(claimed, 0, "still held by the dead node's lease");
    let s = until(&b, &sid, "web", |s| s.attempts == 1).await;
    assert!(s.outcome.is_none());
    b.start_logout_worker();
    b.clock.advance(lease);
    b.state.core.store.backchannel_queued().wake();
    let c = validate(&b, &rx.next().await, "web").await;
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(c["jti"], s.jti.as_str());
    let s = until(&b, &sid, "web", delivered).await;
    assert_eq!(s.attempts, 2);
    assert!(rx.nothing_more());
}

/// `latchkey user revoke-sessions` (another process) ends every session of the user; the
/// running server's worker finds the deliveries on its next poll and sends one per session.
async fn revoke_sessions_sends_a_logout_token_per_session(b: Backend) {
    let mut rx = Receiver::start(&[], Duration::ZERO).await;
    let Some(mut app) = TestApp::spawn_with(b, |c| with_receiver(c, &rx.url)).await else {
        return;
    };
    app.start_logout_worker();
    let (_, one) = sign_in(&app).await;
    // A second browser, a second session.
    app.http = browser_client();
    let (_, two) = sign_in(&app).await;
    assert_ne!(one["sid"], two["sid"]);

    let out = crate::flows::latchkey(&app, &["user", "revoke-sessions", "alice"]).await;
    assert!(out.status.success(), "{out:?}");
    // The CLI stamps the system clock, which has moved on since the test clock was set.
    app.clock.advance(60);
    let mut sids = Vec::new();
    for _ in 0..2 {
        let c = validate(&app, &rx.next().await, "web").await;
        assert_eq!(c["sub"], one["sub"]);
        sids.push(c["sid"].as_str().expect("sid").to_owned());
    }
    sids.sort();
    let mut want = vec![
        one["sid"].as_str().expect("sid").to_owned(),
        two["sid"].as_str().expect("sid").to_owned(),
    ];
    want.sort();
    assert_eq!(sids, want);
    for sid in &want {
        until(&app, sid, "web", delivered).await;
    }
    assert!(rx.nothing_more());
}

/// Disabling the user (the store call behind `user disable`, the config and the password
/// change) queues the logout in the same transaction.
async fn disabling_the_user_sends_a_logout_token(b: Backend) {
    let mut rx = Receiver::start(&[], Duration::ZERO).await;
    let Some(mut app) = TestApp::spawn_with(b, |c| with_receiver(c, &rx.url)).await else {
        return;
    };
    app.start_logout_worker();
    let (_, web) = sign_in(&app).await;
    let sub = web["sub"].as_str().expect("sub");
    app.state
        .core
        .store
        .set_user_disabled(sub, true, app.clock.now())
        .await
        .expect("disable");
    let c = validate(&app, &rx.next().await, "web").await;
    assert_eq!(c["sid"], web["sid"]);
    assert_eq!(c["sub"], sub);
}

/// A device approved in a browser session carries its sid; the session's end reaches the
/// device's client too.
async fn a_device_signed_in_through_a_session_is_logged_out(b: Backend) {
    let mut rx = Receiver::start(&[], Duration::ZERO).await;
    let Some(mut app) = TestApp::spawn_with(b, |c| with_receiver(c, &rx.url)).await else {
        return;
    };
    app.start_logout_worker();
    let d = crate::flows::start(&app, "openid").await;
    let page = crate::flows::approve(
        &app.base,
        d["user_code"].as_str().expect("user_code"),
        "allow",
    )
    .await;
    assert_eq!(page.status, 200);
    let (status, t) = crate::flows::poll(&app, d["device_code"].as_str().expect("code")).await;
    assert_eq!(status, 200, "{t}");
    let id = claims(t["id_token"].as_str().expect("id_token"));
    app.state
        .core
        .store
        .revoke_user(id["sub"].as_str().expect("sub"), app.clock.now())
        .await
        .expect("revoke");
    let c = validate(&app, &rx.next().await, "tv").await;
    assert_eq!(c["sid"], id["sid"]);
    assert_eq!(c["sub"], id["sub"]);
}

crate::both_stores!(
    a_device_signed_in_through_a_session_is_logged_out,
    logout_sends_a_logout_token_to_each_client_of_the_session,
    a_failing_client_is_retried_with_backoff,
    a_client_that_never_answers_200_is_given_up,
    a_delivery_survives_a_restart,
    revoke_sessions_sends_a_logout_token_per_session,
    disabling_the_user_sends_a_logout_token,
);

/// Two nodes on one Postgres, both running the worker: every delivery is sent exactly once.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_logout_once() {
    const SESSIONS: usize = 20;
    // A slow receiver keeps both nodes' batches in flight at the same time.
    let mut rx = Receiver::start(&[], Duration::from_millis(50)).await;
    let Some((url, dir, db)) = database_for(Backend::Postgres).await else {
        return;
    };
    let text = config_toml(&url, &dir.path().display().to_string());
    let (mut config, _) = Config::from_toml(&text, &[]).expect("config");
    with_receiver(&mut config, &rx.url);
    config.backchannel_logout.concurrency = 2;
    let mut a = TestApp::start(config.clone(), dir, db).await;
    config.issuer = a.base.parse().expect("issuer");
    let mut b = TestApp::start(config, tempfile::tempdir().expect("dir"), None).await;
    a.start_logout_worker();
    b.start_logout_worker();

    let store = &a.state.core.store;
    let alice = store
        .find_user_by_login("alice")
        .await
        .expect("user")
        .expect("alice");
    let now = a.clock.now();
    let mut sids = Vec::new();
    for i in 0..SESSIONS {
        let sid = format!("session-{i}");
        store
            .insert_session(&latchkey::model::Session {
                id_hash: format!("hash-{i}"),
                sid: sid.clone(),
                user_id: alice.id.clone(),
                auth_time: now,
                amr: vec!["pwd".into()],
                created_at: now,
                last_seen_at: now,
                expires_at: now + 3600,
                mfa_at: None,
                ip: None,
                user_agent: None,
            })
            .await
            .expect("session");
        assert!(
            store
                .remember_logged_in_client(&sid, "web", now)
                .await
                .expect("remember")
        );
        sids.push(sid);
    }
    store.revoke_user(&alice.id, now).await.expect("revoke");
    b.state.core.store.backchannel_queued().wake();

    let mut jtis = HashMap::new();
    for _ in 0..SESSIONS {
        let c = validate(&a, &rx.next().await, "web").await;
        *jtis
            .entry(c["jti"].as_str().expect("jti").to_owned())
            .or_insert(0) += 1;
    }
    for sid in &sids {
        let s = until(&a, sid, "web", delivered).await;
        assert_eq!(s.attempts, 1, "claimed once");
    }
    assert_eq!(jtis.len(), SESSIONS, "{jtis:?}");
    assert!(rx.nothing_more(), "no delivery twice");
    assert_eq!(
        metric(&a, "delivered").await + metric(&b, "delivered").await,
        SESSIONS as u64
    );
}

crate::tests!(
    needs Postgres:
    two_nodes_send_each_logout_once,
);
