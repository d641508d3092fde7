//! Health, readiness, metrics, limits and the headers every page carries.

use crate::common::{Backend, TestApp};

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
    crate::code_flow::get_code(&app, "openid").await;
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

crate::both_stores!(health_ready_metrics_and_headers, csrf_is_checked_first);
