//! Driving the login and consent pages over plain HTTP, as a browser would.

use crate::common::{PASSWORD, TestApp, hidden};

/// The outcome of following /authorize through the pages.
pub struct Authorized {
    pub location: String,
    pub params: Vec<(String, String)>,
}

/// Go through /authorize with `query`, logging in as `user` (if asked) and allowing consent
/// (if asked). Returns the final redirect to the client.
pub async fn authorize(app: &TestApp, query: &[(&str, &str)], user: &str) -> Authorized {
    let mut r = app
        .http
        .get(app.url("/authorize"))
        .query(query)
        .send()
        .await
        .expect("authorize");
    for _ in 0..3 {
        if r.status().is_redirection() {
            let (location, params) = crate::common::location_params(&r);
            return Authorized { location, params };
        }
        let status = r.status();
        let html = r.text().await.expect("html");
        assert!(status.is_success(), "unexpected {status}: {html}");
        r = if html.contains("action=\"/login\"") {
            app.post_form(
                "/login",
                &[
                    ("csrf", &hidden(&html, "csrf")),
                    ("interaction", &hidden(&html, "interaction")),
                    ("username", user),
                    ("password", PASSWORD),
                ],
            )
            .await
        } else if html.contains("action=\"/consent\"") {
            app.post_form(
                "/consent",
                &[
                    ("csrf", &hidden(&html, "csrf")),
                    ("interaction", &hidden(&html, "interaction")),
                    ("decision", "allow"),
                ],
            )
            .await
        } else {
            panic!("unexpected page: {html}");
        };
    }
    panic!("too many pages");
}
