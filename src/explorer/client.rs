//! The explorer's HTTP client: it calls this server's public endpoints at the issuer's
//! address, exactly as any client would, and records each request and response for the page.
//! It only ever calls URLs it builds from the issuer (never one a learner typed), follows no
//! redirect (a client sees them; the browser follows them), and gives up after a timeout.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::run::Message;

/// How long one exchange may take before the explorer gives up on it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Response headers worth showing a learner: what a client must read or obey.
const SHOWN_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "pragma",
    "location",
    "www-authenticate",
    "retry-after",
];

/// The answer of one exchange, as the flow needs it next.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub json: Option<serde_json::Value>,
}

impl Answer {
    /// A string field of a JSON answer.
    pub fn field(&self, name: &str) -> Option<String> {
        self.json.as_ref()?.get(name)?.as_str().map(str::to_owned)
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Client authentication for a request to the token, revocation or introspection endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// A public client: its `client_id` in the form (RFC 6749 section 2.3, none).
    Public(&'a str),
    /// HTTP Basic with the client's id and secret (RFC 6749 section 2.3.1).
    Basic(&'a str, &'a str),
    /// A bearer access token (RFC 6750 section 2.1), for UserInfo.
    Bearer(&'a str),
}

#[derive(Debug, Clone)]
pub struct Recorder {
    http: reqwest::Client,
    base: String,
}

impl Recorder {
    /// A client of the server at `base` (the issuer).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent("latchkey-explorer")
            .build()?;
        Ok(Recorder {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST a form to `path`: what was sent, what came back, and the answer.
    pub async fn post_form(
        &self,
        path: &str,
        auth: Auth<'_>,
        form: &[(&str, &str)],
    ) -> (Message, Message, Answer) {
        self.post_form_hiding(path, auth, form, &[]).await
    }

    /// `post_form`, with the values of `hidden` fields shown as "(hidden)" in the record
    /// (a password the learner typed is sent, never kept).
    pub async fn post_form_hiding(
        &self,
        path: &str,
        auth: Auth<'_>,
        form: &[(&str, &str)],
        hidden: &[&str],
    ) -> (Message, Message, Answer) {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        if let Auth::Public(id) = auth {
            fields.insert(0, ("client_id", id));
        }
        let encode = |pairs: &[(&str, &str)]| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish()
        };
        let body = encode(&fields);
        let shown = fields
            .iter()
            .map(|(k, v)| {
                let pair = encode(&[(*k, *v)]);
                if hidden.contains(k) {
                    format!("{}=(hidden)", encode(&[(*k, "")]).trim_end_matches('='))
                } else {
                    pair
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut headers = vec![(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        headers.extend(auth_header(auth));
        let url = self.url(path);
        let sent = Message {
            start: format!("POST {path} HTTP/1.1"),
            headers: headers.clone(),
            body: String::new(),
        }
        .with_body(&shown);
        let mut req = self.http.post(&url).body(body);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let (got, answer) = receive(req.send().await).await;
        (sent, got, answer)
    }

    /// GET `path` (with its query), with `auth` if any.
    pub async fn get(&self, path: &str, auth: Option<Auth<'_>>) -> (Message, Message, Answer) {
        let headers: Vec<(String, String)> = auth.into_iter().flat_map(auth_header).collect();
        let sent = Message {
            start: format!("GET {path} HTTP/1.1"),
            headers: headers.clone(),
            body: String::new(),
        };
        let mut req = self.http.get(self.url(path));
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let (got, answer) = receive(req.send().await).await;
        (sent, got, answer)
    }
}

fn auth_header(auth: Auth<'_>) -> Option<(String, String)> {
    match auth {
        Auth::Public(_) => None,
        // RFC 6749 section 2.3.1: id and secret form-encoded, then Basic.
        Auth::Basic(id, secret) => {
            let pair = format!("{}:{}", form_encode(id), form_encode(secret));
            Some((
                "Authorization".to_owned(),
                format!("Basic {}", STANDARD.encode(pair)),
            ))
        }
        Auth::Bearer(token) => Some(("Authorization".to_owned(), format!("Bearer {token}"))),
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn receive(sent: Result<reqwest::Response, reqwest::Error>) -> (Message, Answer) {
    let r = match sent {
        Ok(r) => r,
        Err(e) => {
            // The server could not be reached at the issuer's address from itself (a
            // firewall, a load balancer that only answers from outside): say so plainly.
            let why = format!(
                "no answer: {e}. The explorer calls this server at its issuer URL; that address must be reachable from the server itself."
            );
            let message = Message {
                start: "(no response)".to_owned(),
                headers: Vec::new(),
                body: why.clone(),
            };
            return (
                message,
                Answer {
                    status: 0,
                    body: why,
                    json: None,
                },
            );
        }
    };
    let status = r.status();
    let headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| SHOWN_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or("(not text)").to_owned(),
            )
        })
        .collect();
    let body = r.text().await.unwrap_or_default();
    let json = serde_json::from_str(&body).ok();
    let start = format!(
        "HTTP/1.1 {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let pretty = json
        .as_ref()
        .and_then(|j| serde_json::to_string_pretty(j).ok())
        .unwrap_or_else(|| body.clone());
    let message = Message {
        start,
        headers,
        body: String::new(),
    }
    .with_body(&pretty);
    (
        message,
        Answer {
            status: status.as_u16(),
            body,
            json,
        },
    )
}
