//! Holding up under resource exhaustion, over HTTP against the real server: parameter floods, oversized
//! authorization requests kept in the store, the audit log's retention, and connections
//! that send half a request (slowloris) or stop reading.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use latchkey::app;
use latchkey::clock::Clock;
use latchkey::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{
    Backend, SERVICE_SECRET, TestApp, WEB_REDIRECT, config_toml, database_for, http_client, json,
    location_params, param,
};
use crate::flows::CHALLENGE;

/// RFC 6749 section 5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
fn wire_safe(s: &str) -> bool {
    s.chars()
        .all(|c| matches!(c, ' '..='!' | '#'..='[' | ']'..='~'))
}

async fn refused_json(r: reqwest::Response, expect: &str) {
    assert_eq!(r.status(), 400);
    let body = json(r).await;
    assert_eq!(body["error"], "invalid_request", "{body}");
    let d = body["error_description"].as_str().expect("description");
    assert!(d.contains(expect), "{d}");
    assert!(wire_safe(d), "{d:?}");
}

/// One 64 KiB body of 10,900 parameters was 0.3-0.45 s of CPU (a quadratic duplicate
/// check); now the parse stops at the 101st parameter.
async fn parameter_floods_are_refused(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // 10,900 distinct three-letter names: a body just under the 64 KiB limit.
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let n = letters.len();
    let flood: String = (0..10_900)
        .map(|i| {
            let name: String = [i / (n * n), i / n % n, i % n]
                .iter()
                .map(|&j| letters[j])
                .collect();
            format!("{name}=1&")
        })
        .collect();
    let token = |body: String| {
        app.http
            .post(app.url("/token"))
            .basic_auth("service", Some(SERVICE_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = token(format!("grant_type=client_credentials&{flood}"))
        .await
        .expect("flood");
    refused_json(r, "more than 100 parameters").await;
    let long = "a".repeat(8193);
    let r = token(format!("grant_type=client_credentials&scope={long}"))
        .await
        .expect("long");
    refused_json(r, "`scope` is longer than 8192 bytes").await;
    let r = token("grant_type=client_credentials&scope=a&scope=b".into())
        .await
        .expect("dup");
    refused_json(
        r,
        "`scope` is included more than once (RFC 6749 section 3.1)",
    )
    .await;
    // A hostile name is quoted with what RFC 6749 section 5.2 does not allow replaced.
    let r = token("grant_type=client_credentials&%C2%A7%22%5C=1&%C2%A7%22%5C=2".into())
        .await
        .expect("dup name");
    refused_json(r, "`???` is included more than once").await;
    // The query string of /authorize is held to the same bounds.
    let r = app
        .http
        .get(format!("{}?{}", app.url("/authorize"), &flood[..6 * 1000]))
        .send()
        .await
        .expect("authorize flood");
    assert_eq!(r.status(), 400);

    // Four attackers, 25 floods each, while a service keeps asking for tokens.
    let mut attackers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, url, body) = (
            http_client(),
            app.url("/token"),
            format!("grant_type=client_credentials&{flood}"),
        );
        attackers.spawn(async move {
            for _ in 0..25 {
                let r = http
                    .post(&url)
                    .basic_auth("service", Some(SERVICE_SECRET))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("flood");
                assert_eq!(r.status(), 400);
            }
        });
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let r = app
            .token_basic(
                "service",
                SERVICE_SECRET,
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status(), 200);
        slowest = slowest.max(t.elapsed());
    }
    while let Some(done) = attackers.join_next().await {
        done.expect("attacker");
    }
    eprintln!("{b:?}: slowest client_credentials during 4 flooding connections: {slowest:?}");
}

/// Rows and bytes of the interactions table, read with SQL beside the server's own pool.
async fn interactions(app: &TestApp, b: Backend) -> (i64, i64) {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.state.config.database_url)
        .await
        .expect("pool");
    let sql = match b {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS c, COALESCE(SUM(LENGTH(CAST(request AS BLOB))), 0) AS n FROM interactions"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS c, CAST(COALESCE(SUM(OCTET_LENGTH(request)), 0) AS BIGINT) AS n FROM interactions"
        }
    };
    let row = sqlx::query(sql).fetch_one(&pool).await.expect("count");
    pool.close().await;
    (row.get("c"), row.get("n"))
}

