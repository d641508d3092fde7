//! Each flow the explorer runs, as steps a client takes: what it sends, what comes back, and
//! why, with the section it comes from. The explorer is the client here, so it does what a
//! careful client must: it checks `state` and `iss` on the way back (RFC 6749 section 10.12,
//! RFC 9207), keeps its PKCE verifier to itself, and redeems a code once; unless the learner
//! chose to break the flow on purpose, to see the server refuse.

use sha2::{Digest, Sha256};

use super::client::{Answer, Auth, Recorder};
use super::run::{Action, Kept, Message, Party, Run, Step};
use super::{MACHINE, SPA, TV, WEB};
use crate::crypto::secret::new_token;

const RFC6749: &str = "https://www.rfc-editor.org/rfc/rfc6749";
const RFC7636: &str = "https://www.rfc-editor.org/rfc/rfc7636";
const RFC7009: &str = "https://www.rfc-editor.org/rfc/rfc7009";
const RFC7662: &str = "https://www.rfc-editor.org/rfc/rfc7662";
const RFC8628: &str = "https://www.rfc-editor.org/rfc/rfc8628";
const RFC9700: &str = "https://www.rfc-editor.org/rfc/rfc9700";
const OIDC: &str = "https://openid.net/specs/openid-connect-core-1_0.html";
const FORM_POST: &str = "https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html";
const LOGOUT: &str = "https://openid.net/specs/openid-connect-rpinitiated-1_0.html";

/// The flows the explorer runs, and the experiments each offers.
pub const FLOWS: &[(&str, &[&str])] = &[
    (
        "code-pkce",
        &[
            "wrong-verifier",
            "replay-code",
            "no-challenge",
            "unregistered-redirect",
        ],
    ),
    ("code", &["replay-code", "wrong-verifier"]),
    ("implicit-form-post", &["unregistered-redirect"]),
    ("hybrid", &["replay-code", "wrong-verifier"]),
    ("client-credentials", &["wrong-secret"]),
    ("device", &["poll-too-fast"]),
    ("password", &[]),
];

/// The follow-ups a run with tokens offers, by the flow slugs of `learn::FLOWS` they show.
pub const FOLLOW_UPS: &[(&str, &str)] = &[
    ("userinfo", "Call UserInfo with the access token"),
    (
        "bad-token-userinfo",
        "Break it: call UserInfo with an altered access token",
    ),
    ("refresh", "Refresh the tokens (rotation)"),
    ("reuse-refresh", "Break it: use the old refresh token again"),
    ("introspection", "Introspect the access token"),
    ("revocation", "Revoke the refresh token"),
    ("logout", "Sign out (RP-initiated logout)"),
];

/// What a flow needs from this server: where it is, and how to authenticate its clients.
pub struct Ctx<'a> {
    pub http: &'a Recorder,
    /// The issuer: `iss` on the way back must be exactly this (RFC 9207 section 2.4).
    pub issuer: &'a str,
    /// The secrets of the explorer's confidential clients (`super::secret`).
    pub web_secret: &'a str,
    pub machine_secret: &'a str,
}

impl Ctx<'_> {
    fn auth<'k>(&'k self, kept: &'k Kept) -> Auth<'k> {
        match kept.client_id.as_str() {
            WEB => Auth::Basic(WEB, self.web_secret),
            MACHINE => Auth::Basic(MACHINE, self.machine_secret),
            other => Auth::Public(other),
        }
    }

    fn redirect_uri(&self) -> String {
        format!("{}{}", self.issuer, super::CALLBACK)
    }
}

/// Why a run could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    UnknownFlow,
    UnknownExperiment(String),
}

