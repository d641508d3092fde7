//! A learner's run of one flow: every exchange the explorer made or saw, in order, with what
//! the client keeps between steps (its `state`, `nonce`, PKCE verifier, the tokens it got).
//! Stored as JSON in the store, so any node continues it; bounded so a run cannot grow
//! without end.

use serde::{Deserialize, Serialize};

/// At most this many steps in a run: a flow and its follow-ups fit many times over.
pub const MAX_STEPS: usize = 40;
/// How much of a body a step keeps (the rest is cut, and the cut is said).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Who takes part in a flow, as the diagram draws them (OAuth 2.0 roles, RFC 6749 section
/// 1.1, with the browser as the user agent that carries redirects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Party {
    /// The learner's browser (the resource owner at the user agent).
    UserAgent,
    /// The explorer, acting as the client.
    Client,
    /// This server: /authorize, /token, /device/code, /revoke, /introspect, /logout.
    AuthorizationServer,
    /// What holds the user's data: here /userinfo (OIDC Core section 5.3).
    ResourceServer,
}

impl Party {
    pub const ALL: [Party; 4] = [
        Party::UserAgent,
        Party::Client,
        Party::AuthorizationServer,
        Party::ResourceServer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Party::UserAgent => "Browser (user agent)",
            Party::Client => "Client (the explorer)",
            Party::AuthorizationServer => "Authorization server",
            Party::ResourceServer => "Resource server (UserInfo)",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Party::UserAgent => 0,
            Party::Client => 1,
            Party::AuthorizationServer => 2,
            Party::ResourceServer => 3,
        }
    }
}

/// An HTTP message as it went over the wire: the request line or status line, the headers
/// that matter, and the body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Message {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Message {
    /// Keep at most `MAX_BODY_BYTES` of `body`, on a character boundary.
    pub fn with_body(mut self, body: &str) -> Self {
        if body.len() <= MAX_BODY_BYTES {
            self.body = body.to_owned();
        } else {
            let mut end = MAX_BODY_BYTES;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            self.body = format!("{}\n[... {} more bytes]", &body[..end], body.len() - end);
        }
        self
    }
}

/// One step of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub title: String,
    pub from: Party,
    pub to: Party,
    /// Why this step happens, in a few sentences.
    pub explain: String,
    /// The spec section it comes from: label and URL.
    pub spec: Option<(String, String)>,
    /// A redirect through the browser (drawn dashed).
    pub redirect: bool,
    pub request: Option<Message>,
    pub response: Option<Message>,
    /// The server refused: an error answer (drawn red).
    pub error: bool,
    /// Parameters of this step to explain (names in `learn::PARAMS`).
    pub params: Vec<String>,
    /// Tokens to decode on the page: (what it is, the token).
    pub tokens: Vec<(String, String)>,
    /// A computation the client made, shown as is (the S256 challenge, a check it did).
    pub notes: Vec<String>,
}

impl Step {
    pub fn new(
        title: impl Into<String>,
        from: Party,
        to: Party,
        explain: impl Into<String>,
    ) -> Self {
        Step {
            title: title.into(),
            from,
            to,
            explain: explain.into(),
            spec: None,
            redirect: false,
            request: None,
            response: None,
            error: false,
            params: Vec::new(),
            tokens: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn spec(mut self, label: &str, url: &str) -> Self {
        self.spec = Some((label.to_owned(), url.to_owned()));
        self
    }
}

/// What the learner can do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Open this URL in the browser (an authorization request, a verification page, logout).
    Open {
        url: String,
        label: String,
        new_tab: bool,
    },
    /// Ask the explorer to take the next step itself (poll, refresh, revoke, ...).
    Do { action: String, label: String },
}

/// A run: its flow, the experiments chosen, the steps so far, and what the client keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    pub flow: String,
    /// The "break it" experiments chosen for this run (slugs of `learn::BREAKAGES`).
    pub breaks: Vec<String>,
    pub steps: Vec<Step>,
    pub next: Vec<Action>,
    /// What the client keeps between steps.
    pub kept: Kept,
    /// Said when the run cannot take more steps, or the flow ended.
    pub finished: bool,
}

/// The client's own memory between steps: what it sent (to check what comes back) and what
/// it received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Kept {
    pub client_id: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub verifier: Option<String>,
    pub redirect_uri: Option<String>,
    pub code: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// The refresh token the last refresh replaced (for the reuse experiment).
    pub previous_refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub device_code: Option<String>,
    pub user_code: Option<String>,
    pub interval: Option<i64>,
}

impl Run {
    pub fn new(flow: &str, breaks: Vec<String>, client_id: &str) -> Self {
        Run {
            flow: flow.to_owned(),
            breaks,
            kept: Kept {
                client_id: client_id.to_owned(),
                ..Kept::default()
            },
            ..Run::default()
        }
    }

    pub fn breaks(&self, slug: &str) -> bool {
        self.breaks.iter().any(|b| b == slug)
    }

    /// Add a step, unless the run is full (then it is finished, and says why).
    pub fn push(&mut self, step: Step) {
        if self.steps.len() >= MAX_STEPS {
            self.finished = true;
            self.next.clear();
            return;
        }
        self.steps.push(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "é".repeat(MAX_BODY_BYTES);
        let m = Message::default().with_body(&body);
        assert!(m.body.len() < body.len());
        assert!(
            m.body.ends_with("more bytes]"),
            "{}",
            &m.body[m.body.len() - 30..]
        );
    }

    #[test]
    fn a_full_run_takes_no_more_steps() {
        let mut run = Run::new("client-credentials", Vec::new(), "explorer-machine");
        for i in 0..MAX_STEPS + 3 {
            run.push(Step::new(
                format!("step {i}"),
                Party::Client,
                Party::AuthorizationServer,
                "",
            ));
        }
        assert_eq!(run.steps.len(), MAX_STEPS);
        assert!(run.finished);
    }
}
