//! askama pages. Every page extends `base.html`; askama escapes every value.

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
    pub csrf: &'a str,
    pub interaction: &'a str,
    pub username: &'a str,
    pub error: Option<String>,
}

pub struct ScopeLine {
    pub name: String,
    pub text: &'static str,
}

/// Each scope in plain words.
pub fn describe_scope(s: &str) -> &'static str {
    match s {
        "openid" => "Know who you are (your account identifier)",
        "profile" => "See your name and basic profile",
        "email" => "Read your email address",
        "address" => "Read your postal address",
        "phone" => "Read your phone number",
        "offline_access" => "Stay signed in and act for you while you are away",
        _ => "Use this app-specific permission",
    }
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
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub theme: Theme,
    pub title: &'a str,
    pub message: &'a str,
}
