//! The flow explorer's JWT decoder: it takes the tokens the demo client receives apart and
//! explains each field. The explorer is a client of the server, so the signature is checked
//! here against the published JWKS, never with the server's own key ring or code.

use crate::clock::utc;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde_json::{Map, Value};

/// Larger than any token the server issues; bounds the work hostile input can cause.
const MAX_TOKEN: usize = 16 * 1024;
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Where a rule comes from, linked to the spec text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRef {
    pub label: &'static str,
    pub url: &'static str,
}

/// One header field or claim: its name, its value as compact JSON text, a plain-language meaning
/// (one or two sentences for a learner), and where it is defined.
#[derive(Debug, Clone)]
pub struct ClaimLine {
    pub name: String,
    pub value: String,
    pub meaning: String,
    pub spec: Option<SpecRef>,
    /// for iat/exp/nbf/auth_time: the time in UTC as "2026-11-26 08:30:05 UTC"
    pub when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// verified with the JWKS key of this kid
    Valid { kid: String, alg: String },
    /// a key was found but the signature does not verify, or the alg does not match the key
    Invalid(String),
    /// no key in the JWKS has the header's kid (or the header has none)
    NoKey(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashCheck {
    Matches { value: String },
    Differs { claimed: String, computed: String },
}

#[derive(Debug, Clone)]
pub struct DecodedJwt {
    /// The three base64url parts as received.
    pub parts: [String; 3],
    pub header: Vec<ClaimLine>,
    pub claims: Vec<ClaimLine>,
    pub signature: SignatureCheck,
    /// at_hash recomputed from the access token that came with it (OIDC Core section 3.1.3.6 /
    /// 3.3.2.11), when the token has at_hash and an access token is given
    pub at_hash: Option<HashCheck>,
    /// c_hash likewise, from the authorization code (OIDC Core section 3.3.2.11)
    pub c_hash: Option<HashCheck>,
    /// What kind of token this is, for the heading: "ID token" (has nonce/auth_time/aud+sub and
    /// typ JWT or none), "access token (RFC 9068)" (typ at+jwt), "logout token" (events claim
    /// with `http://schemas.openid.net/event/backchannel-logout`), else "JWT".
    pub kind: &'static str,
}

/// (name, spec label, spec url, meaning). The order of a table is the display order.
type Entry = (&'static str, &'static str, &'static str, &'static str);

#[rustfmt::skip]
const HEADER: &[Entry] = &[
    ("alg", "RFC 7515 section 4.1.1", "https://www.rfc-editor.org/rfc/rfc7515#section-4.1.1",
     "The signature algorithm. A client checks it is the one its key is for instead of trusting it: \"none\" or a swapped algorithm is how forged tokens get through (RFC 8725 section 3.1)."),
    ("kid", "RFC 7515 section 4.1.4", "https://www.rfc-editor.org/rfc/rfc7515#section-4.1.4",
     "Which key signed the token; the client looks it up in the server's JWKS. An unknown kid usually means the server rotated its keys, so the client fetches the JWKS again."),
    ("typ", "RFC 7515 section 4.1.9", "https://www.rfc-editor.org/rfc/rfc7515#section-4.1.9",
     "The kind of token. Explicit types such as at+jwt (RFC 9068 section 2.1) and logout+jwt keep one kind of token from being accepted as another (RFC 8725 section 3.11)."),
    ("jku", "RFC 7515 section 4.1.2", "https://www.rfc-editor.org/rfc/rfc7515#section-4.1.2",
     "A URL of keys named by the token itself. A client must take keys only from the issuer's own jwks_uri, or a forger could point it at theirs."),
];

const IDTOKEN: &str = "https://openid.net/specs/openid-connect-core-1_0.html#IDToken";
const STANDARD: &str = "https://openid.net/specs/openid-connect-core-1_0.html#StandardClaims";
const LOGOUT: &str = "https://openid.net/specs/openid-connect-backchannel-1_0.html#LogoutToken";
#[rustfmt::skip]
const CLAIMS: &[Entry] = &[
    ("iss", "RFC 7519 section 4.1.1", "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.1",
     "Who issued the token. The client checks it is exactly the issuer it discovered, so a token from another server cannot pass as this one's (OIDC Core section 3.1.3.7)."),
    ("sub", "RFC 7519 section 4.1.2", "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.2",
     "Who the token is about: an identifier for the user that this issuer never reassigns. Clients key accounts on iss and sub together, never on email or name."),
    ("aud", "RFC 7519 section 4.1.3", "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.3",
     "Who the token is for: the client's client_id in an ID token, the resource server in an access token. A recipient rejects a token whose aud does not name it, so a token cannot be replayed somewhere else."),
    ("azp", "OIDC Core section 2", IDTOKEN,
     "The authorized party: the client the ID token was issued to. When aud lists several audiences, the client checks that azp is its own client_id (OIDC Core section 3.1.3.7)."),
    ("client_id", "RFC 9068 section 2.2", "https://www.rfc-editor.org/rfc/rfc9068#section-2.2",
     "The client the access token was issued to, so a resource server can tell which application calls as well as for which user (sub)."),
    ("scope", "RFC 9068 section 2.2.3", "https://www.rfc-editor.org/rfc/rfc9068#section-2.2.3",
     "The scopes this access token grants, separated by spaces. The resource server allows only what they cover."),
    ("exp", "RFC 7519 section 4.1.4", "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.4",
     "When the token expires; from then on every recipient must reject it. A short lifetime limits what a leaked token can do."),
    ("nbf", "RFC 7519 section 4.1.5", "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.5",
     "The token must not be accepted before this time."),
    ("iat", "RFC 7519 section 4.1.6", "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.6",
     "When the token was issued. A client may refuse tokens issued too long ago (OIDC Core section 3.1.3.7)."),
    ("auth_time", "OIDC Core section 2", IDTOKEN,
     "When the user actually authenticated, which can be long before iat if the server reused a session. A client that sent max_age checks it (OIDC Core section 3.1.3.7)."),
    ("nonce", "OIDC Core section 2", IDTOKEN,
     "The value the client put in its request; matching it proves this ID token was made for this sign-in, not replayed from another (OIDC Core section 3.1.3.7)."),
    ("acr", "OIDC Core section 2", IDTOKEN,
     "The Authentication Context Class Reference: how strong the sign-in was, as a class client and server agree on. A client that asked for a level with acr_values checks it got it."),
    ("amr", "RFC 8176 section 2", "https://www.rfc-editor.org/rfc/rfc8176#section-2",
     "The Authentication Methods References (OIDC Core section 2): how the user signed in, as values RFC 8176 registers, so a client that needs a second factor can see whether one was used."),
    ("at_hash", "OIDC Core section 3.1.3.6", "https://openid.net/specs/openid-connect-core-1_0.html#CodeIDToken",
     "Half of a hash of the access token issued with this ID token. The client recomputes it to prove the access token is the one the server issued with this signed token, not a substitute."),
    ("c_hash", "OIDC Core section 3.3.2.11", "https://openid.net/specs/openid-connect-core-1_0.html#HybridIDToken",
     "Half of a hash of the authorization code returned with this ID token in the hybrid flow. Recomputing it proves the code was not swapped for another (OIDC Core section 3.3.2.10)."),
    ("sid", "Back-Channel Logout section 2.4", LOGOUT,
     "The user's session at the server. A logout token carries the sid of the ID token it concerns, so the client knows which local session to end."),
    ("events", "Back-Channel Logout section 2.4", LOGOUT,
     "Marks a logout token: the backchannel-logout event says the server ended the user's session and the client must end its own. It also keeps the token from passing as an ID token (Back-Channel Logout section 4.1)."),
    ("jti", "RFC 7519 section 4.1.7", "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.7",
     "A unique identifier for this token. A recipient that remembers the ones it has seen can refuse a replayed copy."),
    ("name", "OIDC Core section 5.1", STANDARD,
     "The user's full name, for display. Neither unique nor stable, so never use it to identify the user."),
    ("preferred_username", "OIDC Core section 5.1", STANDARD,
     "The name the user likes to be called by, for display. The server does not promise it is unique or stable (OIDC Core section 5.7)."),
    ("email", "OIDC Core section 5.1", STANDARD,
     "The user's email address. Addresses change and get reused, so the user's identifier is sub, not this."),
    ("email_verified", "OIDC Core section 5.1", STANDARD,
     "Whether the server checked that the user controls the email address. Rely on email only when this is true."),
];

/// Registered values of RFC 8176 section 2 that a learner is likely to meet.
#[rustfmt::skip]
const AMR: &[(&str, &str)] = &[
    ("pwd", "password"), ("otp", "one-time code"), ("mfa", "several factors"),
    ("hwk", "hardware-held key"), ("swk", "software-held key"), ("pop", "proof of holding a key"),
    ("user", "user-presence test"), ("pin", "PIN"), ("fpt", "fingerprint"), ("face", "face recognition"),
    ("sms", "code sent by SMS"), ("sc", "smart card"), ("kba", "knowledge-based questions"),
];

/// Decode and explain `token`. `jwks` is the server's JWKS document (JSON, {"keys":[...]}) as
/// fetched from /jwks.json. A token that is not a JWT gives Err with a sentence for the learner.
pub fn decode(
    token: &str,
    jwks: &Value,
    access_token: Option<&str>,
    code: Option<&str>,
) -> Result<DecodedJwt, String> {
    let token = token.trim();
    if token.len() > MAX_TOKEN {
        return Err("too long: the explorer decodes tokens of up to 16 KiB".to_owned());
    }
    let parts: Vec<&str> = token.split('.').collect();
    let &[h, p, s] = parts.as_slice() else {
        return Err(match parts.len() {
            _ if token.is_empty() => "there is no token to decode".to_owned(),
            1 => "not a JWT: an opaque token has no parts to decode; introspection (RFC 7662) \
                  tells what it is"
                .to_owned(),
            5 => "an encrypted JWT (JWE, RFC 7516): five parts, readable only by the recipient \
                  that holds the key"
                .to_owned(),
            n => format!("not a JWT: a JWT has three parts separated by dots, this has {n}"),
        });
    };
    let header = json_part(h)
        .ok_or("not a JWT: the first part is not base64url-encoded JSON (RFC 7515 section 5.2)")?;
    let claims = json_part(p).ok_or(
        "signed, but the payload is not a base64url-encoded JSON object, so not a JWT \
         (RFC 7519 section 7.2)",
    )?;
    let alg = text(&header, "alg").unwrap_or_default();
    let hash = |name: &str, value: Option<&str>| hash_check(claims.get(name)?, alg, value?);
    Ok(DecodedJwt {
        signature: check_signature(&header, &format!("{h}.{p}"), s, jwks),
        at_hash: hash("at_hash", access_token),
        c_hash: hash("c_hash", code),
        kind: kind(&header, &claims),
        header: lines(&header, HEADER, false),
        claims: lines(&claims, CLAIMS, true),
        parts: [h.to_owned(), p.to_owned(), s.to_owned()],
    })
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)?.as_str()
}

fn json_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    // serde_json's recursion limit keeps deeply nested input from exhausting the stack.
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn kind(header: &Map<String, Value>, claims: &Map<String, Value>) -> &'static str {
    // RFC 7515 section 4.1.9: typ is case-insensitive and may drop "application/".
    let typ = text(header, "typ").map(str::to_ascii_lowercase);
    let typ = typ
        .as_deref()
        .map(|t| t.strip_prefix("application/").unwrap_or(t));
    let has = |c: &str| claims.contains_key(c);
    let events = claims.get("events").and_then(Value::as_object);
    if typ == Some("at+jwt") {
        "access token (RFC 9068)"
    } else if events.is_some_and(|e| e.contains_key(LOGOUT_EVENT)) {
        "logout token"
    } else if (has("nonce") || has("auth_time") || has("aud") && has("sub"))
        && matches!(typ, None | Some("jwt"))
    {
        "ID token"
    } else {
        "JWT"
    }
}

