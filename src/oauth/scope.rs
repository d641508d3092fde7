//! The scopes the server itself understands (OIDC Core section 5.4 and section 11): one
//! table says what each releases, how the consent page words it, and what discovery lists.
//! Deployments describe their own scopes in config (`[[scopes]]`).

use super::types::ScopeSet;

/// One standard scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandardScope {
    pub name: &'static str,
    /// What the user is asked to allow, in plain words.
    pub description: &'static str,
    /// The user claims this scope releases (OIDC Core section 5.4).
    pub claims: &'static [&'static str],
}

/// In the order a consent page lists them when a request has no order of its own.
pub const STANDARD: [StandardScope; 6] = [
    StandardScope {
        name: "openid",
        description: "Know who you are (your account identifier)",
        claims: &[],
    },
    StandardScope {
        name: "profile",
        description: "See your name and basic profile",
        claims: &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    },
    StandardScope {
        name: "email",
        description: "Read your email address",
        claims: &["email", "email_verified"],
    },
    StandardScope {
        name: "address",
        description: "Read your postal address",
        claims: &["address"],
    },
    StandardScope {
        name: "phone",
        description: "Read your phone number",
        claims: &["phone_number", "phone_number_verified"],
    },
    StandardScope {
        name: "offline_access",
        description: "Stay signed in and act for you while you are away",
        claims: &[],
    },
];

/// The standard scope of this name, if it is one.
pub fn standard(name: &str) -> Option<&'static StandardScope> {
    STANDARD.iter().find(|s| s.name == name)
}

/// The user claims a scope releases; none for a scope that is not a standard one.
pub fn claims_of(name: &str) -> &'static [&'static str] {
    standard(name).map_or(&[], |s| s.claims)
}

/// Whether `name` is a well-formed scope token (RFC 6749 section 3.3: `%x21 / %x23-5B /
/// %x5D-7E`).
pub fn is_scope_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// The scope tokens of a `scope` parameter in the order they were sent, each once. The
/// scope set is sorted; this order is for showing the user what the client asked for.
pub fn request_order(raw: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|x| x == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// `scopes` in `order`; any not in `order` (a client's defaults) follow in sorted order.
pub fn ordered(scopes: &ScopeSet, order: &[String]) -> Vec<String> {
    let listed = order.iter().filter(|s| scopes.contains(s)).cloned();
    let rest = scopes
        .iter()
        .filter(|s| !order.iter().any(|x| x == s))
        .map(str::to_owned);
    listed.chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_of_the_request_is_kept_for_display() {
        let order = request_order(Some("email  openid email zeta"));
        assert_eq!(order, ["email", "openid", "zeta"]);
        let set = ScopeSet::parse("openid email alpha").unwrap_or_default();
        assert_eq!(ordered(&set, &order), ["email", "openid", "alpha"]);
        assert!(request_order(None).is_empty());
    }

    #[test]
    fn the_table_answers_for_each_standard_scope() {
        assert_eq!(claims_of("email"), ["email", "email_verified"]);
        assert!(claims_of("openid").is_empty());
        assert!(claims_of("api.read").is_empty());
        assert!(standard("offline_access").is_some());
        assert!(standard("Profile").is_none(), "scopes are case-sensitive");
        assert!(is_scope_token("api:read!"));
        assert!(!is_scope_token("two words") && !is_scope_token("quote\"") && !is_scope_token(""));
    }
}
