//! Browser session cookie and CSRF tokens.
//!
//! The session cookie holds 256 random bits; the store keeps only its SHA-256, so every node
//! can resolve it and a database leak reveals no usable cookie. On https issuers the cookies
//! get the `__Host-` prefix and `Secure`. CSRF uses a signed double-submit: a random cookie,
//! and a form field that is an HMAC-SHA256, under a key derived from the master key, of that
//! cookie bound to what the form acts on (`Bind`): the browser's session, the pending
//! interaction. Someone who plants a CSRF cookie of their choosing, and asks the server for
//! the matching form value, gets a value bound to their own session or interaction: useless
//! in the victim's browser (OWASP CSRF Prevention Cheat Sheet, "Signed Double-Submit
//! Cookie").

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::core::logout;
use crate::crypto::secret::{ct_eq, hash_token, new_token};
use crate::model::{Session, User};
use crate::oauth::error::OAuthResult;
use crate::state::AppState;

use super::client_ip::Browser;

fn name(state: &AppState, base: &str) -> String {
    if state.config.issuer_is_https() {
        format!("__Host-latchkey_{base}")
    } else {
        format!("latchkey_{base}")
    }
}

fn cookie(state: &AppState, base: &str, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(name(state, base), value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(state.config.issuer_is_https());
    c
}

/// The value of another cookie of this site's (`base` as for the session's).
pub fn site_cookie(state: &AppState, jar: &CookieJar, base: &str) -> Option<String> {
    jar.get(&name(state, base)).map(|c| c.value().to_owned())
}

/// Set another cookie of this site's, as the session's is set (HttpOnly, SameSite=Lax,
/// `__Host-` and Secure on https), for `max_age` seconds.
pub fn set_site_cookie(
    state: &AppState,
    jar: CookieJar,
    base: &str,
    value: String,
    max_age: i64,
) -> CookieJar {
    let mut c = cookie(state, base, value);
    c.set_max_age(time_duration(max_age));
    jar.add(c)
}

/// The live session and its user, if the cookie names one.
pub async fn current(state: &AppState, jar: &CookieJar) -> OAuthResult<Option<(Session, User)>> {
    let Some(c) = jar.get(&name(state, "session")) else {
        return Ok(None);
    };
    let now = state.now();
    match state
        .core
        .store
        .get_session(&hash_token(c.value()), now, state.config.sessions.idle_ttl)
        .await?
    {
        Some((s, u)) if !u.disabled => Ok(Some((s, u))),
        _ => Ok(None),
    }
}

/// How the person just signed in: when the first factor (the password) was checked, the
/// `amr` values of every factor (RFC 8176), and when the second factor was checked.
pub struct SignedIn {
    pub at: i64,
    pub amr: Vec<String>,
    pub mfa_at: Option<i64>,
}

impl SignedIn {
    /// A password alone, checked at `at`.
    pub fn password(at: i64) -> Self {
        SignedIn {
            at,
            amr: vec!["pwd".into()],
            mfa_at: None,
        }
    }
}

/// Start a session after a successful sign-in. Always a new id (no session fixation); an
/// earlier session in this browser is ended.
pub async fn start(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    how: SignedIn,
    browser: &Browser,
) -> OAuthResult<(CookieJar, Session)> {
    let now = state.now();
    if let Some(old) = id_hash(state, &jar) {
        logout::end_session(&state.core, &old, now).await?;
    }
    let id = new_token();
    let s = Session {
        id_hash: hash_token(&id),
        sid: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        auth_time: how.at,
        amr: how.amr,
        mfa_at: how.mfa_at,
        created_at: now,
        last_seen_at: now,
        expires_at: now + state.config.sessions.absolute_ttl,
        ip: Some(browser.ip.to_string()),
        user_agent: browser.user_agent.clone(),
    };
    state.core.store.insert_session(&s).await?;
    let mut c = cookie(state, "session", id);
    c.set_max_age(time_duration(state.config.sessions.absolute_ttl));
    Ok((jar.add(c), s))
}

/// Add a second factor to the browser's live session `s` in place (a step-up): the same
/// `sid` and `auth_time`, the new `amr`, and a new cookie. None when it ended meanwhile.
pub async fn elevate(
    state: &AppState,
    jar: CookieJar,
    s: &Session,
    amr: Vec<String>,
) -> OAuthResult<Option<(CookieJar, Session)>> {
    let now = state.now();
    let id = new_token();
    let id_hash = hash_token(&id);
    if !state
        .core
        .store
        .elevate_session(&s.id_hash, &id_hash, &amr, now)
        .await?
    {
        return Ok(None);
    }
    let mut c = cookie(state, "session", id);
    c.set_max_age(time_duration((s.expires_at - now).max(0)));
    let elevated = Session {
        id_hash,
        amr,
        mfa_at: Some(now),
        last_seen_at: now,
        ..s.clone()
    };
    Ok(Some((jar.add(c), elevated)))
}

/// The store's key for the browser's session cookie, if it sends one.
pub fn id_hash(state: &AppState, jar: &CookieJar) -> Option<String> {
    jar.get(&name(state, "session"))
        .map(|c| hash_token(c.value()))
}

/// The jar without the session cookie.
pub fn clear(state: &AppState, jar: CookieJar) -> CookieJar {
    jar.remove(cookie(state, "session", String::new()))
}

/// End the browser's session; returns the jar with the cookie removed.
pub async fn end(state: &AppState, jar: CookieJar) -> OAuthResult<CookieJar> {
    if let Some(id) = id_hash(state, &jar) {
        logout::end_session(&state.core, &id, state.now()).await?;
    }
    Ok(clear(state, jar))
}

fn time_duration(secs: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(secs)
}

/// What a form's CSRF value is bound to besides the CSRF cookie. Each handler checks with
/// the binding of the one form it accepts, so a form cannot pick a weaker one.
#[derive(Debug, Clone, Copy)]
pub enum Bind<'a> {
    /// Forms shown before anyone signs in (the device code entry and its login form).
    Nothing,
    /// The login form of an authorization request: its interaction, and not the session,
    /// so signing in from another tab meanwhile does not break it.
    Interaction(&'a str),
    /// Forms that act on the signed-in session (logout, device confirmation).
    Session,
    /// The consent form: the request it answers, for the session that answers it.
    SessionAndInteraction(&'a str),
    /// The second-factor form: the pending sign-in it finishes.
    Pending(&'a str),
}

/// HMAC(csrf key, csrf cookie, session cookie or "", interaction or ""), each part
/// length-prefixed so no two different triples hash alike.
fn form_token(
    state: &AppState,
    key: &[u8; 32],
    jar: &CookieJar,
    cookie_value: &str,
    bind: Bind<'_>,
) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key[..]) else {
        // Any key length is valid for HMAC; unreachable, and failing closed if not.
        return new_token();
    };
    let session = || {
        jar.get(&name(state, "session"))
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    };
    let pending;
    let (session, interaction) = match bind {
        Bind::Nothing => (String::new(), ""),
        Bind::Interaction(i) => (String::new(), i),
        Bind::Session => (session(), ""),
        Bind::SessionAndInteraction(i) => (session(), i),
        // Prefixed with what no interaction id contains (they are base64url), so a value
        // made for one kind of form never passes for the other.
        Bind::Pending(p) => {
            pending = format!("pending:{p}");
            (String::new(), pending.as_str())
        }
    };
    for part in [cookie_value, session.as_str(), interaction] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The CSRF form value for this browser and `bind`, setting the CSRF cookie when it has
/// none.
pub fn csrf(state: &AppState, jar: CookieJar, bind: Bind<'_>) -> (CookieJar, String) {
    let n = name(state, "csrf");
    let key = &state.csrf_keys[0];
    if let Some(c) = jar.get(&n) {
        let t = form_token(state, key, &jar, c.value(), bind);
        return (jar, t);
    }
    let v = new_token();
    let t = form_token(state, key, &jar, &v, bind);
    (jar.add(cookie(state, "csrf", v)), t)
}

/// Check a submitted CSRF value against the cookie and `bind`, in constant time.
pub fn csrf_ok(state: &AppState, jar: &CookieJar, bind: Bind<'_>, submitted: Option<&str>) -> bool {
    match (jar.get(&name(state, "csrf")), submitted) {
        // Every key is tried (a rotation has two), so the answer takes the same time whether
        // or not the first matched.
        (Some(c), Some(s)) => state.csrf_keys.iter().fold(false, |ok, key| {
            ct_eq(
                form_token(state, key, jar, c.value(), bind).as_bytes(),
                s.as_bytes(),
            ) | ok
        }),
        _ => false,
    }
}
