//! Authentication context classes: the `acr` claim (OIDC Core section 2) and how a request
//! asks for one, with `acr_values` (section 3.1.2.1, voluntary) or an essential `acr` in the
//! `claims` parameter (section 5.5.1.1, which must be met).
//!
//! OIDC leaves the values to the parties (section 2: "parties using this claim will need to
//! agree upon the meanings of the values used"). Latchkey has two, documented in the README:
//! one factor (a password), and two factors. A higher level satisfies a request for a lower
//! one. No value is ever "0" (section 2 says it must not be used for anything of value).

use serde_json::Value;

/// What a sign-in proved, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A password alone.
    Password,
    /// A password and a second factor (RFC 8176 `mfa`).
    MultiFactor,
}

impl Level {
    pub const ALL: [Level; 2] = [Level::Password, Level::MultiFactor];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Password => "urn:latchkey:acr:pwd",
            Level::MultiFactor => "urn:latchkey:acr:mfa",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The level a session's `amr` reached (RFC 8176 section 2: `mfa` means more than one
    /// factor).
    pub fn of_amr(amr: &[String]) -> Level {
        if amr.iter().any(|a| a == "mfa") {
            Level::MultiFactor
        } else {
            Level::Password
        }
    }
}

/// What a request asks of the authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Requested {
    /// Nothing, or only values this server does not know (voluntary ones are ignored).
    #[default]
    Nothing,
    /// `acr_values`: the first value this server knows, in the client's order of preference.
    Preferred(Level),
    /// An essential `acr` with `value` or `values`: the `acr` returned must be one of these
    /// known levels (OIDC Core section 5.5.1.1). Never empty.
    Essential(Vec<Level>),
    /// An essential `acr` naming only values this server does not know: it cannot be met.
    Unmeetable,
}

impl Requested {
    /// From the request's `acr_values` and `claims`; an essential `acr` takes precedence.
    pub fn of(acr_values: Option<&str>, claims: Option<&Value>) -> Requested {
        let essential = claims
            .and_then(|c| c.get("id_token"))
            .and_then(|t| t.get("acr"))
            .filter(|a| a.get("essential").and_then(Value::as_bool) == Some(true));
        if let Some(acr) = essential {
            let mut named: Vec<&str> = Vec::new();
            if let Some(v) = acr.get("value").and_then(Value::as_str) {
                named.push(v);
            }
            if let Some(vs) = acr.get("values").and_then(Value::as_array) {
                named.extend(vs.iter().filter_map(Value::as_str));
            }
            // Essential with no value asks only that `acr` be returned, which it always is.
            if !named.is_empty() {
                let mut known: Vec<Level> = named.into_iter().filter_map(Level::parse).collect();
                known.sort();
                known.dedup();
                return if known.is_empty() {
                    Requested::Unmeetable
                } else {
                    Requested::Essential(known)
                };
            }
        }
        acr_values
            .into_iter()
            .flat_map(str::split_whitespace)
            .find_map(Level::parse)
            .map_or(Requested::Nothing, Requested::Preferred)
    }

    /// The least level that satisfies the request, and whether it must be met.
    pub fn needs(&self) -> Option<(Level, bool)> {
        match self {
            Requested::Nothing | Requested::Unmeetable => None,
            Requested::Preferred(l) => Some((*l, false)),
            Requested::Essential(ls) => ls.first().map(|l| (*l, true)),
        }
    }

    /// The `acr` to claim for a sign-in that reached `reached`: with an essential request,
    /// the highest of its values the sign-in satisfies (a higher level satisfies a lower
    /// value, and the claim must be one of the values); otherwise what was reached.
    pub fn claim(&self, reached: Level) -> Level {
        match self {
            Requested::Essential(ls) => ls
                .iter()
                .copied()
                .filter(|l| *l <= reached)
                .max()
                .unwrap_or(reached),
            _ => reached,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PWD: &str = "urn:latchkey:acr:pwd";
    const MFA: &str = "urn:latchkey:acr:mfa";

    #[test]
    fn acr_values_take_the_first_known_value() {
        assert_eq!(Requested::of(None, None), Requested::Nothing);
        assert_eq!(
            Requested::of(Some(&format!("urn:other {MFA} {PWD}")), None),
            Requested::Preferred(Level::MultiFactor)
        );
        assert_eq!(Requested::of(Some("0 silver"), None), Requested::Nothing);
        assert_eq!(
            Requested::Preferred(Level::MultiFactor).needs(),
            Some((Level::MultiFactor, false))
        );
    }

    #[test]
    fn an_essential_acr_wins_and_must_be_met() {
        let claims = json!({"id_token": {"acr": {"essential": true, "values": [MFA, "urn:x"]}}});
        let r = Requested::of(Some(PWD), Some(&claims));
        assert_eq!(r, Requested::Essential(vec![Level::MultiFactor]));
        assert_eq!(r.needs(), Some((Level::MultiFactor, true)));
        let one = json!({"id_token": {"acr": {"essential": true, "value": PWD}}});
        assert_eq!(
            Requested::of(None, Some(&one)),
            Requested::Essential(vec![Level::Password])
        );
        let unknown = json!({"id_token": {"acr": {"essential": true, "values": ["urn:x"]}}});
        assert_eq!(Requested::of(None, Some(&unknown)), Requested::Unmeetable);
        // Not essential: only a preference, which acr_values then states.
        let voluntary = json!({"id_token": {"acr": {"values": [MFA]}}});
        assert_eq!(Requested::of(None, Some(&voluntary)), Requested::Nothing);
        // Essential without values: acr must be present, and always is.
        let bare = json!({"id_token": {"acr": {"essential": true}}});
        assert_eq!(Requested::of(None, Some(&bare)), Requested::Nothing);
    }

    #[test]
    fn the_claim_is_one_of_the_essential_values() {
        let both = Requested::Essential(vec![Level::Password, Level::MultiFactor]);
        assert_eq!(both.claim(Level::MultiFactor), Level::MultiFactor);
        assert_eq!(both.claim(Level::Password), Level::Password);
        // Asked for the password level only: a two-factor sign-in satisfies it, and the
        // claim says what was asked.
        let pwd = Requested::Essential(vec![Level::Password]);
        assert_eq!(pwd.claim(Level::MultiFactor), Level::Password);
        assert_eq!(
            Requested::Nothing.claim(Level::MultiFactor),
            Level::MultiFactor
        );
        assert_eq!(Level::of_amr(&["pwd".into()]), Level::Password);
        assert_eq!(
            Level::of_amr(&["pwd".into(), "otp".into(), "mfa".into()]),
            Level::MultiFactor
        );
        assert_eq!(Level::parse(MFA), Some(Level::MultiFactor));
    }
}