/// An authorization request for the `web` client with every kept parameter as long as
/// its cap allows, in characters that JSON escaping doubles.
fn hostile_authorize(extra: &[(&str, String)]) -> Vec<(String, String)> {
    let claims = format!(
        r#"{{"userinfo":{{"{}":null}}}}"#,
        r#"\""#.repeat((4096 - 22) / 2)
    );
    assert_eq!(claims.len(), 4096);
    let mut q: Vec<(String, String)> = [
        ("response_type", "code".to_owned()),
        ("client_id", "web".to_owned()),
        ("redirect_uri", WEB_REDIRECT.to_owned()),
        (
            "scope",
            "openid profile email address phone offline_access".to_owned(),
        ),
        ("code_challenge", CHALLENGE.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
        ("prompt", "login consent ".repeat(500)),
        ("max_age", "0".to_owned()),
        ("display", "page".to_owned()),
        // Not kept at all.
        ("ui_locales", "x".repeat(8000)),
        ("state", "\"".repeat(2048)),
        ("nonce", "\"".repeat(512)),
        ("login_hint", "\"".repeat(512)),
        ("acr_values", "\"".repeat(512)),
        ("claims", claims),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        q.retain(|(n, _)| n != k);
        q.push(((*k).to_owned(), v.clone()));
    }
    q
}

/// 800 unauthenticated /authorize requests grew the store by 111 MB, kept 75 minutes.
async fn hostile_authorize_requests_are_bounded(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let before = interactions(&app, b).await;
    let t = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (http, url, q) = (http_client(), app.url("/authorize"), hostile_authorize(&[]));
        workers.spawn(async move {
            for _ in 0..50 {
                let r = http.get(&url).query(&q).send().await.expect("authorize");
                // Kept, and the login page shown.
                assert_eq!(r.status(), 200);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("worker");
    }
    let after = interactions(&app, b).await;
    let (rows, grew) = (after.0 - before.0, after.1 - before.1);
    eprintln!(
        "{b:?}: {rows} hostile authorization requests kept {grew} bytes ({} per request) in {:?}",
        grew / rows.max(1),
        t.elapsed()
    );
    assert_eq!(rows, 500);
    assert!(grew < 10 * 1024 * 1024, "{grew} bytes");

    // Over a cap: invalid_request back to the verified redirect URI, with the state
    // (RFC 6749 section 4.1.2.1); nothing kept.
    for (extra, says) in [
        (
            ("state", "s".repeat(2049)),
            "`state` parameter is longer than 2048",
        ),
        (
            ("claims", "{}".repeat(2049)),
            "`claims` parameter is longer than 4096",
        ),
        (
            ("login_hint", "x".repeat(513)),
            "`login_hint` parameter is longer",
        ),
        // Within every cap, but control characters take 6 bytes each in JSON.
        (("state", "\u{1}".repeat(2048)), "too large to keep"),
    ] {
        let q = hostile_authorize(std::slice::from_ref(&extra));
        let r = app
            .http
            .get(app.url("/authorize"))
            .query(&q)
            .send()
            .await
            .expect("authorize");
        assert_eq!(r.status(), 303, "{says}");
        let (loc, p) = location_params(&r);
        assert!(loc.starts_with(WEB_REDIRECT), "{loc}");
        assert_eq!(param(&p, "error"), Some("invalid_request"));
        let d = param(&p, "error_description").expect("description");
        assert!(d.contains(says), "{d}");
        assert!(wire_safe(d), "{d:?}");
        let state = q
            .iter()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.as_str());
        assert_eq!(param(&p, "state"), state);
    }
    assert_eq!(interactions(&app, b).await.0, after.0);

    // Live interactions stay; at expiry they go at once, with no grace hour.
    app::janitor_pass(&app.state).await.expect("janitor");
    assert_eq!(interactions(&app, b).await.0, after.0);
    app.clock.advance(app.state.config.sessions.interaction_ttl);
    app::janitor_pass(&app.state).await.expect("janitor");
    assert_eq!(interactions(&app, b).await, (0, 0));
}

/// The audit log is purged by the janitor past `[janitor] audit_retention_days`, in batches.
async fn audit_events_expire(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| c.janitor.batch_size = 2).await else {
        return;
    };
    let store = &app.state.core.store;
    let event = |kind: &'static str| latchkey::model::AuditEvent {
        kind,
        user_id: None,
        client_id: Some("web"),
        ip: Some("192.0.2.1"),
        detail: serde_json::json!({}),
    };
    for _ in 0..5 {
        store
            .audit(&event("old"), app.clock.now())
            .await
            .expect("audit");
    }
    app.clock.advance(89 * 86_400);
    store
        .audit(&event("recent"), app.clock.now())
        .await
        .expect("audit");
    app::janitor_pass(&app.state).await.expect("janitor");
    assert_eq!(store.audit_kinds(10).await.expect("kinds").len(), 6);
    // 90 days and a second after the old ones: they go, five in batches of two.
    app.clock.advance(86_400 + 1);
    app::janitor_pass(&app.state).await.expect("janitor");
    assert_eq!(store.audit_kinds(10).await.expect("kinds"), ["recent"]);
    assert_eq!(
        store
            .purge_audit(app.clock.now() + 1, 2)
            .await
            .expect("purge"),
        1
    );
}

fn addr(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("address")
}

