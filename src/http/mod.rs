//! Routes and layers. Handlers are thin: they translate HTTP to and from the protocol code.

pub mod account;
pub mod authorize;
pub mod client_ip;
pub mod demo;
pub mod device;
pub mod discovery;
pub mod explore;
pub mod extract;
pub mod health;
pub mod logout;
pub mod pages;
pub mod passkey;
pub mod respond;
pub mod session;
pub mod token;
pub mod userinfo;
pub mod views;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    // Browser-based apps (SPAs) call these cross-origin; the pages never need CORS.
    let api = Router::new()
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke))
        .route("/introspect", post(token::introspect))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::openid_configuration),
        )
        .route("/jwks.json", get(discovery::jwks))
        .route("/device/code", post(device::device_authorization))
        .layer(cors(&state));
    let mut pages = Router::new()
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/login", post(authorize::login))
        .route("/login/factor", post(authorize::login_factor))
        .route("/login/passkey", post(authorize::login_passkey))
        .route(
            "/login/passkey/finish",
            post(authorize::login_passkey_finish),
        )
        .route("/login/enrol", post(authorize::login_enrol))
        .route("/login/continue", post(authorize::login_continue))
        .route("/consent", post(authorize::consent))
        .route("/device", get(device::entry).post(device::submit))
        .route("/device/login", post(device::login))
        .route("/device/login/factor", post(device::login_factor))
        .route("/device/login/passkey", post(device::login_passkey))
        .route(
            "/device/login/passkey/finish",
            post(device::login_passkey_finish),
        )
        .route("/device/confirm", post(device::confirm))
        .route("/logout", get(logout::get).post(logout::post))
        .route("/account", get(account::show))
        .route("/account/login", post(account::login))
        .route("/account/login/factor", post(account::login_factor))
        .route("/account/login/passkey", post(account::login_passkey))
        .route(
            "/account/login/passkey/finish",
            post(account::login_passkey_finish),
        )
        .route("/account/passkey", post(account::start_passkey))
        .route("/account/passkey/finish", post(account::finish_passkey))
        .route("/account/totp", post(account::start_totp))
        .route("/account/totp/confirm", post(account::confirm_totp))
        .route("/account/factor/remove", post(account::remove_factor))
        .route("/account/factor/rename", post(account::rename_factor))
        .route("/account/profile", post(account::update_profile))
        .route(
            "/account/recovery-codes",
            post(account::renew_recovery_codes),
        )
        .route("/account/sessions/end", post(account::end_session))
        .route(
            "/account/sessions/end-others",
            post(account::end_other_sessions),
        )
        .route("/account/apps/remove", post(account::remove_app))
        .route("/account/password", post(account::change_password))
        .route("/logout/confirm", post(logout::confirm))
        .route("/theme.css", get(theme_css))
        .route("/static/latchkey.css", get(stylesheet))
        .route("/static/webauthn.js", get(webauthn_script));
    if state.config.explorer.enabled {
        pages = pages
            .route("/explore", get(explore::index))
            .route("/explore/learn/{slug}", get(explore::question))
            .route("/explore/start", post(explore::start))
            .route("/explore/run", get(explore::show))
            .route("/explore/act", post(explore::act))
            .route(
                "/explore/callback",
                get(explore::callback_get).post(explore::callback_post),
            )
            .route("/explore/signed-out", get(explore::signed_out));
    }
    if demo::enabled(&state.config) {
        pages = pages.route("/demo/callback", get(demo::callback));
    }
    let mut router = Router::new()
        .merge(api)
        .merge(pages)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if state.config.metrics_on_main_listener() {
        router = router.route("/metrics", get(health::metrics));
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_seconds),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Only the path: query strings carry codes and states, which never get logged.
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }).on_failure(|class: ServerErrorsFailureClass, latency: Duration, _: &tracing::Span| {
            match class {
                // Busy answers (a full hashing queue, a saturated pool) are load, not faults,
                // and a flood must not be able to fill the log with them; /metrics counts them.
                ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
                    tracing::debug!(latency_ms = latency.as_millis() as u64, "answered busy (503)");
                }
                other => {
                    tracing::error!(classification = %other, latency_ms = latency.as_millis() as u64, "request failed");
                }
            }
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

/// The `[metrics] bind` listener: `/metrics` and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.limits.request_timeout_seconds);
    Router::new()
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

/// Compiled in, so the binary needs no files beside it.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/latchkey.css"),
    )
        .into_response()
}

/// The passkey pages' one script (no inline script: the CSP allows this server's files).
async fn webauthn_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/webauthn.js"),
    )
        .into_response()
}

async fn not_found() -> Response {
    // No OAuth error code fits a path that is no endpoint (house rule 1: none is made up),
    // so this is a plain 404 that says where the endpoints are listed.
    (
        StatusCode::NOT_FOUND,
        "no such endpoint; the endpoints are listed at /.well-known/openid-configuration\n",
    )
        .into_response()
}

/// The accent colour as CSS, so pages need no inline style (strict CSP).
async fn theme_css(State(state): State<AppState>) -> Response {
    let accent: String = state
        .config
        .theme
        .accent_color
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '#')
        .collect();
    (
        [
            (header::CONTENT_TYPE, "text/css"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        format!(":root {{ --accent: {accent}; }}\n"),
    )
        .into_response()
}

/// CORS for the API endpoints: only origins of registered clients (their redirect URIs'
/// origins and `allowed_origins`), refreshed with the client list.
fn cors(state: &AppState) -> CorsLayer {
    let origins = state.cors_origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| origins.contains(o))
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// Headers every response carries, and the page CSP on HTML.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if is_html
        && !h.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(v) = HeaderValue::from_str(&respond::csp(respond::Scripts::None))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// Log the cause of an internal error once, here, inside the request's span (the trace
/// layer is outside this one) and with the status the client got. The cause travels in a
/// response extension (`respond::InternalCause`) and never in the body.
async fn log_internal_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if let Some(respond::InternalCause(cause)) = resp.extensions().get() {
        tracing::error!(status = resp.status().as_u16(), error = %cause, "internal error");
    }
    resp
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // MatchedPath shares its string: cloning it allocates nothing, unlike copying the path.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let start = Instant::now();
    let resp = next.run(req).await;
    state
        .core
        .metrics
        .latency
        .with_label_values(&[route])
        .observe(start.elapsed().as_secs_f64());
    state
        .core
        .metrics
        .requests
        .with_label_values(&[route, resp.status().as_str()])
        .inc();
    resp
}