/// Start `flow` with the experiments `breaks`: the run with its first steps.
pub async fn start(ctx: &Ctx<'_>, flow: &str, breaks: Vec<String>) -> Result<Run, Refused> {
    let Some((_, offered)) = FLOWS.iter().find(|(f, _)| *f == flow) else {
        return Err(Refused::UnknownFlow);
    };
    if let Some(b) = breaks.iter().find(|b| !offered.contains(&b.as_str())) {
        return Err(Refused::UnknownExperiment(b.clone()));
    }
    let client = match flow {
        "code-pkce" => SPA,
        "client-credentials" => MACHINE,
        "device" => TV,
        _ => WEB,
    };
    let mut run = Run::new(flow, breaks, client);
    match flow {
        "client-credentials" => client_credentials(ctx, &mut run).await,
        "device" => device_start(ctx, &mut run).await,
        "password" => password_form(&mut run),
        _ => authorization_request(ctx, &mut run),
    }
    Ok(run)
}

/// The step of one exchange with the server, marked as an error when it was refused.
fn exchange(
    title: &str,
    from: Party,
    to: Party,
    explain: &str,
    (sent, got, answer): (Message, Message, Answer),
) -> (Step, Answer) {
    let mut step = Step::new(title, from, to, explain);
    step.error = !answer.ok();
    step.request = Some(sent);
    step.response = Some(got);
    (step, answer)
}

/// Keep what a token response gave, and list its tokens for decoding.
fn keep_tokens(run: &mut Run, step: &mut Step, answer: &Answer) {
    for (name, label) in [
        ("id_token", "ID token"),
        ("access_token", "Access token"),
        ("refresh_token", "Refresh token"),
    ] {
        let Some(t) = answer.field(name) else {
            continue;
        };
        step.tokens.push((label.to_owned(), t.clone()));
        match name {
            "id_token" => run.kept.id_token = Some(t),
            "access_token" => run.kept.access_token = Some(t),
            _ => run.kept.refresh_token = Some(t),
        }
    }
}

/// The follow-ups that make sense with what the run holds now.
fn offer_follow_ups(run: &mut Run) {
    let k = &run.kept;
    let confidential = k.client_id == WEB || k.client_id == MACHINE;
    let mut next = Vec::new();
    for (slug, label) in FOLLOW_UPS {
        let fits = match *slug {
            "userinfo" | "bad-token-userinfo" => k.access_token.is_some() && k.id_token.is_some(),
            "refresh" | "revocation" => k.refresh_token.is_some(),
            "reuse-refresh" => k.previous_refresh_token.is_some(),
            "introspection" => k.access_token.is_some() && confidential,
            "logout" => k.id_token.is_some(),
            _ => false,
        };
        if fits {
            next.push(Action::Do {
                action: (*slug).to_owned(),
                label: (*label).to_owned(),
            });
        }
    }
    run.next = next;
    if run.next.is_empty() {
        run.finished = true;
    }
}

