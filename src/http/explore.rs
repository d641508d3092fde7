//! /explore: the flow explorer's pages (served only with `[explorer] enabled`). The explorer
//! itself (`crate::explorer`) is a client of this server; this reads the learner's run from
//! the store by the browser's cookie, asks the explorer to take a step, and renders the run:
//! its sequence diagram, each exchange with its explanation, and every token decoded.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use std::sync::Arc;
use tokio::sync::SemaphorePermit;

use crate::crypto::secret::{hash_token, new_token};
use crate::explorer::Explorer;
use crate::explorer::diagram::{Arrow, sequence_svg};
use crate::explorer::flows::{self, FLOWS};
use crate::explorer::jwt::{self, HashCheck, SignatureCheck};
use crate::explorer::learn;
use crate::explorer::run::{Action, Message, Party, Run};
use crate::oauth::error::OAuthError;
use crate::oauth::params::{ParamLimits, Params};
use crate::state::AppState;

use super::pages::{OrPage, PageError, checked_form};
use super::respond::page;
use super::session::{self, Bind};
use super::views::{
    ExploreIndexPage, ExploreLearnPage, ExploreRunPage, FlowCard, ParamLine, StepLine, Theme,
    TokenLine,
};

/// The run cookie's name (beside the session's).
const COOKIE: &str = "explore";
/// How long a run lives.
const RUN_TTL: i64 = 60 * 60;

/// The largest run kept: far above what a flow's steps take (each body is cut at 16 KiB).
const MAX_RUN_BYTES: usize = 1024 * 1024;

/// The explorer of this node (its routes exist only when it is on).
fn explorer(state: &AppState) -> Result<Arc<Explorer>, PageError> {
    state.explorer.clone().ok_or_else(|| {
        PageError::new(
            state,
            OAuthError::invalid_request("the flow explorer is off"),
        )
        .status(StatusCode::NOT_FOUND)
    })
}

/// A slot for a request that calls this server: refused with 503 when all are taken, rather
/// than waiting while holding a connection.
fn slot<'a>(state: &AppState, ex: &'a Explorer) -> Result<SemaphorePermit<'a>, PageError> {
    ex.busy.try_acquire().map_err(|_| {
        PageError::new(
            state,
            OAuthError::busy("the flow explorer is busy; try again in a moment", 2),
        )
        .saying(
            "The explorer is busy",
            "Other flows are running right now. Try again in a moment.",
        )
    })
}

/// GET /explore: the flows, the experiments, the questions.
pub async fn index(State(state): State<AppState>, jar: CookieJar) -> Response {
    let (jar, csrf) = session::csrf(&state, jar, Bind::Nothing);
    let flows = FLOWS
        .iter()
        .filter_map(|(slug, breaks)| {
            let f = learn::flow(slug)?;
            Some(FlowCard {
                slug,
                title: f.title,
                summary: f.summary,
                choose_when: f.choose_when,
                caution: f.caution,
                spec_label: f.spec.label,
                spec_url: f.spec.url,
                breaks: breaks
                    .iter()
                    .filter_map(|b| learn::breakage(b).map(|k| (k.slug, k.title)))
                    .collect(),
            })
        })
        .collect();
    let follow_ups = learn::FLOWS
        .iter()
        .filter(|f| !FLOWS.iter().any(|(slug, _)| *slug == f.slug))
        .map(|f| (f.title, f.summary))
        .collect();
    let body = page(
        StatusCode::OK,
        &ExploreIndexPage {
            theme: Theme::from(&state),
            csrf: &csrf,
            flows,
            follow_ups,
            questions: learn::QUESTIONS.iter().map(|q| (q.slug, q.title)).collect(),
        },
    );
    (jar, body).into_response()
}

/// GET /explore/learn/{slug}: one of the learner's questions, answered.
pub async fn question(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let Some(q) = learn::question(&slug) else {
        return Err(PageError::new(
            &state,
            OAuthError::invalid_request("no such question: see /explore for the list"),
        )
        .status(StatusCode::NOT_FOUND));
    };
    let tries = q
        .try_flows
        .iter()
        .filter_map(|s| learn::flow(s).map(|f| (f.slug, f.title)))
        .collect();
    Ok(page(
        StatusCode::OK,
        &ExploreLearnPage {
            theme: Theme::from(&state),
            title: q.title,
            paragraphs: q.paragraphs,
            tries,
            specs: q.specs.iter().map(|s| (s.label, s.url)).collect(),
        },
    ))
}

