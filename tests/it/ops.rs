//! Health, readiness, metrics, limits and the headers every page carries.

use std::path::PathBuf;

use crate::common::{Backend, SERVICE_SECRET, TestApp, modes_under};

async fn health_ready_metrics_and_headers(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("h")
            .status(),
        200
    );
    let r = app.http.get(app.url("/readyz")).send().await.expect("r");
    assert_eq!(r.text().await.expect("body"), "ready\n");
    crate::flows::get_code(&app, "openid").await;
    let m = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("body");
    assert!(
        m.contains("latchkey_http_requests_total{route=\"/authorize\""),
        "{m}"
    );
    assert!(
        m.contains("latchkey_store_rows{table=\"authorization_codes\"} 1"),
        "{m}"
    );
    // Pages: strict CSP, no framing, no sniffing, no referrer, no caching.
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&[("response_type", "code"), ("client_id", "nobody")])
        .send()
        .await
        .expect("page");
    let h = r.headers();
    let get = |n: &str| {
        h.get(n)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert!(get("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(get("content-security-policy").contains("script-src 'none'"));
    assert_eq!(get("x-frame-options"), "DENY");
    assert_eq!(get("x-content-type-options"), "nosniff");
    assert_eq!(get("referrer-policy"), "no-referrer");
    assert_eq!(get("cache-control"), "no-store");
    assert!(!get("x-request-id").is_empty());
    // An oversized body is a 413, not a crash.
    let big = "a".repeat(200 * 1024);
    let r = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=x&pad={big}"))
        .send()
        .await
        .expect("big");
    assert_eq!(r.status(), 413);
}

async fn csrf_is_checked_first(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let r = app
        .post_form(
            "/login",
            &[
                ("csrf", "forged"),
                ("interaction", "x"),
                ("username", "alice"),
                ("password", "p"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post_form("/consent", &[("interaction", "x"), ("decision", "allow")])
        .await;
    assert_eq!(r.status(), 403);
}

async fn status(url: String) -> u16 {
    crate::common::http_client()
        .get(url)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// `/metrics` is served by the main listener only when its `bind` is a loopback address and
/// no `[metrics] bind` is set; the metrics listener serves it and nothing else.
async fn metrics_only_on_loopback_or_their_own_listener(b: Backend) {
    let Some(public) =
        TestApp::spawn_with(b, |c| c.bind = "0.0.0.0:8080".parse().expect("addr")).await
    else {
        return;
    };
    assert_eq!(status(public.url("/healthz")).await, 200);
    assert_eq!(status(public.url("/metrics")).await, 404);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let metrics = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(latchkey::app::serve_metrics(
        public.state.clone(),
        listener,
        std::future::pending(),
    ));
    let m = crate::common::http_client()
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(m.status(), 200);
    let m = m.text().await.expect("body");
    assert!(
        m.contains("latchkey_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{m}"
    );
    for path in ["/healthz", "/token", "/.well-known/openid-configuration"] {
        assert_eq!(status(format!("{metrics}{path}")).await, 404, "{path}");
    }

    // On loopback it stays where it was, unless it has a listener of its own.
    let Some(local) = TestApp::spawn(b).await else {
        return;
    };
    assert_eq!(status(local.url("/metrics")).await, 200);
    let Some(moved) = TestApp::spawn_with(b, |c| {
        c.metrics.bind = Some("127.0.0.1:9090".parse().expect("addr"))
    })
    .await
    else {
        return;
    };
    assert_eq!(status(moved.url("/metrics")).await, 404);
}

/// The SQLite database (with its -wal and -shm files), the generated master key and the
/// folders Latchkey makes for them are the owner's alone. On Postgres with a configured
/// master key nothing is written to disk at all.
async fn state_files_are_owner_only(b: Backend) {
    let mut root = PathBuf::new();
    let Some(app) = TestApp::spawn_with(b, |c| {
        root = c.data_dir.clone();
        // Folders that do not exist yet, so Latchkey creates them, two levels deep.
        c.data_dir = root.join("state/keys");
        if c.is_sqlite() {
            c.database_url = format!("sqlite://{}/store/db/latchkey.db", root.display());
            c.master_key = None;
        }
    })
    .await
    else {
        return;
    };
    // A write, so the WAL is in use.
    let r = app
        .token_basic(
            "service",
            SERVICE_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let modes = modes_under(&root);
    for (p, m) in &modes {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{} is {m:o}", p.display());
    }
    let names: Vec<String> = modes
        .iter()
        .filter_map(|(p, _)| p.strip_prefix(&root).ok())
        .map(|p| p.display().to_string())
        .collect();
    if b == Backend::Sqlite {
        for f in [
            "state",
            "state/keys",
            "state/keys/master.key",
            "store",
            "store/db",
            "store/db/latchkey.db",
            "store/db/latchkey.db-wal",
            "store/db/latchkey.db-shm",
        ] {
            assert!(names.iter().any(|n| n == f), "no {f} in {names:?}");
        }
    } else {
        assert!(names.is_empty(), "{names:?}");
    }
}

crate::both_stores!(
    health_ready_metrics_and_headers,
    csrf_is_checked_first,
    state_files_are_owner_only,
    metrics_only_on_loopback_or_their_own_listener,
);