async fn client_credentials(ctx: &Ctx<'_>, run: &mut Run) {
    let wrong = run.breaks("wrong-secret");
    let secret = if wrong {
        "not-the-secret".to_owned()
    } else {
        ctx.machine_secret.to_owned()
    };
    let sent = ctx
        .http
        .post_form(
            "/token",
            Auth::Basic(MACHINE, &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let (mut step, answer) = exchange(
        "The service asks for a token for itself",
        Party::Client,
        Party::AuthorizationServer,
        "No user takes part: the client authenticates with its own credentials (HTTP Basic with its id and secret) and gets an access token for itself. Only confidential clients, which can keep a secret, may use this grant.",
        sent,
    );
    step = step.spec("RFC 6749 section 4.4", &format!("{RFC6749}#section-4.4"));
    step.params = vec!["grant_type".into(), "client_secret".into()];
    if wrong {
        step.notes.push("Break it: the explorer sent a wrong secret. The server answers 401 invalid_client with a WWW-Authenticate header naming the Basic scheme (RFC 6749 section 5.2).".into());
    }
    keep_tokens(run, &mut step, &answer);
    run.push(step);
    offer_follow_ups(run);
}

/// RFC 7636 section 4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier))).
fn s256(verifier: &str) -> (String, String) {
    use base64::Engine;
    let digest = Sha256::digest(verifier.as_bytes());
    let hex = crate::crypto::secret::encode_hex(&digest);
    (
        hex,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
    )
}

/// The authorization request of a browser flow, and the step that sends the browser there.
fn authorization_request(ctx: &Ctx<'_>, run: &mut Run) {
    let flow = run.flow.clone();
    let (response_type, response_mode) = match flow.as_str() {
        "implicit-form-post" => ("id_token", Some("form_post")),
        "hybrid" => ("code id_token", Some("form_post")),
        _ => ("code", None),
    };
    let state = new_token();
    let nonce = new_token();
    let redirect_uri = if run.breaks("unregistered-redirect") {
        format!("{}/explore/not-registered", ctx.issuer)
    } else {
        ctx.redirect_uri()
    };
    let mut step = Step::new(
        "The client sends the browser to the authorization endpoint",
        Party::Client,
        Party::UserAgent,
        "The client cannot see the user's password, so it sends the browser to the authorization server with what it asks for. The user signs in there and allows (or denies) the request; the answer comes back through the browser to the redirect URI.",
    );
    step.redirect = true;
    let mut params: Vec<(&str, String)> = vec![
        ("response_type", response_type.to_owned()),
        ("client_id", run.kept.client_id.clone()),
        ("redirect_uri", redirect_uri.clone()),
        ("scope", "openid profile email offline_access".to_owned()),
        ("state", state.clone()),
        ("nonce", nonce.clone()),
    ];
    if let Some(mode) = response_mode {
        params.push(("response_mode", mode.to_owned()));
    }
    if response_type.contains("code") {
        let verifier = new_token();
        let (hex, challenge) = s256(&verifier);
        if run.breaks("no-challenge") {
            step.notes.push("Break it: the explorer leaves out code_challenge. A public client without PKCE is refused (RFC 9700 section 2.1.1).".into());
        } else {
            step.notes.push(format!(
                "code_verifier (kept by the client, never sent here) = {verifier}"
            ));
            step.notes.push(format!("SHA-256(code_verifier) = {hex}"));
            step.notes.push(format!(
                "code_challenge = BASE64URL(SHA-256(code_verifier)) = {challenge}"
            ));
            params.push(("code_challenge", challenge));
            params.push(("code_challenge_method", "S256".to_owned()));
        }
        run.kept.verifier = Some(verifier);
    }
    let mut url = match url::Url::parse(&format!("{}/authorize", ctx.issuer)) {
        Ok(u) => u,
        Err(_) => return,
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &params {
            q.append_pair(k, v);
        }
    }
    step.params = params.iter().map(|(k, _)| (*k).to_owned()).collect();
    step.request = Some(Message {
        start: format!("GET {}?{} HTTP/1.1", url.path(), url.query().unwrap_or("")),
        headers: Vec::new(),
        body: String::new(),
    });
    step = match flow.as_str() {
        "implicit-form-post" => step.spec("OAuth 2.0 Form Post Response Mode", FORM_POST),
        "hybrid" => step.spec(
            "OIDC Core section 3.3.2.1",
            &format!("{OIDC}#HybridAuthRequest"),
        ),
        _ => step.spec(
            "RFC 6749 section 4.1.1",
            &format!("{RFC6749}#section-4.1.1"),
        ),
    };
    run.kept.state = Some(state);
    run.kept.nonce = Some(nonce);
    run.kept.redirect_uri = Some(redirect_uri);
    run.push(step);
    run.next = vec![Action::Open {
        url: url.to_string(),
        label: "Open the authorization request: sign in and allow".to_owned(),
        new_tab: false,
    }];
}

/// The browser came back to the redirect URI (by a redirect, or a form_post): check what
/// came back, then redeem the code if there is one.
/// False when the answer was not this run's to take (nothing is recorded then).
pub async fn callback(
    ctx: &Ctx<'_>,
    run: &mut Run,
    fields: &[(String, String)],
    posted: bool,
) -> bool {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    // Only the answer to this run's own request, and once: anything else (another site's
    // link to this page, a reload of it) is dropped unrecorded, as a client must drop an
    // answer whose state it did not send (RFC 6749 section 10.12).
    let waiting = run.kept.state.clone();
    if run.finished || waiting.is_none() || get("state") != waiting {
        return false;
    }
    run.kept.state = None;
    // What happened between the browser and the server, which no client sees: shown so the
    // diagram has the whole flow.
    let mut at_server = Step::new(
        "The user signs in and decides, at the authorization server",
        Party::UserAgent,
        Party::AuthorizationServer,
        "The browser asks the authorization server with the request the client built. The user signs in there (the client never sees the password, nor a second factor) and allows or denies what the client asked for on the consent page, unless they allowed it before.",
    );
    at_server.redirect = true;
    run.push(at_server.spec(
        "RFC 6749 section 4.1.1",
        &format!("{RFC6749}#section-4.1.1"),
    ));
    let mut answered = Step::new(
        "The server sends the browser back to the redirect URI",
        Party::AuthorizationServer,
        Party::UserAgent,
        if posted {
            "The answer goes back through the browser to the registered redirect URI, as a page with a form that posts itself (form_post)."
        } else {
            "The answer goes back through the browser: a redirect to the registered redirect URI, with the code (or an error), the state the client sent, and iss."
        },
    );
    answered.redirect = true;
    answered.error = fields.iter().any(|(k, _)| k == "error");
    run.push(answered);
    let mut step = Step::new(
        "The browser brings the answer back to the client",
        Party::UserAgent,
        Party::Client,
        if posted {
            "The authorization server answered with a page that posts a form to the redirect URI (response_mode=form_post): the values travel in the body, so they stay out of the browser's history, the server logs and the Referer header."
        } else {
            "The authorization server redirected the browser to the redirect URI with the answer in the query. The client checks that state is the one it sent (a forged answer from another site would not know it) and that iss names the server it asked."
        },
    );
    step.redirect = true;
    let encoded = form_urlencoded_pairs(fields);
    let request = Message {
        start: if posted {
            format!("POST {} HTTP/1.1", super::CALLBACK)
        } else {
            format!("GET {}?{} HTTP/1.1", super::CALLBACK, cut(&encoded))
        },
        headers: Vec::new(),
        body: String::new(),
    };
    step.request = Some(if posted {
        request.with_body(&encoded)
    } else {
        request
    });
    step = if posted {
        step.spec(
            "OAuth 2.0 Form Post Response Mode section 2",
            &format!("{FORM_POST}#FormPostResponseMode"),
        )
    } else {
        step.spec(
            "RFC 6749 section 4.1.2",
            &format!("{RFC6749}#section-4.1.2"),
        )
    };
    step.notes.push("state matches the value the client sent: this answer belongs to this request (RFC 6749 section 10.12).".to_owned());
    match get("iss") {
        Some(iss) if iss == ctx.issuer => step.notes.push(format!(
            "iss = {iss}: the server the client sent the user to answered, not another one (mix-up defence, RFC 9207 section 2.4)."
        )),
        Some(iss) => step.notes.push(format!(
            "iss = {} is not the issuer the client asked: drop it (RFC 9207 section 2.4).",
            cut(&iss)
        )),
        None => {}
    }
    step.params = fields.iter().map(|(k, _)| k.clone()).collect();
    if let Some(err) = get("error") {
        step.error = true;
        step.notes.push(format!(
            "The server refused: error={}{}",
            cut(&err),
            get("error_description")
                .map(|d| format!(", error_description={}", cut(&d)))
                .unwrap_or_default()
        ));
        run.push(step);
        run.next.clear();
        run.finished = true;
        return true;
    }
    let code = get("code");
    if let Some(t) = get("id_token") {
        step.tokens.push(("ID token".into(), t.clone()));
        run.kept.id_token = Some(t);
    }
    if let Some(t) = get("access_token") {
        step.tokens.push(("Access token".into(), t.clone()));
        run.kept.access_token = Some(t);
    }
    run.kept.code.clone_from(&code);
    run.push(step);
    match code {
        Some(code) => redeem(ctx, run, &code).await,
        None => offer_follow_ups(run),
    }
    true
}

/// `token` with one character in the middle of its signature (its last part) changed.
fn altered(token: &str) -> String {
    let start = token.rfind('.').map_or(0, |i| i + 1);
    let at = start + (token.len() - start) / 2;
    let mut out = token.to_owned();
    if let Some(c) = token[at..].chars().next() {
        let swapped = if c == 'A' { "B" } else { "A" };
        out.replace_range(at..at + c.len_utf8(), swapped);
    }
    out
}

/// A value an answer carried, cut to what a note needs.
fn cut(s: &str) -> String {
    const MAX: usize = 512;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

fn form_urlencoded_pairs(fields: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter())
        .finish()
}

async fn redeem(ctx: &Ctx<'_>, run: &mut Run, code: &str) {
    let redirect_uri = run.kept.redirect_uri.clone().unwrap_or_default();
    let verifier = if run.breaks("wrong-verifier") {
        new_token()
    } else {
        run.kept.verifier.clone().unwrap_or_default()
    };
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    if run.kept.verifier.is_some() {
        form.push(("code_verifier", verifier.as_str()));
    }
    let kept = run.kept.clone();
    let sent = ctx.http.post_form("/token", ctx.auth(&kept), &form).await;
    let (mut step, answer) = exchange(
        "The client redeems the code at the token endpoint",
        Party::Client,
        Party::AuthorizationServer,
        "Back channel: the client sends the code with the redirect URI it used and its PKCE code_verifier straight to the token endpoint (a confidential client also authenticates). The server hashes the verifier and compares it with the challenge it stored: only the client that started the request knows it, so a stolen code is useless.",
        sent,
    );
    step = step.spec(
        "RFC 6749 section 4.1.3",
        &format!("{RFC6749}#section-4.1.3"),
    );
    step.params = form.iter().map(|(k, _)| (*k).to_owned()).collect();
    if run.breaks("wrong-verifier") {
        step.notes.push("Break it: the explorer sent a verifier that is not the one behind the challenge. The server answers invalid_grant (RFC 7636 section 4.6).".into());
        step = step.spec("RFC 7636 section 4.6", &format!("{RFC7636}#section-4.6"));
    }
    keep_tokens(run, &mut step, &answer);
    run.push(step);
    if run.breaks("replay-code") && answer.ok() {
        let sent = ctx.http.post_form("/token", ctx.auth(&kept), &form).await;
        let (mut again, _) = exchange(
            "Break it: the client redeems the same code again",
            Party::Client,
            Party::AuthorizationServer,
            "A code is good once. A second redemption means it leaked, so the server refuses it with invalid_grant and revokes the tokens it issued for that code the first time.",
            sent,
        );
        again = again.spec(
            "RFC 6749 section 4.1.2",
            &format!("{RFC6749}#section-4.1.2"),
        );
        run.push(again);
    }
    offer_follow_ups(run);
}

async fn device_start(ctx: &Ctx<'_>, run: &mut Run) {
    let kept = run.kept.clone();
    let sent = ctx
        .http
        .post_form(
            "/device/code",
            ctx.auth(&kept),
            &[("scope", "openid profile offline_access")],
        )
        .await;
    let (mut step, answer) = exchange(
        "The device asks for a code",
        Party::Client,
        Party::AuthorizationServer,
        "A TV or a command line tool has no browser to sign in with (or no keyboard). It asks the server for a device code, which it keeps, and a short user code, which it shows the user with the address where to type it.",
        sent,
    );
    step = step.spec("RFC 8628 section 3.1", &format!("{RFC8628}#section-3.1"));
    run.kept.device_code = answer.field("device_code");
    run.kept.user_code = answer.field("user_code");
    run.kept.interval = answer
        .json
        .as_ref()
        .and_then(|j| j.get("interval"))
        .and_then(serde_json::Value::as_i64);
    run.push(step);
    let complete = answer.field("verification_uri_complete");
    run.next = match complete {
        Some(url) => vec![
            Action::Open {
                url,
                label: "Open the verification page (as the user, on a phone or computer)".into(),
                new_tab: true,
            },
            Action::Do {
                action: "poll".into(),
                label: "Poll the token endpoint (as the device)".into(),
            },
        ],
        None => Vec::new(),
    };
    run.finished = run.next.is_empty();
}

/// The device polls for its tokens.
async fn device_poll(ctx: &Ctx<'_>, run: &mut Run) {
    let kept = run.kept.clone();
    let code = kept.device_code.clone().unwrap_or_default();
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", code.as_str()),
    ];
    let times = if run.breaks("poll-too-fast") { 2 } else { 1 };
    for i in 0..times {
        let sent = ctx.http.post_form("/token", ctx.auth(&kept), &form).await;
        let (mut step, answer) = exchange(
            if i == 0 {
                "The device polls the token endpoint"
            } else {
                "Break it: the device polls again at once"
            },
            Party::Client,
            Party::AuthorizationServer,
            "Until the user has approved, the server answers authorization_pending; a device that polls faster than the interval it was given is told slow_down, and must wait 5 seconds longer from then on. Once approved, the same request returns the tokens.",
            sent,
        );
        step = step.spec("RFC 8628 section 3.4", &format!("{RFC8628}#section-3.4"));
        if answer.field("error").as_deref() == Some("slow_down") {
            step = step.spec("RFC 8628 section 3.5", &format!("{RFC8628}#section-3.5"));
        }
        let done = answer.ok();
        keep_tokens(run, &mut step, &answer);
        run.push(step);
        if done {
            offer_follow_ups(run);
            return;
        }
    }
}

fn password_form(run: &mut Run) {
    let mut step = Step::new(
        "The app asks for the user's password itself",
        Party::UserAgent,
        Party::Client,
        "In the resource owner password grant the app collects the username and password and sends them to the token endpoint. The app sees the password, no second factor can be asked, and the user cannot tell a real app from a phishing one: RFC 9700 section 2.4 says it MUST NOT be used. It is here so you can see why.",
    );
    step = step.spec("RFC 9700 section 2.4", &format!("{RFC9700}#section-2.4"));
    run.push(step);
    run.next = vec![Action::Do {
        action: "password".into(),
        label: "Send a username and password (below)".into(),
    }];
}

async fn password_grant(ctx: &Ctx<'_>, run: &mut Run, username: &str, password: &str) {
    let kept = run.kept.clone();
    let form = [
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
        ("scope", "openid profile email"),
    ];
    // The page shows the exchange; the password itself is never kept in the run.
    let sent = ctx
        .http
        .post_form_hiding("/token", ctx.auth(&kept), &form, &["password"])
        .await;
    let (mut step, answer) = exchange(
        "The app sends the password to the token endpoint",
        Party::Client,
        Party::AuthorizationServer,
        "The client authenticates itself and passes the user's credentials on. The server checks the password as its login page would (the same lockouts apply) and answers with tokens.",
        sent,
    );
    step = step.spec(
        "RFC 6749 section 4.3.2",
        &format!("{RFC6749}#section-4.3.2"),
    );
    keep_tokens(run, &mut step, &answer);
    run.push(step);
    offer_follow_ups(run);
}

/// Take a follow-up step the learner asked for. `fields` is the posted form (the password
/// grant's username and password).
/// False when the action was not offered (nothing is done then).
pub async fn act(ctx: &Ctx<'_>, run: &mut Run, action: &str, fields: &[(&str, &str)]) -> bool {
    let offered = run
        .next
        .iter()
        .any(|a| matches!(a, Action::Do { action: a, .. } if a == action));
    if !offered || run.finished {
        return false;
    }
    let kept = run.kept.clone();
    match action {
        "poll" => device_poll(ctx, run).await,
        "password" => {
            let get = |n: &str| fields.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
            password_grant(
                ctx,
                run,
                get("username").unwrap_or_default(),
                get("password").unwrap_or_default(),
            )
            .await;
        }
        "userinfo" => {
            let token = kept.access_token.clone().unwrap_or_default();
            let sent = ctx.http.get("/userinfo", Some(Auth::Bearer(&token))).await;
            let (step, _) = exchange(
                "The client calls UserInfo with the access token",
                Party::Client,
                Party::ResourceServer,
                "The access token is a bearer token: whoever holds it may use it, so it goes only over TLS and in the Authorization header. UserInfo answers with the claims the granted scopes allow.",
                sent,
            );
            run.push(step.spec("OIDC Core section 5.3", &format!("{OIDC}#UserInfo")));
            offer_follow_ups(run);
        }
        "bad-token-userinfo" => {
            // One character in the middle of the signature changed: the token no longer
            // verifies (the last character could differ only in bits base64 drops).
            let token = altered(&kept.access_token.clone().unwrap_or_default());
            let sent = ctx.http.get("/userinfo", Some(Auth::Bearer(&token))).await;
            let (step, _) = exchange(
                "Break it: UserInfo with an altered access token",
                Party::Client,
                Party::ResourceServer,
                "A resource server checks the token's signature before anything else. An altered, expired or revoked token is invalid_token with status 401, and the WWW-Authenticate header names the error, so the client knows to get a new token.",
                sent,
            );
            run.push(step.spec(
                "RFC 6750 section 3.1",
                "https://www.rfc-editor.org/rfc/rfc6750#section-3.1",
            ));
            offer_follow_ups(run);
        }
        "refresh" => refresh(ctx, run).await,
        "reuse-refresh" => reuse_refresh(ctx, run).await,
        "introspection" => {
            let token = kept.access_token.clone().unwrap_or_default();
            let sent = ctx
                .http
                .post_form("/introspect", ctx.auth(&kept), &[("token", &token)])
                .await;
            let (step, _) = exchange(
                "The client asks the server about its access token",
                Party::Client,
                Party::AuthorizationServer,
                "Introspection tells an authenticated caller whether a token is active, and for whom and what. A resource server uses it for tokens it cannot check itself, and it sees revocation at once.",
                sent,
            );
            run.push(step.spec("RFC 7662 section 2.1", &format!("{RFC7662}#section-2.1")));
            offer_follow_ups(run);
        }
        "revocation" => {
            let token = kept.refresh_token.clone().unwrap_or_default();
            let sent = ctx
                .http
                .post_form(
                    "/revoke",
                    ctx.auth(&kept),
                    &[("token", &token), ("token_type_hint", "refresh_token")],
                )
                .await;
            let (step, answer) = exchange(
                "The client revokes its refresh token",
                Party::Client,
                Party::AuthorizationServer,
                "When a user signs out of an app, the app should revoke what it holds. The server answers 200 whether or not the token was valid, so the answer tells an attacker nothing.",
                sent,
            );
            run.push(step.spec("RFC 7009 section 2.1", &format!("{RFC7009}#section-2.1")));
            if answer.ok() {
                run.kept.refresh_token = None;
            }
            offer_follow_ups(run);
        }
        "logout" => logout_request(ctx, run),
        _ => return false,
    }
    true
}

async fn refresh(ctx: &Ctx<'_>, run: &mut Run) {
    let kept = run.kept.clone();
    let old = kept.refresh_token.clone().unwrap_or_default();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old.as_str()),
    ];
    let sent = ctx.http.post_form("/token", ctx.auth(&kept), &form).await;
    let (mut step, answer) = exchange(
        "The client refreshes its tokens",
        Party::Client,
        Party::AuthorizationServer,
        "An access token lives minutes; the refresh token gets new ones without the user. This server rotates refresh tokens: every use returns a new one, and the old one stops working.",
        sent,
    );
    step = step.spec("RFC 6749 section 6", &format!("{RFC6749}#section-6"));
    keep_tokens(run, &mut step, &answer);
    if answer.ok() {
        run.kept.previous_refresh_token = Some(old);
    }
    run.push(step);
    offer_follow_ups(run);
}

