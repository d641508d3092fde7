//! Holding up under attack, over HTTP against the real server: parameter floods.

use std::time::{Duration, Instant};

use crate::common::{Backend, SERVICE_SECRET, TestApp, http_client, json};

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

crate::both_stores!(parameter_floods_are_refused,);
