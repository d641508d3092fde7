//! /account: the signed-in person's own page: two-step sign-in (setting up an authenticator
//! app, removing it, recovery codes), their sessions, the apps they allowed, and their
//! password. Every form is bound to the session by its CSRF value, and every change is
//! audited (in `core::mfa` and `core::account`, or here).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::clock::utc;
use crate::config::MfaMode;
use crate::core::account::{self, EndOne, MIN_PASSWORD_LEN, PasswordRefusal, after_revocation};
use crate::core::audit::{AuditKind, audit};
use crate::core::login::LoginFailure;
use crate::core::mfa::{self, Enrolment, FactorFailure};
use crate::core::passkey::{self, PasskeyFailure};
use crate::crypto::totp::qr_data_uri;
use crate::model::{FactorKind, PendingPurpose, Session, Source, User};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::factors::Removal;

use super::client_ip::Browser;
use super::pages::{
    Continue, FactorForm, FactorStep, Login, LoginProblem, OrPage, PageError, SignIn, checked_form,
    factor_page, factor_step, login_page, parse_form, refused_code, sign_in,
};
use super::passkey::{self as http_passkey, Ceremony, PasskeySignIn, ceremony_page};
use super::respond::page;
use super::session::{self, Bind, SignedIn};
use super::views::{
    AccountPage, AppLine, FactorLine, Next, ProfileLine, RecoveryCodesPage, SessionLine, Theme,
    TotpEnrolPage, scope_lines,
};

const FACTOR_ACTION: &str = "/account/login/factor";
const PASSKEY_ACTION: &str = "/account/login/passkey";
const PASSKEY_FINISH: &str = "/account/login/passkey/finish";

fn factor_form(pending: &str) -> FactorForm<'_> {
    FactorForm {
        action: FACTOR_ACTION,
        pending,
        hidden: &[],
    }
}

/// How long after a second factor the account page's changes that need one (removing a
/// factor, new recovery codes) take it as given, for an account without an authenticator
/// app whose code could be typed in the form.
const RECENT_FACTOR_SECONDS: i64 = 5 * 60;

/// What a finished action tells the person, by the `notice` the redirect carries. Only these
/// words are ever shown: the query names one, it cannot supply text.
fn notice(name: &str) -> Option<&'static str> {
    Some(match name {
        "enrolled" => {
            "Two-step sign-in is on. From now on you will be asked for a code from your app after your password."
        }
        "removed" => "The second factor was removed.",
        "last-factor" => {
            "This server requires a second factor, so the last one cannot be removed. Add another first, then remove this one."
        }
        "passkey-added" => {
            "Your passkey was added. Use it after your password, or to sign in without one."
        }
        "expired" => "That setup expired before it was finished. Start again.",
        "has-app" => "You already have an authenticator app. Remove it first to set up another.",
        "renewed" => "Your new recovery codes are ready; the old ones no longer work.",
        "gone" => "That authenticator app was already removed.",
        "renamed" => "The name was saved.",
        "confirmed" => {
            "Your second step is confirmed. For the next five minutes, changing your second factors asks for nothing more: if you were making a change, make it again now."
        }
        "session-ended" => "That session was signed out.",
        "others-ended" => "Every other session was signed out.",
        "no-others" => "There were no other sessions to sign out.",
        "session-gone" => "That session had already ended.",
        "this-session" => {
            "That is this browser's session: use Sign out at the bottom of the page to end it."
        }
        "app-removed" => {
            "The app's access was removed. It will have to ask you again before it can sign you in."
        }
        "app-gone" => "That app had no access to remove.",
        "profile-saved" => "Your profile was saved. Apps see it the next time they sign you in.",
        "profile-same" => "Nothing was changed.",
        "password-changed" => {
            "Your password was changed. Every other browser and app signed in with your account was signed out."
        }
        _ => return None,
    })
}

fn back(to_notice: &str) -> Response {
    Redirect::to(&format!("/account?notice={to_notice}")).into_response()
}