fn lines(obj: &Map<String, Value>, table: &[Entry], claims: bool) -> Vec<ClaimLine> {
    let line = |name: &str, value: &Value, meaning: String, spec| ClaimLine {
        name: name.to_owned(),
        value: value.to_string(),
        meaning,
        spec,
        when: match name {
            "iat" | "exp" | "nbf" | "auth_time" if claims => numeric_date(value).map(utc),
            _ => None,
        },
    };
    let known = table.iter().filter_map(|&(name, label, url, meaning)| {
        let value = obj.get(name)?;
        let mut meaning = meaning.to_owned();
        if claims && name == "amr" {
            meaning.push_str(&amr_values(value));
        }
        Some(line(name, value, meaning, Some(SpecRef { label, url })))
    });
    let generic = if claims {
        "A claim this server or the client defined; the spec does not give it a meaning."
    } else {
        "A header parameter RFC 7515 section 4.1 does not register, so a client cannot rely on it."
    };
    let others = obj
        .iter()
        .filter(|(k, _)| !table.iter().any(|e| e.0 == k.as_str()))
        .map(|(k, v)| line(k, v, generic.to_owned(), None));
    known.chain(others).collect()
}

/// " Here: pwd = password, otp = one-time code."
fn amr_values(value: &Value) -> String {
    let Some(values) = value.as_array().filter(|v| !v.is_empty()) else {
        return String::new();
    };
    let named: Vec<String> = values
        .iter()
        .map(|v| {
            let v = v.as_str().unwrap_or("?");
            let what = AMR
                .iter()
                .find(|a| a.0 == v)
                .map_or("not registered", |a| a.1);
            format!("{v} = {what}")
        })
        .collect();
    format!(" Here: {}.", named.join(", "))
}

