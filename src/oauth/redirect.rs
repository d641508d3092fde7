//! Delivering an authorization response or error to the client's redirect URI by query,
//! fragment (RFC 6749 §4.1.2, §4.2.2) or form_post (OAuth 2.0 Form Post Response Mode §2).

use url::Url;

use super::error::OAuthError;
use super::types::ResponseMode;

/// A verified place to send the user back to.
#[derive(Debug, Clone)]
pub struct ReturnTo {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
    /// RFC 9207: our issuer, so the client can detect mix-up attacks.
    pub iss: String,
}

/// What to send: an HTTP redirect, or a self-submitting form.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Redirect(String),
    FormPost {
        action: String,
        fields: Vec<(String, String)>,
    },
}

impl ReturnTo {
    pub fn success(&self, mut params: Vec<(String, String)>) -> Delivery {
        self.finish(&mut params)
    }

    pub fn error(&self, e: &OAuthError) -> Delivery {
        let mut params = vec![
            ("error".to_owned(), e.code.as_str().to_owned()),
            ("error_description".to_owned(), e.description.to_string()),
        ];
        self.finish(&mut params)
    }

    fn finish(&self, params: &mut Vec<(String, String)>) -> Delivery {
        if let Some(s) = &self.state {
            params.push(("state".into(), s.clone()));
        }
        params.push(("iss".into(), self.iss.clone()));
        match self.mode {
            ResponseMode::FormPost => Delivery::FormPost {
                action: self.redirect_uri.clone(),
                fields: params.clone(),
            },
            ResponseMode::Query => {
                // The redirect URI was registered and matched exactly, so it parses; its own
                // query is kept (RFC 6749 §3.1.2).
                let mut url = match Url::parse(&self.redirect_uri) {
                    Ok(u) => u,
                    Err(_) => return Delivery::Redirect(self.redirect_uri.clone()),
                };
                url.query_pairs_mut().extend_pairs(params.iter());
                Delivery::Redirect(url.into())
            }
            ResponseMode::Fragment => {
                let frag: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter())
                    .finish();
                Delivery::Redirect(format!("{}#{frag}", self.redirect_uri))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;

    fn rt(mode: ResponseMode) -> ReturnTo {
        ReturnTo {
            redirect_uri: "https://app.example/cb?x=1".into(),
            mode,
            state: Some("s t".into()),
            iss: "https://as.example".into(),
        }
    }

    #[test]
    fn query_keeps_existing_query_and_adds_state_and_iss() {
        let d = rt(ResponseMode::Query).success(vec![("code".into(), "abc".into())]);
        assert_eq!(
            d,
            Delivery::Redirect(
                "https://app.example/cb?x=1&code=abc&state=s+t&iss=https%3A%2F%2Fas.example".into()
            )
        );
    }

    #[test]
    fn errors_go_in_the_fragment_for_fragment_mode() {
        let d = rt(ResponseMode::Fragment).error(&OAuthError::new(ErrorCode::AccessDenied, "no"));
        let Delivery::Redirect(u) = d else {
            unreachable!()
        };
        assert!(
            u.contains("#error=access_denied&error_description=no&state=s+t&iss="),
            "{u}"
        );
    }
}