/// GET /account: the account page, or the login form when nobody is signed in.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let shown = q
        .iter()
        .find(|(k, _)| k == "notice")
        .and_then(|(_, v)| notice(v));
    match session::current(&state, &jar).await.or_page(&state)? {
        Some((s, user)) if mfa::owes_factor(&state.core, &s, &user) => {
            // A session from before the app was set up: the code first, as at any sign-in.
            let token = mfa::begin_step_up(
                &state.core,
                &user,
                &s,
                PendingPurpose::Account,
                None,
                state.now(),
            )
            .await
            .or_page(&state)?;
            factor_page(&state, jar, &user, factor_form(&token), None).await
        }
        Some((s, user)) => account_page(&state, jar, &s, &user, shown, None).await,
        None => Ok(account_login(&state, jar, None)),
    }
}

fn account_login(state: &AppState, jar: CookieJar, problem: Option<LoginProblem>) -> Response {
    let (jar, csrf) = session::csrf(state, jar, Bind::Nothing);
    let login = Login {
        client_name: "your account",
        action: "/account/login",
        passkey_action: passkey::available(&state.core).map(|_| PASSKEY_ACTION),
        hidden: &[],
        csrf: &csrf,
        username: String::new(),
    };
    (jar, login_page(state, login, problem)).into_response()
}

async fn account_page(
    state: &AppState,
    jar: CookieJar,
    session: &Session,
    user: &User,
    notice: Option<&str>,
    problem: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let factors = mfa::factors(&state.core, &user.id).await.or_page(state)?;
    let has_app = factors.iter().any(|f| f.kind == FactorKind::Totp);
    let factors: Vec<FactorLine> = factors
        .into_iter()
        .map(|f| FactorLine {
            id: f.id,
            name: f.name,
            kind: match f.kind {
                FactorKind::Totp => "Authenticator app",
                FactorKind::Passkey => "Passkey",
            },
            passwordless: f.kind == FactorKind::Passkey && f.discoverable,
            added: utc(f.confirmed_at),
            last_used: f.last_used_at.map(utc),
        })
        .collect();
    let recovery_left = mfa::recovery_codes_left(&state.core, &user.id)
        .await
        .or_page(state)?;
    let sessions = session_lines(state, session, user).await?;
    let apps = app_lines(state, user).await?;
    let (jar, csrf) = session::csrf(state, jar, Bind::Session);
    let (status, error) = match problem {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let body = page(
        status,
        &AccountPage {
            theme: Theme::from(state),
            username: &user.username,
            csrf: &csrf,
            notice,
            error,
            factors,
            has_app,
            passkeys: passkey::available(&state.core).is_some(),
            recovery_left,
            sessions,
            apps,
            password_changeable: user.source != Source::Config,
            min_password_len: MIN_PASSWORD_LEN,
            profile: account::editable_claims(&state.core, user)
                .into_iter()
                .map(|(claim, value)| ProfileLine::new(claim, value))
                .collect(),
        },
    );
    Ok((jar, body).into_response())
}

/// The user's live sessions, this browser's first.
async fn session_lines(
    state: &AppState,
    current: &Session,
    user: &User,
) -> Result<Vec<SessionLine>, PageError> {
    let unknown = || "unknown".to_owned();
    let mut lines: Vec<SessionLine> = state
        .core
        .store
        .live_sessions(&user.id, state.now(), state.config.sessions.idle_ttl)
        .await
        .or_page(state)?
        .into_iter()
        .map(|s| SessionLine {
            current: s.sid == current.sid,
            started: utc(s.created_at),
            last_seen: utc(s.last_seen_at),
            second_factor: s.mfa_at.map(utc),
            ip: s.ip.unwrap_or_else(unknown),
            user_agent: s
                .user_agent
                .filter(|a| !a.is_empty())
                .unwrap_or_else(unknown),
            sid: s.sid,
        })
        .collect();
    // Stable: the others keep the store's order, most recently seen first.
    lines.sort_by_key(|l| !l.current);
    Ok(lines)
}

/// The apps the user consented to, by name (the client id when the client is gone).
async fn app_lines(state: &AppState, user: &User) -> Result<Vec<AppLine>, PageError> {
    let name_of = |client_id: String| async move {
        Ok::<_, PageError>(
            match state.core.clients.get(&client_id).await.or_page(state)? {
                Some(client) => client.name().to_owned(),
                None => client_id,
            },
        )
    };
    let mut lines = Vec::new();
    for c in state.core.store.consents(&user.id).await.or_page(state)? {
        lines.push(AppLine {
            name: name_of(c.client_id.clone()).await?,
            scopes: scope_lines(&state.config.scopes, c.scopes.iter()),
            since: utc(c.updated_at),
            client_id: c.client_id,
        });
    }
    // Apps that hold access without a remembered consent (a first-party app that skips the
    // consent page, a device): listed too, or nothing here could take their access away.
    let held = state
        .core
        .store
        .clients_with_live_grants(&user.id, state.now())
        .await
        .or_page(state)?;
    for (client_id, since) in held {
        if lines.iter().any(|l| l.client_id == client_id) {
            continue;
        }
        lines.push(AppLine {
            name: name_of(client_id.clone()).await?,
            scopes: Vec::new(),
            since: utc(since),
            client_id,
        });
    }
    Ok(lines)
}

/// POST /account/login.
pub async fn login(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = checked_form(&state, &jar, &body, Bind::Nothing)?;
    match sign_in(&state, jar, &form, ACCOUNT, &browser)
        .await
        .or_page(&state)?
    {
        SignIn::Done(jar, _, _) => Ok((jar, Redirect::to("/account")).into_response()),
        SignIn::SecondFactor(jar, token, user) => {
            factor_page(&state, jar, &user, factor_form(&token), None).await
        }
        SignIn::Failed(jar, problem) => Ok(account_login(&state, jar, Some(problem))),
    }
}

/// POST /account/login/factor.
pub async fn login_factor(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = parse_form(&state, &body).map_err(|_| PageError::expired(&state))?;
    match factor_step(&state, jar, &form, ACCOUNT, FACTOR_ACTION, &[], &browser).await? {
        FactorStep::Done(jar, ..) => Ok((jar, Redirect::to("/account")).into_response()),
        // Asked for by a change on this page (`factor_again`): it can be made now.
        FactorStep::SteppedUp(jar, ..) => Ok((jar, back("confirmed")).into_response()),
        FactorStep::Again(page) => Ok(page),
    }
}

/// A form posted from the account page: its CSRF value checks out for this session, and
/// the session is live. `Err` is the page to answer with.
async fn signed_in_form(
    state: &AppState,
    jar: &CookieJar,
    body: &[u8],
) -> Result<Result<(Params, Session, User), Response>, PageError> {
    let form = checked_form(state, jar, body, Bind::Session)?;
    Ok(match session::current(state, jar).await.or_page(state)? {
        // The page asks for the code first (`show`).
        Some((s, u)) if mfa::owes_factor(&state.core, &s, &u) => {
            Err(Redirect::to("/account").into_response())
        }
        Some((s, u)) => Ok((form, s, u)),
        // Signed out meanwhile: the page shows the login form.
        None => Err(Redirect::to("/account").into_response()),
    })
}

/// The account page's own setup form.
const ACCOUNT_ENROL: EnrolForm<'static> = EnrolForm {
    action: "/account/totp/confirm",
    hidden: &[],
    cancel: false,
    bind: Bind::Session,
};

