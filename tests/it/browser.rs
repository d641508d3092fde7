//! Driving the login and consent pages over plain HTTP, as a browser would.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::common::{PASSWORD, TestApp, hidden, location_params_in};

/// The first response after the login and consent pages: a redirect or a form_post page.
pub struct Final {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    /// The pages passed on the way, in order ("login", "consent").
    pub pages: Vec<&'static str>,
}

/// Go through /authorize with `query`, logging in as `user` and allowing consent when those
/// pages are shown.
pub async fn through_pages(app: &TestApp, query: &[(&str, &str)], user: &str) -> Final {
    let mut r = app
        .http
        .get(app.url("/authorize"))
        .query(query)
        .send()
        .await
        .expect("authorize");
    let mut pages = Vec::new();
    for _ in 0..3 {
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.text().await.expect("body");
        if status.is_redirection() {
            return Final {
                status,
                headers,
                body,
                pages,
            };
        }
        assert!(status.is_success(), "unexpected {status}: {body}");
        r = if body.contains("action=\"/login\"") {
            pages.push("login");
            app.post_form(
                "/login",
                &[
                    ("csrf", &hidden(&body, "csrf")),
                    ("interaction", &hidden(&body, "interaction")),
                    ("username", user),
                    ("password", PASSWORD),
                ],
            )
            .await
        } else if body.contains("action=\"/consent\"") {
            pages.push("consent");
            app.post_form(
                "/consent",
                &[
                    ("csrf", &hidden(&body, "csrf")),
                    ("interaction", &hidden(&body, "interaction")),
                    ("decision", "allow"),
                ],
            )
            .await
        } else {
            return Final {
                status,
                headers,
                body,
                pages,
            };
        };
    }
    panic!("too many pages");
}

/// The outcome of following /authorize through the pages to a redirect.
pub struct Authorized {
    pub location: String,
    pub params: Vec<(String, String)>,
}

/// `through_pages`, expecting a query-mode redirect back to the client.
pub async fn authorize(app: &TestApp, query: &[(&str, &str)], user: &str) -> Authorized {
    let f = through_pages(app, query, user).await;
    assert!(
        f.status.is_redirection(),
        "expected a redirect, got {}: {}",
        f.status,
        f.body
    );
    let (location, params) = location_params_in(&f.headers);
    Authorized { location, params }
}

/// The hidden fields of a form_post page, in order.
pub fn form_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("type=\"hidden\" name=\"") {
        rest = &rest[i + 20..];
        let name = rest[..rest.find('"').expect("quote")].to_owned();
        out.push((
            name.clone(),
            hidden(
                &format!("name=\"{name}\"{}", &rest[rest.find('"').expect("q") + 1..]),
                &name,
            ),
        ));
    }
    out
}

/// The parameters in the fragment of a redirect's Location.
pub fn fragment_params(headers: &HeaderMap) -> Vec<(String, String)> {
    let loc = headers
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii");
    let frag = loc.split_once('#').map(|(_, f)| f).unwrap_or_default();
    url::form_urlencoded::parse(frag.as_bytes())
        .into_owned()
        .collect()
}
