//! GET /demo/callback, the page the DEMO clients of the example config are sent back to.

use crate::common::{Backend, TestApp};

/// A test app with a `demo-web` client: a DEMO entry, as in the example config.
async fn with_demo_entries(b: Backend) -> Option<TestApp> {
    TestApp::spawn_with(b, |c| {
        let mut demo = c
            .clients
            .iter()
            .find(|c| c.client_id == "web")
            .expect("web")
            .clone();
        demo.client_id = "demo-web".into();
        c.clients.push(demo);
    })
    .await
}

async fn get(app: &TestApp, query: &[(&str, &str)]) -> (u16, String) {
    let r = app
        .http
        .get(app.url("/demo/callback"))
        .query(query)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// The page's text with the entities askama writes decoded (`&` last).
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&#38;", "&")
}

/// The page shows the code, how long a code lasts, and the curl that redeems it for
/// demo-web; every query value is HTML-escaped (anyone can write the query string), and the
/// code is one single-quoted word in the shell command.
async fn demo_callback_shows_the_code_and_how_to_redeem_it(b: Backend) {
    let Some(app) = with_demo_entries(b).await else {
        return;
    };
    let code = r#"<b>x</b>'"&amp;"#;
    let (status, html) = get(&app, &[("code", code), ("state", "<i>st</i>")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
    let base = app.url("");
    let base = base.trim_end_matches('/');
    let text = unescape(&html);
    for want in [
        format!("Code: <code>{code}</code>"),
        "State: <code><i>st</i></code>".to_owned(),
        "within 60 seconds".to_owned(),
        "curl -s -u demo-web:demo-web-secret-change-me-0123456789abcdefghij".to_owned(),
        "-d grant_type=authorization_code".to_owned(),
        // The code as one single-quoted shell word ('\'' for its quote).
        r#"--data-urlencode 'code=<b>x</b>'\''"&amp;'"#.to_owned(),
        format!("-d redirect_uri={base}/demo/callback -d code_verifier=$VERIFIER"),
        format!("{base}/token"),
    ] {
        assert!(text.contains(&want), "no {want:?} in:\n{html}");
    }

    // An error instead of a code: shown, escaped, and no curl.
    let (status, html) = get(
        &app,
        &[
            ("error", "access_denied"),
            ("error_description", "<script>alert(1)</script>"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("access_denied"), "{html}");
    assert!(
        unescape(&html).contains("<script>alert(1)</script>"),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("curl"),
        "{html}"
    );
}

/// Without DEMO entries (the test config has none) there is no demo page.
async fn demo_callback_is_not_served_without_demo_entries(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let (status, _) = get(&app, &[("code", "abc")]).await;
    assert_eq!(status, 404);
}

crate::both_stores!(
    demo_callback_shows_the_code_and_how_to_redeem_it,
    demo_callback_is_not_served_without_demo_entries,
);