/// Where an authenticator-app setup form posts, what it carries, whether it can be declined,
/// and what its CSRF value is bound to.
pub(super) struct EnrolForm<'a> {
    pub action: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub cancel: bool,
    pub bind: Bind<'a>,
}

/// The setup page of an authenticator app: its QR code and key, and the confirming form.
pub(super) fn enrol_page(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    e: &Enrolment,
    form: &EnrolForm<'_>,
    problem: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let issuer = &state.config.theme.product_name;
    let uri = e.secret.otpauth_uri(issuer, &user.username);
    let qr = qr_data_uri(&uri).map_err(|e| PageError::new(state, OAuthError::internal(e)))?;
    let (jar, csrf) = session::csrf(state, jar, form.bind);
    let (status, error) = match problem {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let body = page(
        status,
        &TotpEnrolPage {
            theme: Theme::from(state),
            action: form.action,
            hidden: form.hidden,
            cancel: form.cancel,
            csrf: &csrf,
            factor_id: &e.factor_id,
            qr: &qr,
            secret: &e.secret.base32(),
            error,
        },
    );
    Ok((jar, body).into_response())
}

/// POST /account/totp: start setting up an authenticator app.
pub async fn start_totp(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    // A stolen session cookie alone must not be able to set up an app of the thief's, which
    // would then lock the owner out of their own account.
    if let Err(page) = proof_to_add(&state, jar.clone(), &s, &user, &form, &browser).await? {
        return Ok(page);
    }
    let now = state.now();
    match mfa::start_totp(&state.core, &user, now)
        .await
        .or_page(&state)?
    {
        Some(e) => enrol_page(&state, jar, &user, &e, &ACCOUNT_ENROL, None),
        None => Ok(back("has-app")),
    }
}

/// What adding a second factor asks: the password again (the form's `password`), and, for
/// an account that has a factor already, that factor again (`factor_again`): else a stolen
/// cookie and a known password would add the thief's factor and then, with it, remove the
/// owner's. `Err` is the page to answer with.
async fn proof_to_add(
    state: &AppState,
    jar: CookieJar,
    s: &Session,
    user: &User,
    form: &Params,
    browser: &Browser,
) -> Result<Result<(), Response>, PageError> {
    if let Err(page) = password_again(state, jar.clone(), s, user, form, browser).await? {
        return Ok(Err(page));
    }
    if user.has_factor {
        return factor_again(state, jar, s, user, form, browser).await;
    }
    Ok(Ok(()))
}

/// The account's password typed again (the form's `password`), before a factor is added.
/// `Err` is the account page saying why it was refused.
async fn password_again(
    state: &AppState,
    jar: CookieJar,
    s: &Session,
    user: &User,
    form: &Params,
    browser: &Browser,
) -> Result<Result<(), Response>, PageError> {
    let now = state.now();
    let password = form.get("password").unwrap_or_default();
    let Err(failed) = account::confirm_password(&state.core, user, password, browser.ip, now)
        .await
        .or_page(state)?
    else {
        return Ok(Ok(()));
    };
    let status = match failed {
        LoginFailure::Busy => StatusCode::SERVICE_UNAVAILABLE,
        LoginFailure::InFlight | LoginFailure::Waiting { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNAUTHORIZED,
    };
    let message = match failed {
        LoginFailure::Invalid => "That is not your password.".to_owned(),
        other => other.page_message(now),
    };
    let page = account_page(state, jar, s, user, None, Some((status, message))).await?;
    Ok(Err(page))
}

/// POST /account/passkey: start adding a passkey, named by the form, after the password.
pub async fn start_passkey(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let typed = form.get("name").unwrap_or_default();
    let name = if typed.trim().is_empty() {
        passkey::DEFAULT_NAME
    } else {
        typed
    };
    let Some(name) = mfa::valid_name(name) else {
        let problem = Some((StatusCode::BAD_REQUEST, name_rule()));
        return account_page(&state, jar, &s, &user, None, problem).await;
    };
    // As for an authenticator app: a stolen session cookie must not add the thief's passkey,
    // which would sign in without the password.
    if let Err(page) = proof_to_add(&state, jar.clone(), &s, &user, &form, &browser).await? {
        return Ok(page);
    }
    let started = match passkey::start_registration(&state.core, &user, &s, name, state.now())
        .await
        .or_page(&state)?
    {
        Ok(started) => started,
        Err(f) => {
            let problem = Some((StatusCode::NOT_FOUND, f.page_message().to_owned()));
            return account_page(&state, jar, &s, &user, None, problem).await;
        }
    };
    Ok(ceremony_page(
        &state,
        jar,
        &REGISTER_PASSKEY,
        &started,
        StatusCode::OK,
        None,
    ))
}

const REGISTER_PASSKEY: Ceremony<'static> = Ceremony {
    title: "Add a passkey",
    lead: "Your browser will ask where to keep the passkey: this device, your phone, or a security key. After that you can sign in with it instead of typing a code, or without your password at all.",
    button: "Create the passkey",
    action: "/account/passkey/finish",
    hidden: &[],
    bind: Bind::Session,
};

/// POST /account/passkey/finish: the browser's new credential.
pub async fn finish_passkey(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let now = state.now();
    let registered = passkey::finish_registration(
        &state.core,
        &user,
        &s,
        form.get("ceremony").unwrap_or_default(),
        form.get("credential").unwrap_or_default(),
        browser.at(None),
        now,
    )
    .await
    .or_page(&state)?;
    let added = match registered {
        Ok(added) => added,
        Err(PasskeyFailure::Gone) => return Ok(back("expired")),
        Err(f) => {
            let problem = Some((StatusCode::BAD_REQUEST, f.page_message().to_owned()));
            return account_page(&state, jar, &s, &user, None, problem).await;
        }
    };
    if !added.first {
        // The session gave the account's factor before adding this one: nothing changes.
        return Ok(back("passkey-added"));
    }
    // Just used with user verification.
    first_factor_added(&state, jar, &s, &user, mfa::Used::Passkey, "passkey-added").await
}

/// The account's first second factor was just added, and this browser proved it holds it:
/// its session counts as two-factor from now on (in place, under a new cookie), while every
/// other session of the user gives a factor at its next sign-in (`mfa::shortfall`); and the
/// recovery codes, shown once, for when the factor is lost. `notice` is where the page of
/// codes leads back to.
async fn first_factor_added(
    state: &AppState,
    jar: CookieJar,
    s: &Session,
    user: &User,
    used: mfa::Used,
    notice: &str,
) -> Result<Response, PageError> {
    let Some((jar, _)) = session::elevate(state, jar, s, used.added_to(&s.amr))
        .await
        .or_page(state)?
    else {
        return Ok(Redirect::to("/account").into_response());
    };
    let codes = mfa::new_recovery_codes(&state.core, user, state.now())
        .await
        .or_page(state)?;
    let next = format!("/account?notice={notice}");
    Ok((jar, codes_page(state, &codes, Next::Link(&next))).into_response())
}

/// POST /account/login/passkey: "Sign in with a passkey" on the account page's login form.
pub async fn login_passkey(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    checked_form(&state, &jar, &body, Bind::Nothing)?;
    http_passkey::sign_in_page(&state, jar, ACCOUNT, PASSKEY_FINISH, &[], Bind::Nothing).await
}

const ACCOUNT: Continue<'static> = Continue {
    purpose: PendingPurpose::Account,
    interaction: None,
    client_id: None,
};