/// This browser's run: its key and what is stored.
async fn current(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<(String, Run, i64)>, PageError> {
    let Some(token) = session::site_cookie(state, jar, COOKIE) else {
        return Ok(None);
    };
    let key = hash_token(&token);
    let Some(stored) = state
        .core
        .store
        .explorer_run(&key, state.now())
        .await
        .or_page(state)?
    else {
        return Ok(None);
    };
    let ex = explorer(state)?;
    // A run that does not open, or that this version cannot read, is as good as gone.
    let Ok((plain, _)) = ex
        .sealing
        .decrypt_bound_telling(&stored.data, key.as_bytes())
    else {
        return Ok(None);
    };
    match serde_json::from_slice::<Run>(&plain) {
        Ok(run) => Ok(Some((key, run, stored.version))),
        Err(_) => Ok(None),
    }
}

/// A run as stored: sealed, bound to its key.
fn sealed(state: &AppState, key: &str, run: &Run) -> Result<String, PageError> {
    let internal = |e: String| PageError::new(state, OAuthError::internal(e));
    let data = serde_json::to_string(run).map_err(|e| internal(e.to_string()))?;
    if data.len() > MAX_RUN_BYTES {
        return Err(internal(format!("an explorer run of {} bytes", data.len())));
    }
    explorer(state)?
        .sealing
        .encrypt_bound(data.as_bytes(), key.as_bytes())
        .map_err(|e| internal(e.to_string()))
}

async fn save(state: &AppState, key: &str, version: i64, run: &Run) -> Result<(), PageError> {
    let data = sealed(state, key, run)?;
    // Lost to another tab's write: that tab's step stands, this one is dropped.
    let _ = state
        .core
        .store
        .update_explorer_run(key, version, &data, state.now())
        .await
        .or_page(state)?;
    Ok(())
}

fn to_run() -> Response {
    Redirect::to("/explore/run").into_response()
}

/// POST /explore/start: a new run of the chosen flow, replacing this browser's last one.
pub async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = checked_form(&state, &jar, &body, Bind::Nothing)?;
    let flow = form.get("flow").unwrap_or_default();
    // One checkbox per experiment the flow offers (`break-<slug>`).
    let offered = FLOWS
        .iter()
        .find(|(f, _)| *f == flow)
        .map_or(&[][..], |(_, b)| *b);
    let breaks: Vec<String> = offered
        .iter()
        .filter(|b| form.get(&format!("break-{b}")).is_some())
        .map(|b| (*b).to_owned())
        .collect();
    let ex = explorer(&state)?;
    let _slot = slot(&state, &ex)?;
    let run = match flows::start(&ex.ctx(state.issuer()), flow, breaks).await {
        Ok(run) => run,
        Err(_) => {
            return Err(PageError::new(
                &state,
                OAuthError::invalid_request("the explorer has no such flow or experiment"),
            ));
        }
    };
    // The browser's last run goes (by its key: no need to read it first).
    if let Some(old) = session::site_cookie(&state, &jar, COOKIE) {
        state
            .core
            .store
            .delete_explorer_run(&hash_token(&old))
            .await
            .or_page(&state)?;
    }
    let token = new_token();
    let now = state.now();
    let key = hash_token(&token);
    let data = sealed(&state, &key, &run)?;
    state
        .core
        .store
        .insert_explorer_run(&key, &run.flow, &data, now, now + RUN_TTL)
        .await
        .or_page(&state)?;
    let jar = session::set_site_cookie(&state, jar, COOKIE, token, RUN_TTL);
    Ok((jar, to_run()).into_response())
}