/// Break it: the refresh token a refresh replaced, used again.
async fn reuse_refresh(ctx: &Ctx<'_>, run: &mut Run) {
    let kept = run.kept.clone();
    let old = kept.previous_refresh_token.clone().unwrap_or_default();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old.as_str()),
    ];
    let sent = ctx.http.post_form("/token", ctx.auth(&kept), &form).await;
    let (mut step, answer) = exchange(
        "Break it: the old refresh token is used again",
        Party::Client,
        Party::AuthorizationServer,
        "A rotated refresh token used again means two parties hold it, and one of them is a thief. The server refuses with invalid_grant and revokes the whole family, the new refresh token included. (Within a few seconds of the refresh the server takes it for a client retrying after a lost answer, and returns the same new tokens instead: try again a little later to see the refusal.)",
        sent,
    );
    step = step.spec(
        "RFC 9700 section 4.14.2",
        &format!("{RFC9700}#section-4.14.2"),
    );
    let refused = !answer.ok();
    run.push(step);
    if refused {
        run.kept.previous_refresh_token = None;
        // The new token went with the family; trying it shows that.
        let new = kept.refresh_token.clone().unwrap_or_default();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", new.as_str()),
        ];
        let sent = ctx.http.post_form("/token", ctx.auth(&kept), &form).await;
        let (after, _) = exchange(
            "The new refresh token no longer works either",
            Party::Client,
            Party::AuthorizationServer,
            "Revoking the family protects the user whichever of the two holders was the thief: the real app must send the user through sign-in again.",
            sent,
        );
        run.push(after);
        run.kept.refresh_token = None;
    }
    offer_follow_ups(run);
}

