//! Form and query parameters, parsed once with duplicate detection.

use super::error::{OAuthError, OAuthResult};

/// Request parameters. RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be
/// included more than once", and parameters sent without a value are treated as omitted.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> OAuthResult<Self> {
        Self::from_pairs(
            url::form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// Collect already-decoded pairs (e.g. a query string), with the same rules as `parse`.
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(it: I) -> OAuthResult<Self> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in it {
            if v.is_empty() {
                continue;
            }
            if out.iter().any(|(x, _)| *x == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` is included more than once (RFC 6749 §3.1)"
                )));
            }
            out.push((k, v));
        }
        Ok(Params(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &str) -> OAuthResult<&str> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("the `{name}` parameter is required"))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_empty_values_omitted() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=1&b=&c=x+y").expect("valid");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
    }
}
