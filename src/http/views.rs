//! askama pages. Every page extends `base.html`; askama escapes every value.

use crate::config::ScopeConfig;
use askama::Template;

use crate::state::AppState;

pub struct Theme {
    pub product_name: String,
    pub logo_url: Option<String>,
}

impl From<&AppState> for Theme {
    fn from(s: &AppState) -> Self {
        Theme {
            product_name: s.config.theme.product_name.clone(),
            logo_url: s.config.theme.logo_url.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub theme: Theme,
    pub client_name: &'a str,
    /// Where the form posts: /login for an authorization request, /device/login for a
    /// device being connected. `hidden` carries what that endpoint continues with.
    pub action: &'a str,
    /// Where "Sign in with a passkey" posts; None where passkeys are off.
    pub passkey_action: Option<&'a str>,
    pub hidden: &'a [(&'a str, &'a str)],
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct FactorPage<'a> {
    pub theme: Theme,
    pub action: &'a str,
    pub pending: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub csrf: &'a str,
    pub error: Option<String>,
    /// Whether the user has an authenticator app (else only a passkey and recovery codes).
    pub has_app: bool,
    /// The user's passkeys, asked for with this ceremony.
    pub passkey: Option<&'a crate::core::passkey::Started>,
}

/// A WebAuthn ceremony of its own: adding a passkey, or signing in with one.
#[derive(Template)]
#[template(path = "passkey.html")]
pub struct PasskeyPage<'a> {
    pub theme: Theme,
    pub title: &'a str,
    pub lead: &'a str,
    pub button: &'a str,
    pub action: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub csrf: &'a str,
    pub ceremony: &'a str,
    /// The options for the browser, as JSON (escaped into an attribute by the template).
    pub options: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeLine {
    pub name: String,
    pub text: String,
}

/// A scope in plain words: the standard table's, the config's (`[[scopes]]`), or a general
/// line for a scope nobody described.
fn describe_scope(custom: &[ScopeConfig], s: &str) -> String {
    if let Some(std) = crate::oauth::scope::standard(s) {
        return std.description.to_owned();
    }
    custom.iter().find(|c| c.name == s).map_or_else(
        || "Use this app-specific permission".to_owned(),
        |c| c.description.clone(),
    )
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub theme: Theme,
    pub client_name: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    pub interaction: &'a str,
    pub scopes: Vec<ScopeLine>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub theme: Theme,
    pub title: &'a str,
    pub message: &'a str,
    pub code: &'a str,
    pub description: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub theme: Theme,
    pub action: &'a str,
    pub fields: &'a [(String, String)],
    pub script: &'a str,
}

#[derive(Template)]
#[template(path = "demo_callback.html")]
pub struct DemoCallbackPage<'a> {
    pub theme: Theme,
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
    pub code_ttl: i64,
    pub curl: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub theme: Theme,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "device_entry.html")]
pub struct DeviceEntryPage<'a> {
    pub theme: Theme,
    pub csrf: &'a str,
    pub user_code: &'a str,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
pub struct DeviceConfirmPage<'a> {
    pub theme: Theme,
    pub client_name: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    /// As shown on the device: `BCDF-GHJK`.
    pub user_code: &'a str,
    pub scopes: Vec<ScopeLine>,
}

