//! Two server processes on one Postgres behave as one server.

use latchkey::config::Config;

use crate::common::{Backend, RS_SECRET, TestApp, config_toml, database_for, json};
use crate::flows::{approve, poll, start};
use crate::flows::{exchange, get_code};

/// Two servers on one fresh Postgres database, with one issuer (as behind a load balancer).
async fn two_nodes() -> Option<(TestApp, TestApp)> {
    let (url, dir, db) = database_for(Backend::Postgres).await?;
    let text = config_toml(&url, &dir.path().display().to_string());
    let (config, _) = Config::from_toml(&text, &[]).expect("config");
    let a = TestApp::start(config.clone(), dir, db).await;
    let mut config_b = config;
    config_b.issuer = a.base.parse().expect("issuer");
    let b = TestApp::start(config_b, tempfile::tempdir().expect("dir"), None).await;
    Some((a, b))
}

async fn cc(node: &TestApp) -> u16 {
    node.token_basic("rs", RS_SECRET, &[("grant_type", "client_credentials")])
        .await
        .status()
        .as_u16()
}

/// A client disabled through one process reaches the other node's client cache through
/// Postgres LISTEN/NOTIFY, long before its periodic reload (an hour here).
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_client_stops_working_on_every_node_at_once() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let listener = latchkey::app::watch_client_changes(&b.state).expect("Postgres listens");
    assert_eq!(cc(&b).await, 200, "B has the client cached");
    let mut client = a
        .state
        .core
        .store
        .get_client("rs")
        .await
        .expect("get")
        .expect("rs");
    // As `latchkey client` or a restarted node with a new config would. The first round may
    // reach B through the reload that follows its LISTEN; by the second, B is listening,
    // so only the notification can tell it.
    for round in 1..=2 {
        client.enabled = false;
        a.state
            .core
            .store
            .upsert_client(&client, a.state.now())
            .await
            .expect("disable");
        let mut status = 200;
        for _ in 0..100 {
            status = cc(&b).await;
            if status == 401 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(status, 401, "round {round}: B refuses within 2 s");
        // Re-enabling works at once on B (a refusal is re-checked against the store).
        client.enabled = true;
        a.state
            .core
            .store
            .upsert_client(&client, a.state.now())
            .await
            .expect("enable");
        assert_eq!(cc(&b).await, 200, "round {round}: re-enabled");
    }
    listener.abort();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_postgres() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };

    // Both nodes publish the same keys.
    let ja = json(a.http.get(a.url("/jwks.json")).send().await.expect("jwks")).await;
    let jb = json(b.http.get(b.url("/jwks.json")).send().await.expect("jwks")).await;
    assert_eq!(ja, jb);

    // /authorize on A, /token on B.
    let issued = get_code(&a, "openid offline_access").await;
    let t = json(exchange(&b, &issued).await).await;
    let access = t["access_token"]
        .as_str()
        .expect("access token from node B")
        .to_owned();
    let refresh = t["refresh_token"].as_str().expect("refresh").to_owned();
    // Userinfo on A accepts B's token; refresh on A rotates B's refresh token.
    let r = a
        .http
        .get(a.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 200);
    let r = a.refresh_web(&refresh).await;
    assert_eq!(r.status(), 200);
    // Reuse of the rotated token after the grace window, on B, is detected.
    b.clock.advance(60);
    let r = b.refresh_web(&refresh).await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    // The code is spent on every node, and its reuse revokes what it issued, seen by A.
    assert_eq!(
        json(exchange(&a, &issued).await).await["error"],
        "invalid_grant"
    );
    let r = a
        .http
        .post(a.url("/introspect"))
        .basic_auth("rs", Some(RS_SECRET))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("introspect");
    assert_eq!(json(r).await["active"], false);
}

/// RFC 8628 across nodes: the polling pace, the decision and the one issuance live in the
/// store, so a device that polls node A and then node B is held to one interval.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn device_polling_rules_hold_across_nodes() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let advance = |secs| {
        a.clock.advance(secs);
        b.clock.advance(secs);
    };

    let d = start(&a, "openid offline_access").await;
    let device_code = d["device_code"].as_str().expect("device_code");
    assert_eq!(
        poll(&a, device_code).await.1["error"],
        "authorization_pending"
    );
    // Node B knows A was just polled.
    assert_eq!(poll(&b, device_code).await.1["error"], "slow_down");
    advance(5);
    // The interval B raised to 10 s is enforced by A.
    assert_eq!(poll(&a, device_code).await.1["error"], "slow_down");
    advance(20);
    // Approved on B's pages; A issues the tokens, and only once.
    let done = approve(&b.base, d["user_code"].as_str().expect("uc"), "allow").await;
    assert_eq!(done.status, 200);
    let (status, t) = poll(&a, device_code).await;
    assert_eq!(status, 200, "{t}");
    assert!(t["refresh_token"].is_string());
    advance(20);
    assert_eq!(poll(&b, device_code).await.1["error"], "invalid_grant");
}

/// Parallel password guesses spread over two nodes: the count is in the store, so both
/// together check no more than the limit (3 in the test config).
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn the_guessing_limit_holds_across_nodes() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    // Checked guesses answer "wrong" until the third, which locks.
    let mut checked = 0;
    for _ in 0..50 {
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let node = if i % 2 == 0 { &a } else { &b };
                let (http, url) = (node.http.clone(), node.url("/token"));
                tokio::spawn(async move {
                    let body: serde_json::Value = http
                        .post(url)
                        .basic_auth("legacy", Some(crate::common::LEGACY_SECRET))
                        .form(&[
                            ("grant_type", "password"),
                            ("username", "alice"),
                            ("password", "wrong guess"),
                        ])
                        .send()
                        .await
                        .expect("request")
                        .json()
                        .await
                        .expect("json");
                    body["error_description"] == "wrong username or password"
                })
            })
            .collect();
        for t in tasks {
            if t.await.expect("join") {
                checked += 1;
            }
        }
        if checked >= 2 {
            break;
        }
    }
    // Let the last checks end, then one more guess locks or is locked.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut tail = 0;
    for node in [&a, &b] {
        let body = json(
            node.token_basic(
                "legacy",
                crate::common::LEGACY_SECRET,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "wrong guess"),
                ],
            )
            .await,
        )
        .await;
        if body["error_description"] == "wrong username or password" {
            tail += 1;
        }
    }
    assert_eq!(
        checked + tail,
        2,
        "exactly max_failures (3) guesses were checked"
    );
    for node in [&a, &b] {
        let r = node
            .token_basic(
                "legacy",
                crate::common::LEGACY_SECRET,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", crate::common::PASSWORD),
                ],
            )
            .await;
        let body = json(r).await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .starts_with("too many failed attempts"),
            "{body}"
        );
    }
}

crate::tests!(
    needs Postgres:
    a_disabled_client_stops_working_on_every_node_at_once,
    two_nodes_share_one_postgres,
    device_polling_rules_hold_across_nodes,
    the_guessing_limit_holds_across_nodes,
);