fn logout_request(ctx: &Ctx<'_>, run: &mut Run) {
    let Ok(mut url) = url::Url::parse(&format!("{}/logout", ctx.issuer)) else {
        return;
    };
    let state = new_token();
    url.query_pairs_mut()
        .append_pair(
            "id_token_hint",
            run.kept.id_token.as_deref().unwrap_or_default(),
        )
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{}{}", ctx.issuer, super::SIGNED_OUT),
        )
        .append_pair("state", &state);
    let mut step = Step::new(
        "The client sends the browser to sign out",
        Party::Client,
        Party::UserAgent,
        "RP-initiated logout: the client sends the browser to the server's logout endpoint with the ID token it got as a hint (so the server knows who and which app, and need not ask) and where to come back to.",
    );
    step.redirect = true;
    step.params = vec![
        "id_token_hint".into(),
        "post_logout_redirect_uri".into(),
        "state".into(),
    ];
    step.request = Some(Message {
        start: format!("GET {}?{} HTTP/1.1", url.path(), url.query().unwrap_or("")),
        headers: Vec::new(),
        body: String::new(),
    });
    run.kept.state = Some(state);
    run.push(step.spec(
        "RP-Initiated Logout section 2",
        &format!("{LOGOUT}#RPLogout"),
    ));
    run.next = vec![Action::Open {
        url: url.to_string(),
        label: "Sign out".into(),
        new_tab: false,
    }];
}