/// POST /account/login/passkey/finish: the browser's answer.
pub async fn login_passkey_finish(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form = checked_form(&state, &jar, &body, Bind::Nothing)?;
    match http_passkey::finish_sign_in(&state, jar, &form, ACCOUNT, &browser).await? {
        PasskeySignIn::Done(jar, ..) => Ok((jar, Redirect::to("/account")).into_response()),
        PasskeySignIn::Failed(jar, problem) => Ok(account_login(&state, jar, Some(problem))),
    }
}

fn name_rule() -> String {
    format!(
        "A name is one line of 1 to {} characters.",
        mfa::MAX_FACTOR_NAME
    )
}

/// POST /account/totp/confirm: the first code from the app turns it on.
pub async fn confirm_totp(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let factor = form.get("factor").unwrap_or_default();
    let code = form.get("code").unwrap_or_default();
    let now = state.now();
    match mfa::confirm_totp(&state.core, &user, factor, code, browser.at(None), now)
        .await
        .or_page(&state)?
    {
        Ok(()) if user.has_factor => {
            // The session gave the account's other factor before this was added: the
            // recovery codes it has stay.
            Ok(back("enrolled"))
        }
        Ok(()) => first_factor_added(&state, jar, &s, &user, mfa::Used::App, "enrolled").await,
        Err(FactorFailure::Gone) => Ok(back("expired")),
        Err(failed) => {
            let Some(e) = mfa::enrolment(&state.core, &user, factor, now)
                .await
                .or_page(&state)?
            else {
                return Ok(back("expired"));
            };
            let problem = Some(refused_code(failed, StatusCode::BAD_REQUEST, now));
            enrol_page(&state, jar, &user, &e, &ACCOUNT_ENROL, problem)
        }
    }
}