/// POST /explore/act: the learner asks the explorer to take the next step.
pub async fn act(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = checked_form(&state, &jar, &body, Bind::Nothing)?;
    let Some((key, mut run, version)) = current(&state, &jar).await? else {
        return Ok(Redirect::to("/explore").into_response());
    };
    let ex = explorer(&state)?;
    let _slot = slot(&state, &ex)?;
    let fields: Vec<(&str, &str)> = ["username", "password"]
        .iter()
        .filter_map(|k| form.get(k).map(|v| (*k, v)))
        .collect();
    let action = form.get("action").unwrap_or_default();
    if flows::act(&ex.ctx(state.issuer()), &mut run, action, &fields).await {
        save(&state, &key, version, &run).await?;
    }
    Ok(to_run())
}

/// GET or POST /explore/callback: the browser brings the authorization server's answer back
/// (a redirect's query, or a form_post body).
pub async fn callback_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let fields = answer_fields(&state, q.unwrap_or_default().as_bytes())?;
    callback(&state, &jar, &fields, false).await
}

pub async fn callback_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let fields = answer_fields(&state, &body)?;
    callback(&state, &jar, &fields, true).await
}

/// The fields an authorization response may carry, brought back by the browser: within
/// limits far above what one carries, since anyone can send this page anything.
fn answer_fields(state: &AppState, raw: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    let limits = ParamLimits {
        max_params: 20,
        max_value_bytes: 8 * 1024,
    };
    let params = Params::parse(raw, limits).or_page(state)?;
    Ok(ANSWER_FIELDS
        .iter()
        .filter_map(|k| params.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
        .collect())
}

/// What an authorization response (RFC 6749 sections 4.1.2 and 4.2.2, OIDC Core 3.3.2.5)
/// or a logout's return carries.
const ANSWER_FIELDS: &[&str] = &[
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "id_token",
    "access_token",
    "token_type",
    "expires_in",
    "scope",
];

async fn callback(
    state: &AppState,
    jar: &CookieJar,
    fields: &[(String, String)],
    posted: bool,
) -> Result<Response, PageError> {
    let Some((key, mut run, version)) = current(state, jar).await? else {
        return Err(PageError::new(
            state,
            OAuthError::invalid_request("this browser has no explorer run waiting for an answer"),
        )
        .saying(
            "No flow is waiting here",
            "This page is where the explorer's flows come back to, in the browser that started them. Start a flow at /explore.",
        ));
    };
    let ex = explorer(state)?;
    let _slot = slot(state, &ex)?;
    // An answer this run did not ask for changes nothing; the learner sees their run.
    if flows::callback(&ex.ctx(state.issuer()), &mut run, fields, posted).await {
        save(state, &key, version, &run).await?;
    }
    Ok(to_run())
}

/// GET /explore/signed-out: back from RP-initiated logout.
pub async fn signed_out(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let Some((key, mut run, version)) = current(&state, &jar).await? else {
        return Ok(Redirect::to("/explore").into_response());
    };
    let fields = answer_fields(&state, q.unwrap_or_default().as_bytes())?;
    if flows::signed_out(&mut run, &fields) {
        save(&state, &key, version, &run).await?;
    }
    Ok(to_run())
}

/// GET /explore/run: this browser's run.
pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Result<Response, PageError> {
    let Some((_, run, _)) = current(&state, &jar).await? else {
        return Ok(Redirect::to("/explore").into_response());
    };
    let ex = explorer(&state)?;
    // The JWKS as any client fetches it, to check each token's signature here.
    let jwks = if run.steps.iter().any(|s| !s.tokens.is_empty()) {
        let _slot = slot(&state, &ex)?;
        ex.jwks(state.now()).await
    } else {
        serde_json::Value::Null
    };
    let flow = learn::flow(&run.flow);
    let arrows: Vec<Arrow> = run
        .steps
        .iter()
        .map(|s| Arrow {
            from: s.from.index(),
            to: s.to.index(),
            label: arrow_label(s.request.as_ref(), s.response.as_ref(), &s.title),
            error: s.error,
            redirect: s.redirect,
        })
        .collect();
    let names: Vec<&str> = Party::ALL.iter().map(|p| p.name()).collect();
    let title = flow.map_or(run.flow.as_str(), |f| f.title);
    let diagram = sequence_svg(title, &names, &arrows, arrows.len().checked_sub(1));
    let steps = run
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepLine {
            n: i + 1,
            title: s.title.clone(),
            from: s.from.name(),
            to: s.to.name(),
            explain: s.explain.clone(),
            spec: s.spec.clone(),
            error: s.error,
            params: s
                .params
                .iter()
                .filter_map(|p| learn::param(p))
                .map(|p| ParamLine {
                    name: p.name,
                    purpose: p.purpose,
                    protects: p.protects_against,
                    spec_label: p.spec.label,
                    spec_url: p.spec.url,
                })
                .collect(),
            request: s.request.clone(),
            response: s.response.clone(),
            notes: s.notes.clone(),
            tokens: s
                .tokens
                .iter()
                .map(|(label, t)| token_line(label, t, &jwks, &run))
                .collect(),
        })
        .collect();
    let (jar, csrf) = session::csrf(&state, jar, Bind::Nothing);
    let breaks = run
        .breaks
        .iter()
        .filter_map(|b| learn::breakage(b))
        .map(|b| (b.title, b.expect_error, b.why, b.spec.label, b.spec.url))
        .collect();
    let (opens, dos): (Vec<&Action>, Vec<&Action>) = run
        .next
        .iter()
        .partition(|a| matches!(a, Action::Open { .. }));
    let body = page(
        StatusCode::OK,
        &ExploreRunPage {
            theme: Theme::from(&state),
            csrf: &csrf,
            title,
            summary: flow.map_or("", |f| f.summary),
            spec: flow.map(|f| (f.spec.label, f.spec.url)),
            diagram: &diagram,
            steps,
            breaks,
            opens: opens
                .into_iter()
                .filter_map(|a| match a {
                    Action::Open {
                        url,
                        label,
                        new_tab,
                    } => Some((url.as_str(), label.as_str(), *new_tab)),
                    Action::Do { .. } => None,
                })
                .collect(),
            dos: dos
                .into_iter()
                .filter_map(|a| match a {
                    Action::Do { action, label } => Some((action.as_str(), label.as_str())),
                    Action::Open { .. } => None,
                })
                .collect(),
            user_code: run.kept.user_code.as_deref(),
            finished: run.finished,
        },
    );
    Ok((jar, body).into_response())
}