/// The browser came back from logout.
/// False when no logout of this run was waiting for this answer (nothing is recorded then).
pub fn signed_out(run: &mut Run, fields: &[(String, String)]) -> bool {
    let state = fields.iter().find(|(k, _)| k == "state").map(|(_, v)| v);
    let pending = run
        .next
        .iter()
        .any(|a| matches!(a, Action::Open { url, .. } if url.contains("/logout?")));
    if !pending || state.is_none() || state != run.kept.state.as_ref() {
        return false;
    }
    let mut step = Step::new(
        "The browser comes back to the client, signed out",
        Party::UserAgent,
        Party::Client,
        "The server ended the session (and told every app that asked for back-channel logout) and sent the browser to the registered post_logout_redirect_uri with the state the client sent.",
    );
    step.redirect = true;
    step.notes
        .push("state matches: this is the answer to the client's own logout request.".into());
    run.push(step.spec(
        "RP-Initiated Logout section 3",
        &format!("{LOGOUT}#RedirectionAfterLogout"),
    ));
    run.next.clear();
    run.finished = true;
    run.kept.state = None;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_altered_token_differs_in_its_signature_only() {
        let t = "aaa.bbb.CCCCCCCC";
        let a = altered(t);
        assert_eq!(&a[..8], "aaa.bbb.");
        assert_ne!(a, t);
        assert_eq!(a.len(), t.len());
    }

    #[test]
    fn the_s256_challenge_is_rfc_7636_appendix_b() {
        let (_, challenge) = s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn every_experiment_of_a_flow_is_explained() {
        for (flow, breaks) in FLOWS {
            assert!(super::super::learn::flow(flow).is_some(), "{flow}");
            for b in *breaks {
                assert!(super::super::learn::breakage(b).is_some(), "{flow}: {b}");
            }
        }
    }
}
