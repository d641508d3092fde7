//! Form and query parameters, parsed once with duplicate detection, in linear time and
//! within fixed bounds (`ParamLimits`).

use std::collections::HashSet;

use super::error::{OAuthError, OAuthResult, wire_safe};

/// How many parameters a request may carry, and how long each may be. A legitimate
/// request has a dozen or two parameters; the longest legitimate values are a `claims`
/// JSON object, an `id_token_hint` or a JWT access token, a few KiB at most. Without
/// these bounds a 64 KiB body holds ~11,000 parameters, all parsed, stored and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamLimits {
    /// Parameters per request, counting those with an empty value.
    pub max_params: usize,
    /// Bytes of one parameter's name or value, after percent-decoding.
    pub max_value_bytes: usize,
}

/// 100 parameters: four times what the largest OIDC authorization request uses.
pub const DEFAULT_MAX_PARAMS: usize = 100;
/// 8 KiB: twice a large `claims` object or an RS256 id_token_hint with rich claims; a
/// PKCE verifier is at most 128 bytes (RFC 7636 section 4.1), our refresh tokens 43.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 8 * 1024;

impl Default for ParamLimits {
    fn default() -> Self {
        Self {
            max_params: DEFAULT_MAX_PARAMS,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// Request parameters. RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be
/// included more than once", and parameters sent without a value are treated as omitted.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

/// RFC 6749 section 3.1: request parameters must not be included more than once.
pub fn repeated(name: &str) -> OAuthError {
    OAuthError::invalid_request(format!(
        "parameter `{}` is included more than once (RFC 6749 section 3.1)",
        wire_safe(name, 40)
    ))
}

impl Params {
    /// Parse `application/x-www-form-urlencoded` text (a body or a raw query string).
    /// Stops at the first parameter over `limits`, so the work is linear in the input.
    pub fn parse(raw: &[u8], limits: ParamLimits) -> OAuthResult<Self> {
        Self::from_pairs(url::form_urlencoded::parse(raw), limits)
    }

    /// Collect already-decoded pairs, with the same rules as `parse`.
    pub fn from_pairs<K, V, I>(it: I, limits: ParamLimits) -> OAuthResult<Self>
    where
        K: AsRef<str> + Into<String>,
        V: AsRef<str> + Into<String>,
        I: IntoIterator<Item = (K, V)>,
    {
        match Self::collect(it, limits)? {
            (params, None) => Ok(params),
            (_, Some(name)) => Err(repeated(&name)),
        }
    }

    /// `parse` for an authorization request, where a repeated parameter is an error for the
    /// client (RFC 6749 section 4.1.2.1) unless it is `client_id` or `redirect_uri`: the
    /// parameters with each name's first value, and the first name that was repeated.
    pub fn parse_authorization(
        raw: &[u8],
        limits: ParamLimits,
    ) -> OAuthResult<(Self, Option<String>)> {
        Self::collect(url::form_urlencoded::parse(raw), limits)
    }

    fn collect<K, V, I>(it: I, limits: ParamLimits) -> OAuthResult<(Self, Option<String>)>
    where
        K: AsRef<str> + Into<String>,
        V: AsRef<str> + Into<String>,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut first_repeated = None;
        for (i, (k, v)) in it.into_iter().enumerate() {
            if i >= limits.max_params {
                return Err(OAuthError::invalid_request(format!(
                    "the request has more than {} parameters",
                    limits.max_params
                )));
            }
            let (name, value) = (k.as_ref(), v.as_ref());
            if name.len() > limits.max_value_bytes || value.len() > limits.max_value_bytes {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{}` is longer than {} bytes",
                    wire_safe(name, 40),
                    limits.max_value_bytes
                )));
            }
            if value.is_empty() {
                continue;
            }
            if !seen.insert(name.to_owned()) {
                first_repeated.get_or_insert_with(|| name.to_owned());
                continue;
            }
            out.push((k.into(), v.into()));
        }
        Ok((Params(out), first_repeated))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::error::is_wire_safe;

    fn parse(raw: &[u8]) -> OAuthResult<Params> {
        Params::parse(raw, ParamLimits::default())
    }

    #[test]
    fn duplicates_are_refused_and_empty_values_omitted() {
        assert!(parse(b"a=1&a=2").is_err());
        let p = parse(b"a=1&b=&c=x+y").expect("valid");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        // An empty value is omitted, so it is no duplicate of a real one.
        assert!(parse(b"a=&a=1").is_ok());
    }

    #[test]
    fn counts_and_lengths_are_bounded() {
        let limits = ParamLimits {
            max_params: 3,
            max_value_bytes: 5,
        };
        assert!(Params::parse(b"a=1&b=2&c=3", limits).is_ok());
        // Empty values count: they cost parsing all the same.
        let e = Params::parse(b"a=1&b=&c=&d=", limits).expect_err("four");
        assert!(e.description.contains("more than 3 parameters"), "{e}");
        let e = Params::parse(b"a=123456", limits).expect_err("long value");
        assert!(e.description.contains("`a` is longer than 5 bytes"), "{e}");
        assert!(Params::parse(b"abcdef=1", limits).is_err(), "long name");
        // Percent-decoded length is what counts.
        assert!(Params::parse(b"a=%41%41%41%41%41", limits).is_ok());
    }

    #[test]
    fn descriptions_use_only_rfc_6749_characters() {
        for raw in [
            "a=1&a=2".to_owned(),
            "%C2%A7%22%5C%0A=1&%C2%A7%22%5C%0A=2".to_owned(),
            format!("{}=1", "\u{a7}".repeat(9000)),
            "x=1&".repeat(200),
        ] {
            let e = parse(raw.as_bytes()).expect_err("refused");
            assert!(is_wire_safe(&e.description), "{:?}", e.description);
        }
    }

    /// Not a timed assertion: prints what one maximal hostile body costs, for the record
    /// (`cargo test --lib hostile_body_cost -- --nocapture`).
    #[test]
    fn hostile_body_cost() {
        // 10,900 distinct three-letter names fill a 64 KiB body.
        let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
        let n = letters.len();
        let body: String = (0..10_900)
            .map(|i| {
                let name: String = [i / (n * n), i / n % n, i % n]
                    .iter()
                    .map(|&j| letters[j])
                    .collect();
                format!("{name}=1&")
            })
            .collect();
        assert!(body.len() <= 64 * 1024);
        let unbounded = ParamLimits {
            max_params: usize::MAX,
            max_value_bytes: usize::MAX,
        };
        let t = std::time::Instant::now();
        assert!(Params::parse(body.as_bytes(), unbounded).is_ok());
        let all = t.elapsed();
        let t = std::time::Instant::now();
        assert!(parse(body.as_bytes()).is_err());
        let capped = t.elapsed();
        println!(
            "{} bytes, 10,900 parameters: all parsed in {all:?}; refused at the cap in {capped:?}",
            body.len()
        );
    }
}