/// Read until the server closes the connection (end of file or reset).
async fn until_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// 300 connections with half a request held the server's descriptors for over 240 s and
/// starved /healthz. With a cap of 64 and a 1 s header timeout, they are cut off in turns
/// and /healthz answers once the stalled connections ahead of it have been.
async fn slowloris_does_not_starve_healthz(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.limits.max_connections = 64;
        c.limits.header_read_timeout_seconds = 1;
    })
    .await
    else {
        return;
    };
    let start = Instant::now();
    let mut stalled = Vec::new();
    // Past the cap and the listen backlog (128), connects wait for SYN retries.
    tokio::time::timeout(Duration::from_secs(30), async {
        for _ in 0..300 {
            let mut s = TcpStream::connect(addr(&app)).await.expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .expect("half a request");
            stalled.push(s);
        }
    })
    .await
    .expect("300 connections opened");
    assert!(app.state.core.metrics.connections.get() <= 64);
    let asked = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        http_client().get(app.url("/healthz")).send(),
    )
    .await
    .expect("/healthz answered")
    .expect("/healthz");
    assert_eq!(r.status(), 200);
    let healthz = asked.elapsed();
    // 300 stalled connections ahead of it, 64 at a time, 1 s each: about 5 s.
    assert!(healthz < Duration::from_secs(10), "{healthz:?}");
    // Every stalled connection is closed by the server, not left open.
    let all = tokio::time::timeout(Duration::from_secs(20), async {
        for s in &mut stalled {
            until_closed(s).await;
        }
    })
    .await;
    assert!(all.is_ok(), "stalled connections left open");
    eprintln!(
        "{b:?}: 300 stalled connections opened in {:?}; /healthz answered in {healthz:?} (cap 64, header timeout 1 s); all closed {:?} after the first",
        asked - start,
        start.elapsed()
    );
}

/// The request timeout still bounds a request whose body stalls.
async fn stalled_body_times_out(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| c.limits.request_timeout_seconds = 1).await else {
        return;
    };
    let mut s = TcpStream::connect(addr(&app)).await.expect("connect");
    s.write_all(
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await
    .expect("half a body");
    let t = Instant::now();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut head))
        .await
        .expect("answered")
        .expect("read");
    assert_eq!(&head, b"HTTP/1.1 408");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// A client that pipelines requests and never reads the answers fills the socket buffers;
/// the server is then stuck writing, where no header timeout runs. The idle timeout closes
/// the connection.
async fn clients_that_stop_reading_are_dropped(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.limits.request_timeout_seconds = 1;
        c.limits.idle_timeout_seconds = 2;
        c.limits.header_read_timeout_seconds = 60;
    })
    .await
    else {
        return;
    };
    let open = || app.state.core.metrics.connections.get();
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut s = socket.connect(addr(&app)).await.expect("connect");
    let requests =
        b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4000);
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        let _ = s.write_all(&requests).await;
        // Keep the socket open, unread.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        let mut seen = false;
        loop {
            match open() {
                0 if seen => return,
                0 => {}
                _ => seen = true,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    writer.abort();
    assert!(
        closed.is_ok(),
        "a client that stopped reading kept its connection"
    );
    eprintln!("{b:?}: non-reading client dropped after {:?}", t.elapsed());
}

/// Shutdown stops accepting at once, and a request in flight still gets its answer.
async fn shutdown_finishes_requests_in_flight(b: Backend) {
    let Some((url, dir, pg_db)) = database_for(b).await else {
        return;
    };
    let text = config_toml(&url, &dir.path().display().to_string());
    let (config, _) = Config::from_toml(&text, &[]).expect("config");
    let state = app::build_state(config, Clock::manual(Clock::System.now()))
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(state, listener, async {
        let _ = stopped.await;
    }));
    let body = "grant_type=client_credentials";
    let mut s = TcpStream::connect(at).await.expect("connect");
    let basic = base64_basic("service", SERVICE_SECRET);
    s.write_all(
        format!(
            "POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("head");
    // `100 Continue` comes when the handler reads the body: the request is in flight.
    let mut cont = [0u8; 25];
    s.read_exact(&mut cont).await.expect("100 Continue");
    assert!(cont.starts_with(b"HTTP/1.1 100 Continue"), "{cont:?}");
    stop.send(()).expect("stop");
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        while TcpStream::connect(at).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "still accepting after shutdown");
    s.write_all(body.as_bytes()).await.expect("body");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
        .await
        .expect("answered and closed")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("access_token"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stopped")
        .expect("join")
        .expect("serve");
    drop(dir);
    if let Some(db) = pg_db {
        crate::common::drop_pg_database(db);
    }
}

fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

crate::both_stores!(
    parameter_floods_are_refused,
    hostile_authorize_requests_are_bounded,
    audit_events_expire,
    slowloris_does_not_starve_healthz,
    stalled_body_times_out,
    clients_that_stop_reading_are_dropped,
    shutdown_finishes_requests_in_flight,
);