/// POST /account/factor/remove: turn two-step sign-in off. A current code from the app is
/// asked for, so a stolen session cookie alone cannot take the second factor away.
pub async fn remove_factor(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let factor = form.get("factor").unwrap_or_default();
    let now = state.now();
    let ip = Some(browser.ip);
    if let Err(page) = factor_again(&state, jar.clone(), &s, &user, &form, &browser).await? {
        return Ok(page);
    }
    // Where the server requires a second factor, the last one stays: setting a new one up
    // first, then removing the old, keeps the account usable.
    let keep_one = state.config.mfa.mode == MfaMode::Required;
    match state
        .core
        .store
        .remove_factor(&user.id, factor, keep_one)
        .await
        .or_page(&state)?
    {
        Removal::Removed => {}
        Removal::Gone => return Ok(back("gone")),
        Removal::LastOne => return Ok(back("last-factor")),
    }
    audit(
        &state.core,
        AuditKind::MfaRemoved,
        Some(&user.id),
        None,
        ip,
        now,
    )
    .await;
    Ok(back("removed"))
}

/// The second factor given again on the account page, for a change that a stolen session
/// cookie alone must not be able to make: a code from the app (or a recovery code) typed in
/// the form; or, with the code left empty (an account with passkeys), the second factor
/// this session gave in the last few minutes, else the second-factor page (passkey, app
/// code or recovery code) first, after which the person comes back to make the change.
/// `Err` is the page to answer with.
async fn factor_again(
    state: &AppState,
    jar: CookieJar,
    s: &Session,
    user: &User,
    form: &Params,
    browser: &Browser,
) -> Result<Result<(), Response>, PageError> {
    let now = state.now();
    let code = form.get("code").unwrap_or_default();
    if code.is_empty() {
        if s.mfa_at.is_some_and(|at| now - at <= RECENT_FACTOR_SECONDS) {
            return Ok(Ok(()));
        }
        let token = mfa::begin_step_up(&state.core, user, s, PendingPurpose::Account, None, now)
            .await
            .or_page(state)?;
        let page = factor_page(state, jar, user, factor_form(&token), None).await?;
        return Ok(Err(page));
    }
    match mfa::check_code(&state.core, user, code, browser.at(None), now)
        .await
        .or_page(state)?
    {
        Ok(_) => Ok(Ok(())),
        Err(FactorFailure::Gone) => Ok(Err(back("gone"))),
        Err(failed) => {
            let problem = Some(refused_code(failed, StatusCode::BAD_REQUEST, now));
            Ok(Err(account_page(state, jar, s, user, None, problem).await?))
        }
    }
}