/// Plain-words lines for scopes, in the order given.
pub fn scope_lines<'a>(
    custom: &[ScopeConfig],
    scopes: impl IntoIterator<Item = &'a str>,
) -> Vec<ScopeLine> {
    scopes
        .into_iter()
        .map(|s| ScopeLine {
            name: s.to_owned(),
            text: describe_scope(custom, s),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub theme: Theme,
    /// The app that asked, when the request named one.
    pub client_name: Option<&'a str>,
    pub username: &'a str,
    pub csrf: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
}

/// A factor as the account page lists it.
pub struct FactorLine {
    pub id: String,
    pub name: String,
    /// "Authenticator app" or "Passkey", and for a passkey whether it signs in alone.
    pub kind: &'static str,
    pub passwordless: bool,
    pub added: String,
    pub last_used: Option<String>,
}

/// A live session as the account page lists it: by its public `sid`, never its store key.
pub struct SessionLine {
    pub sid: String,
    pub started: String,
    pub last_seen: String,
    /// When it gave the second factor; None for a session signed in with the password alone.
    pub second_factor: Option<String>,
    /// The address and user agent it signed in with; "unknown" for sessions from before
    /// they were recorded.
    pub ip: String,
    pub user_agent: String,
    /// This browser's own session.
    pub current: bool,
}

/// An app the user consented to, as the account page lists it.
pub struct AppLine {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<ScopeLine>,
    pub since: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub theme: Theme,
    pub username: &'a str,
    pub csrf: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<String>,
    pub factors: Vec<FactorLine>,
    /// Whether one of the factors is an authenticator app (changes ask for its code; with
    /// passkeys only, for a recent second factor).
    pub has_app: bool,
    /// Whether passkeys can be added here.
    pub passkeys: bool,
    /// Unused recovery codes.
    pub recovery_left: i64,
    /// This browser's session first, then the others, most recently seen first.
    pub sessions: Vec<SessionLine>,
    pub apps: Vec<AppLine>,
    /// False for an account the config file owns.
    pub password_changeable: bool,
    pub min_password_len: usize,
    /// The claims the config lets the person edit, with their values.
    pub profile: Vec<ProfileLine>,
}

/// One editable profile claim.
pub struct ProfileLine {
    pub claim: String,
    pub label: &'static str,
    pub value: String,
    /// The input type (`url` for the URL claims, `text` otherwise).
    pub input: &'static str,
}

impl ProfileLine {
    pub fn new(claim: String, value: String) -> Self {
        let (label, input) = match claim.as_str() {
            "name" => ("Full name", "text"),
            "given_name" => ("Given name", "text"),
            "family_name" => ("Family name", "text"),
            "middle_name" => ("Middle name", "text"),
            "nickname" => ("Nickname", "text"),
            "profile" => ("Profile page", "url"),
            "picture" => ("Picture (a link to an image)", "url"),
            "website" => ("Website", "url"),
            "gender" => ("Gender", "text"),
            "birthdate" => ("Birth date (YYYY-MM-DD, or just the year)", "text"),
            "zoneinfo" => ("Time zone (e.g. Europe/Paris)", "text"),
            "locale" => ("Language (e.g. en-GB)", "text"),
            _ => ("", "text"),
        };
        ProfileLine {
            claim,
            label,
            value,
            input,
        }
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    pub theme: Theme,
    pub codes: &'a [String],
    /// Where "I have saved them" goes: a link, or (during a sign-in) a form that continues
    /// the app's request.
    pub next: Next<'a>,
}

#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub struct TotpEnrolPage<'a> {
    pub theme: Theme,
    /// Where the confirming form posts, and what that endpoint continues with.
    pub action: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    /// Whether the person may decline (a sign-in that requires a second factor: declining
    /// fails the app's request).
    pub cancel: bool,
    pub csrf: &'a str,
    pub factor_id: &'a str,
    /// The `otpauth://` link as an SVG QR code in a `data:` URI.
    pub qr: &'a str,
    /// The secret in base32, for typing by hand.
    pub secret: &'a str,
    pub error: Option<String>,
}

/// Where a page's button goes next.
pub enum Next<'a> {
    Link(&'a str),
    /// Continue an authorization request: POST /login/continue with this CSRF value.
    Continue {
        csrf: &'a str,
        interaction: &'a str,
    },
}

/// A flow on the explorer's index: what it is, when to choose it, and its experiments
/// (slug, title).
pub struct FlowCard {
    pub slug: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    pub choose_when: &'static str,
    pub caution: Option<&'static str>,
    pub spec_label: &'static str,
    pub spec_url: &'static str,
    pub breaks: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "explore_index.html")]
pub struct ExploreIndexPage<'a> {
    pub theme: Theme,
    pub csrf: &'a str,
    pub flows: Vec<FlowCard>,
    /// Flows run as next steps of another (title, summary).
    pub follow_ups: Vec<(&'static str, &'static str)>,
    /// (slug, title).
    pub questions: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "explore_learn.html")]
pub struct ExploreLearnPage<'a> {
    pub theme: Theme,
    pub title: &'a str,
    pub paragraphs: &'a [&'a str],
    /// Flows to try: (slug, title).
    pub tries: Vec<(&'static str, &'static str)>,
    /// (label, url).
    pub specs: Vec<(&'static str, &'static str)>,
}

/// A request parameter explained.
pub struct ParamLine {
    pub name: &'static str,
    pub purpose: &'static str,
    pub protects: &'static str,
    pub spec_label: &'static str,
    pub spec_url: &'static str,
}

/// A token, decoded and checked.
pub struct TokenLine {
    pub label: String,
    pub raw: String,
    pub kind: &'static str,
    /// The three base64url parts.
    pub parts: Vec<String>,
    pub header: Vec<crate::explorer::jwt::ClaimLine>,
    pub claims: Vec<crate::explorer::jwt::ClaimLine>,
    pub signature: String,
    /// at_hash / c_hash recomputed, in words.
    pub hashes: Vec<String>,
    /// Not a JWT: why, in words.
    pub opaque: Option<String>,
}

/// One step of a run.
pub struct StepLine {
    pub n: usize,
    pub title: String,
    pub from: &'static str,
    pub to: &'static str,
    pub explain: String,
    pub spec: Option<(String, String)>,
    pub error: bool,
    pub params: Vec<ParamLine>,
    pub request: Option<crate::explorer::run::Message>,
    pub response: Option<crate::explorer::run::Message>,
    pub notes: Vec<String>,
    pub tokens: Vec<TokenLine>,
}

#[derive(Template)]
#[template(path = "explore_run.html")]
pub struct ExploreRunPage<'a> {
    pub theme: Theme,
    pub csrf: &'a str,
    pub title: &'a str,
    pub summary: &'a str,
    pub spec: Option<(&'static str, &'static str)>,
    /// The sequence diagram, SVG built with every text escaped (`explorer::diagram`).
    pub diagram: &'a str,
    pub steps: Vec<StepLine>,
    /// The experiments chosen: (title, the error to expect, why, spec label, spec url).
    pub breaks: Vec<(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )>,
    /// Links for the browser: (url, label, in a new tab).
    pub opens: Vec<(&'a str, &'a str, bool)>,
    /// Steps the explorer takes when asked: (action, label).
    pub dos: Vec<(&'a str, &'a str)>,
    /// The device flow's user code, shown big beside the verification link.
    pub user_code: Option<&'a str>,
    pub finished: bool,
}