/// RFC 7519 section 2: a NumericDate may have a fraction.
fn numeric_date(v: &Value) -> Option<i64> {
    let float = || v.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15);
    v.as_i64().or_else(|| float().map(|f| f.floor() as i64))
}

/// OIDC Core section 3.3.2.11: base64url of the left half of the hash of the ASCII value, with
/// the hash of the ID token's alg. EdDSA names no hash; for Ed25519 it is SHA-512 (RFC 8032
/// section 5.1), as the server and relying parties such as the openidconnect crate use.
fn half_hash(alg: &str, value: &str) -> Option<String> {
    use sha2::Digest;
    let digest = match alg {
        "EdDSA" | "Ed25519" => sha2::Sha512::digest(value).to_vec(),
        a if a.ends_with("256") => sha2::Sha256::digest(value).to_vec(),
        a if a.ends_with("384") => sha2::Sha384::digest(value).to_vec(),
        a if a.ends_with("512") => sha2::Sha512::digest(value).to_vec(),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(digest.get(..digest.len() / 2)?))
}

fn hash_check(claimed: &Value, alg: &str, value: &str) -> Option<HashCheck> {
    let computed = half_hash(alg, value)?;
    let claimed = claimed
        .as_str()
        .map_or_else(|| claimed.to_string(), str::to_owned);
    Some(if claimed == computed {
        HashCheck::Matches { value: computed }
    } else {
        HashCheck::Differs { claimed, computed }
    })
}