/// The arrow's words: the request line without its version, else the step's title.
fn arrow_label(request: Option<&Message>, response: Option<&Message>, title: &str) -> String {
    let Some(req) = request else {
        return title.to_owned();
    };
    let line = req.start.trim_end_matches(" HTTP/1.1");
    let path = line.split('?').next().unwrap_or(line);
    match response.and_then(|r| r.start.split_whitespace().nth(1)) {
        Some(status) => format!("{path} → {status}"),
        None => path.to_owned(),
    }
}

fn token_line(label: &str, token: &str, jwks: &serde_json::Value, run: &Run) -> TokenLine {
    let decoded = jwt::decode(
        token,
        jwks,
        run.kept.access_token.as_deref(),
        run.kept.code.as_deref(),
    );
    match decoded {
        Ok(d) => TokenLine {
            label: label.to_owned(),
            raw: token.to_owned(),
            kind: d.kind,
            parts: d.parts.to_vec(),
            header: d.header,
            claims: d.claims,
            signature: match d.signature {
                SignatureCheck::Valid { kid, alg } => {
                    format!("valid: signed with {alg} by the key {kid} of this server's JWKS")
                }
                SignatureCheck::Invalid(why) => format!("NOT valid: {why}"),
                SignatureCheck::NoKey(why) => format!("not checked: {why}"),
            },
            hashes: [("at_hash", d.at_hash), ("c_hash", d.c_hash)]
                .into_iter()
                .filter_map(|(name, h)| {
                    h.map(|h| match h {
                        HashCheck::Matches { value } => format!(
                            "{name} recomputed: {value}, the same as in the token: it was issued with this very token or code"
                        ),
                        HashCheck::Differs { claimed, computed } => format!(
                            "{name} differs: the token says {claimed}, recomputed {computed}"
                        ),
                    })
                })
                .collect(),
            opaque: None,
        },
        Err(why) => TokenLine {
            label: label.to_owned(),
            raw: token.to_owned(),
            kind: "opaque",
            parts: Vec::new(),
            header: Vec::new(),
            claims: Vec::new(),
            signature: String::new(),
            hashes: Vec::new(),
            opaque: Some(why),
        },
    }
}