/// The recovery codes, shown this once; `next` is where the person goes after.
pub(super) fn codes_page(state: &AppState, codes: &[String], next: Next<'_>) -> Response {
    page(
        StatusCode::OK,
        &RecoveryCodesPage {
            theme: Theme::from(state),
            codes,
            next,
        },
    )
}

/// POST /account/recovery-codes: a new set of recovery codes, after a current code.
pub async fn renew_recovery_codes(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    if let Err(page) = factor_again(&state, jar.clone(), &s, &user, &form, &browser).await? {
        return Ok(page);
    }
    let now = state.now();
    let codes = mfa::new_recovery_codes(&state.core, &user, now)
        .await
        .or_page(&state)?;
    audit(
        &state.core,
        AuditKind::RecoveryCodesRenewed,
        Some(&user.id),
        None,
        Some(browser.ip),
        now,
    )
    .await;
    Ok((
        jar,
        codes_page(&state, &codes, Next::Link("/account?notice=renewed")),
    )
        .into_response())
}

/// POST /account/sessions/end: sign out one other session, named by its `sid`.
pub async fn end_session(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let sid = form.get("sid").unwrap_or_default();
    let ended = account::end_session(&state.core, &user, &s, sid, browser.ip, state.now())
        .await
        .or_page(&state)?;
    Ok(back(match ended {
        EndOne::Ended => "session-ended",
        EndOne::ThisSession => "this-session",
        EndOne::Gone => "session-gone",
    }))
}

