//! The `prompt` and `display` request parameters (OIDC Core section 3.1.2.1). Discovery lists
//! `ALL` of each, so the document names exactly what the parser accepts.

use serde::{Deserialize, Serialize};

/// What the client asks of the sign-in UI. Stored with a pending request by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Show no page at all: answer at once, with an error if a page would be needed.
    None,
    /// Sign in again, even with a live session.
    Login,
    /// Ask for consent again, even for scopes already allowed.
    Consent,
    /// Choose an account: with one account per browser session, a new sign-in.
    SelectAccount,
}

impl Prompt {
    pub const ALL: [Prompt; 4] = [
        Prompt::None,
        Prompt::Login,
        Prompt::Consent,
        Prompt::SelectAccount,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Prompt::None => "none",
            Prompt::Login => "login",
            Prompt::Consent => "consent",
            Prompt::SelectAccount => "select_account",
        }
    }

    pub fn parse(s: &str) -> Option<Prompt> {
        Prompt::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How the client would like the pages shown. Every value is accepted and means the same:
/// the pages are responsive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Page,
    Popup,
    Touch,
    Wap,
}

impl Display {
    pub const ALL: [Display; 4] = [Display::Page, Display::Popup, Display::Touch, Display::Wap];

    pub const fn as_str(self) -> &'static str {
        match self {
            Display::Page => "page",
            Display::Popup => "popup",
            Display::Touch => "touch",
            Display::Wap => "wap",
        }
    }

    pub fn parse(s: &str) -> Option<Display> {
        Display::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_serde_agrees() {
        for p in Prompt::ALL {
            assert_eq!(Prompt::parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap_or_default(),
                format!("\"{}\"", p.as_str())
            );
        }
        for d in Display::ALL {
            assert_eq!(Display::parse(d.as_str()), Some(d));
        }
        assert_eq!(Prompt::parse("Login"), None);
        assert_eq!(Display::parse("mobile"), None);
    }
}