fn check_signature(
    header: &Map<String, Value>,
    message: &str,
    sig: &str,
    jwks: &Value,
) -> SignatureCheck {
    use SignatureCheck::{Invalid, NoKey, Valid};
    let alg = text(header, "alg").unwrap_or_default();
    // RFC 8725 section 2.1: "none", and HMAC keyed with the public key, are the classic forgeries.
    let algorithm = match alg.parse::<Algorithm>() {
        Ok(a) if a.family() != AlgorithmFamily::Hmac => a,
        Ok(_) => {
            return Invalid(format!(
                "{alg} is a shared-secret MAC: a client cannot check it with a public JWKS key, \
                 and must not try (RFC 8725 section 2.1)"
            ));
        }
        Err(_) if alg == "none" => {
            return Invalid(
                "alg is \"none\": the token is unsigned, and a client must refuse it \
                 (RFC 8725 section 2.1)"
                    .to_owned(),
            );
        }
        Err(_) if alg.is_empty() => {
            return Invalid("the header names no alg (RFC 7515 section 4.1.1)".to_owned());
        }
        Err(_) => return Invalid(format!("alg {alg:?} is not one a client should accept")),
    };
    let Some(kid) = text(header, "kid") else {
        return NoKey("the header has no kid, so no key in the JWKS can be chosen".to_owned());
    };
    let keys = jwks.get("keys").and_then(Value::as_array);
    let mut keys = keys.into_iter().flatten().filter_map(Value::as_object);
    let Some(jwk) = keys.find(|k| text(k, "kid") == Some(kid)) else {
        return NoKey(format!(
            "no key in the JWKS has kid {kid:?}: it may have been rotated out, or another \
             issuer signed the token"
        ));
    };
    let (kty, crv) = (text(jwk, "kty").unwrap_or("?"), text(jwk, "crv"));
    let fits = match algorithm {
        Algorithm::ES256 => (kty, crv) == ("EC", Some("P-256")),
        Algorithm::ES384 => (kty, crv) == ("EC", Some("P-384")),
        Algorithm::EdDSA => (kty, crv) == ("OKP", Some("Ed25519")),
        _ => kty == "RSA", // RS* and PS*; HMAC was refused above
    };
    // RFC 8725 section 3.1: the key, not the token, decides the algorithm.
    if !fits || text(jwk, "alg").is_some_and(|a| a != alg) {
        let key = [Some(kty), crv, text(jwk, "alg")].into_iter().flatten();
        let key = key.collect::<Vec<_>>().join(" ");
        return Invalid(format!(
            "the header says {alg} but key {kid:?} is {key}; a client takes the algorithm \
             from the key, not from the token (RFC 8725 section 3.1)"
        ));
    }
    if text(jwk, "use").is_some_and(|u| u != "sig") {
        return Invalid(format!(
            "key {kid:?} is not published for signatures (RFC 7517 section 4.2)"
        ));
    }
    let jwk = serde_json::from_value(Value::Object(jwk.clone()));
    let key = jwk
        .ok()
        .and_then(|j| jsonwebtoken::DecodingKey::from_jwk(&j).ok());
    let Some(key) = key else {
        return Invalid(format!("key {kid:?} is not a readable public key"));
    };
    match jsonwebtoken::crypto::verify(sig, message.as_bytes(), &key, algorithm) {
        Ok(true) => Valid {
            kid: kid.to_owned(),
            alg: alg.to_owned(),
        },
        Ok(false) => Invalid(format!(
            "the signature does not verify with key {kid:?}: the token was changed after \
             signing, or another key signed it"
        )),
        Err(e) => Invalid(format!("key {kid:?} could not check the signature: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING as P256, EcdsaKeyPair, KeyPair};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    /// A fresh P-256 key and a JWKS with its public JWK, from the point 04 || x || y.
    fn es256() -> (EncodingKey, Value) {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&P256, &SystemRandom::new()).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&P256, pkcs8.as_ref()).expect("pkcs8");
        let point = pair.public_key().as_ref();
        assert_eq!((point.len(), point[0]), (65, 4));
        let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "x": x, "y": y});
        (
            EncodingKey::from_ec_der(pkcs8.as_ref()),
            json!({"keys": [jwk]}),
        )
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn sign(key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).expect("sign")
    }

    /// Any header and claims, with a junk signature.
    fn unsigned(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.c2ln",
            b64(header.to_string()),
            b64(claims.to_string())
        )
    }

    fn id_claims() -> Value {
        json!({"iss": "https://id.example", "sub": "u1", "aud": "demo", "exp": 1_764_145_805,
            "nonce": "n-0S6", "amr": ["pwd", "otp"], "house": "Gryffindor",
            "at_hash": half_hash("ES256", "access"), "c_hash": "wrong"})
    }

    fn claim<'a>(d: &'a DecodedJwt, name: &str) -> &'a ClaimLine {
        d.claims
            .iter()
            .chain(&d.header)
            .find(|c| c.name == name)
            .expect(name)
    }

    #[test]
    fn signed_id_token_verifies_and_is_explained() {
        let (key, jwks) = es256();
        let t = sign(&key, Some("k1"), &id_claims());
        let d = decode(&t, &jwks, Some("access"), Some("code")).expect("decodes");
        let valid = SignatureCheck::Valid {
            kid: "k1".into(),
            alg: "ES256".into(),
        };
        assert_eq!((d.signature.clone(), d.kind), (valid, "ID token"));
        assert!(matches!(d.at_hash, Some(HashCheck::Matches { .. })));
        assert!(
            matches!(d.c_hash, Some(HashCheck::Differs { ref claimed, .. }) if claimed == "wrong")
        );
        assert_eq!(d.parts.join("."), t);
        let names: Vec<&str> = d.claims.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            (names.first(), names.last()),
            (Some(&"iss"), Some(&"house"))
        );
        assert_eq!(
            claim(&d, "exp").when.as_deref(),
            Some("2025-11-26 08:30:05 UTC")
        );
        let amr = claim(&d, "amr");
        assert_eq!(amr.value, r#"["pwd","otp"]"#);
        assert!(
            amr.meaning
                .ends_with("Here: pwd = password, otp = one-time code.")
        );
        let house = claim(&d, "house");
        assert!(house.spec.is_none() && house.meaning.contains("does not give it a meaning"));
        let kid = claim(&d, "kid").spec.clone().map(|s| s.label);
        assert_eq!(kid, Some("RFC 7515 section 4.1.4"));
        // Without the access token and code there is nothing to recompute.
        let d = decode(&t, &jwks, None, None).expect("decodes");
        assert_eq!((d.at_hash, d.c_hash), (None, None));
    }

    #[test]
    fn tampered_token_is_invalid() {
        let (key, jwks) = es256();
        let t = sign(&key, Some("k1"), &id_claims());
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = b64(json!({"sub": "admin"}).to_string());
        let d = decode(&parts.join("."), &jwks, None, None).expect("decodes");
        assert!(matches!(d.signature, SignatureCheck::Invalid(m) if m.contains("does not verify")));
    }

    #[test]
    fn unknown_or_missing_kid_is_no_key() {
        let (key, jwks) = es256();
        for (kid, jwks) in [
            (Some("old"), &jwks),
            (None, &jwks),
            (Some("k1"), &json!({})),
        ] {
            let d = decode(&sign(&key, kid, &id_claims()), jwks, None, None).expect("decodes");
            assert!(
                matches!(d.signature, SignatureCheck::NoKey(_)),
                "{:?}",
                d.signature
            );
        }
    }

    #[test]
    fn none_hmac_and_algs_foreign_to_the_key_are_refused() {
        let (_, jwks) = es256();
        for alg in ["none", "HS256", "RS256", "ES384", "EdDSA", "XX1", ""] {
            let t = unsigned(json!({"alg": alg, "kid": "k1"}), json!({"sub": "u"}));
            let d = decode(&t, &jwks, None, None).expect("decodes");
            assert!(
                matches!(d.signature, SignatureCheck::Invalid(_)),
                "{alg}: {:?}",
                d.signature
            );
        }
    }

    #[test]
    fn kinds() {
        let kind = |typ: &str, claims: Value| {
            let t = unsigned(json!({"alg": "ES256", "typ": typ}), claims);
            decode(&t, &json!({}), None, None).expect("decodes").kind
        };
        let at = json!({"sub": "u", "aud": "rs", "client_id": "demo"});
        assert_eq!(kind("at+jwt", at.clone()), "access token (RFC 9068)");
        assert_eq!(
            kind("application/AT+JWT", at.clone()),
            "access token (RFC 9068)"
        );
        assert_eq!(kind("JWT", at), "ID token");
        let logout = json!({"events": {LOGOUT_EVENT: {}}, "sid": "s", "aud": "demo"});
        assert_eq!(kind("logout+jwt", logout), "logout token");
        assert_eq!(kind("JWT", json!({"foo": 1})), "JWT");
    }

    #[test]
    fn half_hashes() {
        // OIDC Core Appendix A.3's access token and at_hash.
        let at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let matches = HashCheck::Matches {
            value: "77QmUPtjPfzWtF2AnpK9RQ".into(),
        };
        assert_eq!(
            hash_check(&json!("77QmUPtjPfzWtF2AnpK9RQ"), "RS256", at),
            Some(matches)
        );
        // Left 32 bytes of SHA-512("abc") (FIPS 180-2 Appendix C.1): the server's EdDSA choice.
        let abc = "3a81oZNherrMQXNJriBBMRLm-k6JqX6iCp7u5ktV05o";
        assert_eq!(half_hash("EdDSA", "abc").as_deref(), Some(abc));
        assert_eq!(half_hash("ES384", "abc").map(|h| h.len()), Some(32));
        assert_eq!(half_hash("none", "abc"), None);
    }

    #[test]
    fn non_jwts_are_explained_not_panicked_on() {
        let no = |t: &str| decode(t, &json!({}), None, None).expect_err(t);
        assert!(no("2YotnFZFEjr1zCsicMWpAA").contains("RFC 7662"));
        assert!(no("a.b.c.d.e").contains("JWE"));
        assert!(no(&"a".repeat(MAX_TOKEN + 1)).contains("16 KiB"));
        let deep = b64(format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        ));
        for t in [
            "", ".", "..", "a.b.c", "e30.e30", "W10.e30.", "e30.W10.", "é.é.é", &deep,
        ] {
            no(t);
        }
        no(&format!("e30.{deep}.e30"));
        // An empty header still makes a JWT, one that nothing can verify.
        let d = decode("e30.e30.", &json!({"keys": 5}), Some("x"), Some("y")).expect("decodes");
        assert!(matches!(d.signature, SignatureCheck::Invalid(_)));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 20418 days and 30605 s: 2025-01-01 is day 55 * 365 + 14 leap days = 20089, and day
        // 329 of 2025 is November 26 (304 days to November 1); 30605 s is 08:30:05.
        assert_eq!(utc(1_764_145_805), "2025-11-26 08:30:05 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
        let _ = (utc(i64::MIN), utc(i64::MAX));
        assert_eq!(numeric_date(&json!(1.9)), Some(1));
        assert_eq!(numeric_date(&json!("1")), None);
    }
}