/// POST /account/sessions/end-others: sign out every session but this browser's.
pub async fn end_other_sessions(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (_, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let ended = account::end_other_sessions(&state.core, &user, &s, browser.ip, state.now())
        .await
        .or_page(&state)?;
    Ok(back(if ended > 0 {
        "others-ended"
    } else {
        "no-others"
    }))
}

/// POST /account/apps/remove: take an app's access away, named by its `client_id`.
pub async fn remove_app(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, _, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let client_id = form.get("client_id").unwrap_or_default();
    let removed = account::remove_app(&state.core, &user, client_id, browser.ip, state.now())
        .await
        .or_page(&state)?;
    Ok(back(if removed.consent || removed.grants > 0 {
        "app-removed"
    } else {
        "app-gone"
    }))
}

/// POST /account/password: change the password, after the current one. Every other
/// session and token ends with the old password; this browser gets a fresh session.
pub async fn change_password(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let field = |name| form.get(name).unwrap_or_default();
    let now = state.now();
    let checked = account::prepare_password(
        &state.core,
        &user,
        field("current_password"),
        field("new_password"),
        field("new_password_again"),
        browser.ip,
        now,
    )
    .await
    .or_page(&state)?;
    let new = match checked {
        Ok(new) => new,
        Err(refused) => {
            let problem = password_problem(&refused, now);
            let mut r = account_page(&state, jar, &s, &user, None, Some(problem)).await?;
            if matches!(refused, PasswordRefusal::Current(LoginFailure::Busy)) {
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    crate::crypto::password::BUSY_RETRY_SECONDS.into(),
                );
            }
            return Ok(r);
        }
    };
    // Taken after the hashing: a sign-in with the old password that began while it ran
    // authenticated at or before this moment, so the revocation ends it too.
    let revoked_at = account::set_password(&state.core, &user, new, browser.ip, state.now())
        .await
        .or_page(&state)?;
    // The revocation ended this browser's session with the rest. The person here just
    // proved the password, so they go on in a new session that authenticated after the
    // revocation (the rule is a strict `>`), with the factors of the session it replaces.
    let how = SignedIn {
        at: after_revocation(revoked_at),
        amr: s.amr.clone(),
        mfa_at: s.mfa_at,
    };
    let (jar, _) = session::start(&state, jar, &user, how, &browser)
        .await
        .or_page(&state)?;
    Ok((jar, back("password-changed")).into_response())
}

/// The account page's status and words for a refused password change.
fn password_problem(refused: &PasswordRefusal, now: i64) -> (StatusCode, String) {
    match refused {
        PasswordRefusal::ConfigUser => (
            StatusCode::FORBIDDEN,
            "Your password is set in the server's configuration file, so it cannot be changed here. Ask your administrator.".to_owned(),
        ),
        PasswordRefusal::Weak(weak) => (StatusCode::BAD_REQUEST, weak.page_message()),
        PasswordRefusal::Current(LoginFailure::Invalid | LoginFailure::Disabled) => (
            StatusCode::UNAUTHORIZED,
            "Your current password is not right.".to_owned(),
        ),
        PasswordRefusal::Current(LoginFailure::Busy) => (
            StatusCode::SERVICE_UNAVAILABLE,
            LoginFailure::Busy.page_message(now),
        ),
        PasswordRefusal::Current(failed) => (StatusCode::TOO_MANY_REQUESTS, failed.page_message(now)),
    }
}

/// POST /account/profile: the person's own profile claims, those the config makes editable.
pub async fn update_profile(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let value = |name: &str| form.get(name).map(str::to_owned);
    match account::update_profile(&state.core, &user, value, browser.ip, state.now())
        .await
        .or_page(&state)?
    {
        Ok(true) => Ok(back("profile-saved")),
        Ok(false) => Ok(back("profile-same")),
        Err(refused) => {
            let message = match refused {
                account::ProfileRefusal::ConfigUser => {
                    "This account is managed by the server's configuration: ask your administrator to change it.".to_owned()
                }
                account::ProfileRefusal::Invalid(claim, must) => {
                    format!("{}: must be {must}.", ProfileLine::new(claim.to_owned(), String::new()).label)
                }
            };
            account_page(
                &state,
                jar,
                &s,
                &user,
                None,
                Some((StatusCode::BAD_REQUEST, message)),
            )
            .await
        }
    }
}

/// POST /account/factor/rename: a name of the person's choosing for one of their factors.
pub async fn rename_factor(
    State(state): State<AppState>,
    browser: Browser,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (form, s, user) = match signed_in_form(&state, &jar, &body).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let factor = form.get("factor").unwrap_or_default();
    let name = form.get("name").unwrap_or_default();
    match mfa::rename(
        &state.core,
        &user,
        factor,
        name,
        browser.at(None),
        state.now(),
    )
    .await
    .or_page(&state)?
    {
        Ok(true) => Ok(back("renamed")),
        Ok(false) => Ok(back("gone")),
        Err(()) => {
            let problem = Some((StatusCode::BAD_REQUEST, name_rule()));
            account_page(&state, jar, &s, &user, None, problem).await
        }
    }
}
