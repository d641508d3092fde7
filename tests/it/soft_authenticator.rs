//! A software `WebAuthn` authenticator and client: what a browser holding passkeys does with the
//! options the server sends to `navigator.credentials.create()` / `.get()`, answering with the
//! JSON of `PublicKeyCredential.toJSON()`. ES256 (P-256) keys, "none" attestation, no backup
//! flags (a device-bound platform authenticator), a signature counter per credential.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// Authenticator data flags (`WebAuthn` §6.1): user present, user verified, attested data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

struct Credential {
    id: Vec<u8>,
    key: EcdsaKeyPair,
    user_handle: Vec<u8>,
    discoverable: bool,
    counter: u32,
}

pub struct SoftAuthenticator {
    rp_id: String,
    origin: String,
    credentials: Vec<Credential>,
    user_verified: bool,
    /// No signature counter (always 0), as synced passkeys do.
    counterless: bool,
}

impl SoftAuthenticator {
    /// A browser at `origin` (e.g. `http://localhost:41234`); the RP ID is its host.
    pub fn new(origin: &str) -> Self {
        let url = url::Url::parse(origin).expect("origin is a URL");
        Self {
            rp_id: url.host_str().expect("origin has a host").to_owned(),
            origin: url.origin().ascii_serialization(),
            credentials: Vec::new(),
            user_verified: true,
            counterless: false,
        }
    }

    /// Answer `navigator.credentials.create()` for webauthn-rs `CreationChallengeResponse`
    /// JSON. None (the browser's `InvalidStateError` / `NotAllowedError`) when a held credential
    /// is in `excludeCredentials`, `rp.id` is not this RP ID, or ES256 is not offered.
    pub fn create(&mut self, options: &Value, discoverable: bool) -> Option<Value> {
        let pk = &options["publicKey"];
        if pk["rp"]["id"].as_str().is_some_and(|id| id != self.rp_id)
            || !list(&pk["pubKeyCredParams"]).iter().any(|p| p["alg"] == -7)
            || list(&pk["excludeCredentials"])
                .iter()
                .any(|c| self.find(c).is_some())
        {
            return None;
        }
        let user_handle = b64(&pk["user"]["id"]);
        let client_data = self.client_data("webauthn.create", pk);

        let mut id = vec![0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .expect("random credential id");
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("P-256 key");
        // Uncompressed point 0x04 || x || y.
        let point = key.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);

        let mut auth_data = self.auth_data(AT, 0);
        auth_data.extend_from_slice(&[0; 16]); // AAGUID
        auth_data.extend_from_slice(&u16::try_from(id.len()).expect("short id").to_be_bytes());
        auth_data.extend_from_slice(&id);
        // COSE_Key {1 (kty): 2 (EC2), 3 (alg): -7 (ES256), -1 (crv): 1 (P-256), -2: x, -3: y}.
        cbor(&mut auth_data, 5, 5); // a map of 5 pairs
        for (k, v) in [(1, 2), (3, -7), (-1, 1)] {
            cbor_int(&mut auth_data, k);
            cbor_int(&mut auth_data, v);
        }
        for (k, coord) in [(-2, x), (-3, y)] {
            cbor_int(&mut auth_data, k);
            cbor_bytes(&mut auth_data, coord);
        }

        // {"fmt": "none", "attStmt": {}, "authData": bytes}
        let mut attestation = Vec::new();
        cbor(&mut attestation, 5, 3); // a map of 3 pairs
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        cbor(&mut attestation, 5, 0); // {}
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);

        let raw_id = B64.encode(&id);
        self.credentials.push(Credential {
            id,
            key,
            user_handle,
            discoverable,
            counter: 0,
        });
        Some(json!({
            "id": raw_id,
            "rawId": raw_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "attestationObject": B64.encode(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {"credProps": {"rk": discoverable}},
            "authenticatorAttachment": "platform",
        }))
    }

    /// Answer `navigator.credentials.get()` for webauthn-rs `RequestChallengeResponse` JSON:
    /// with the first held credential `allowCredentials` names, or, when that is empty, the
    /// newest discoverable one. `userHandle` is set when the credential is discoverable (as
    /// platform authenticators do). None when no credential fits or `rpId` is not this RP ID.
    pub fn get(&mut self, options: &Value) -> Option<Value> {
        let pk = &options["publicKey"];
        if pk["rpId"].as_str().is_some_and(|id| id != self.rp_id) {
            return None;
        }
        let allowed = list(&pk["allowCredentials"]);
        let index = if allowed.is_empty() {
            self.credentials.iter().rposition(|c| c.discoverable)?
        } else {
            allowed.iter().find_map(|c| self.find(c))?
        };
        let client_data = self.client_data("webauthn.get", pk);
        let cred = &mut self.credentials[index];
        if !self.counterless {
            cred.counter += 1;
        }
        let counter = cred.counter;
        let auth_data = self.auth_data(0, counter);
        let cred = &self.credentials[index];

        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, client_data.as_bytes()).as_ref());
        let signature = cred
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("ECDSA signature");

        let raw_id = B64.encode(&cred.id);
        let mut response = json!({
            "clientDataJSON": B64.encode(client_data),
            "authenticatorData": B64.encode(auth_data),
            "signature": B64.encode(signature.as_ref()),
        });
        if cred.discoverable {
            response["userHandle"] = B64.encode(&cred.user_handle).into();
        }
        Some(json!({
            "id": raw_id,
            "rawId": raw_id,
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }))
    }

    /// Whether the "user" passes user verification (UV flag); true by default. UP is always set.
    pub fn set_user_verified(&mut self, uv: bool) {
        self.user_verified = uv;
    }

    /// Send no signature counter (0 every time), as synced passkeys do: replays are then
    /// refused by the server's single-use challenges alone.
    pub fn without_counter(&mut self) {
        self.counterless = true;
    }

    /// The credential ids held (raw bytes), and whether each is discoverable.
    pub fn credentials(&self) -> Vec<(Vec<u8>, bool)> {
        self.credentials
            .iter()
            .map(|c| (c.id.clone(), c.discoverable))
            .collect()
    }

    /// The index of the held credential a `PublicKeyCredentialDescriptor` names.
    fn find(&self, descriptor: &Value) -> Option<usize> {
        let id = b64(&descriptor["id"]);
        self.credentials.iter().position(|c| c.id == id)
    }

    /// The challenge is echoed as the server encoded it (base64url, no padding).
    fn client_data(&self, type_: &str, pk: &Value) -> String {
        let challenge = pk["challenge"].as_str().expect("options have a challenge");
        json!({"type": type_, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
    }

    /// SHA-256(rp_id) || flags || counter, before any attested credential data.
    fn auth_data(&self, flags: u8, counter: u32) -> Vec<u8> {
        let mut out = digest(&SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        out.push(flags | UP | if self.user_verified { UV } else { 0 });
        out.extend_from_slice(&counter.to_be_bytes());
        out
    }
}

/// A JSON array (or nothing, when the member is absent or null).
fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// A base64url (unpadded) JSON string's bytes.
fn b64(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("a base64url string");
    B64.decode(s.trim_end_matches('='))
        .expect("valid base64url")
}

/// A CBOR item head (RFC 8949 §3): major type and argument, in the shortest form.
fn cbor(out: &mut Vec<u8>, major: u8, n: usize) {
    let m = major << 5;
    match (u8::try_from(n), u16::try_from(n)) {
        (Ok(b @ 0..24), _) => out.push(m | b),
        (Ok(b), _) => out.extend([m | 0x18, b]),
        (_, Ok(w)) => {
            out.push(m | 0x19);
            out.extend(w.to_be_bytes());
        }
        _ => {
            out.push(m | 0x1a);
            out.extend(u32::try_from(n).expect("CBOR argument").to_be_bytes());
        }
    }
}

/// An integer: major type 0 (unsigned) or 1 (negative, encoding -1 - n).
fn cbor_int(out: &mut Vec<u8>, n: i8) {
    if n >= 0 {
        cbor(out, 0, n.unsigned_abs().into());
    } else {
        cbor(out, 1, (-1 - n).unsigned_abs().into());
    }
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    cbor(out, 2, b.len());
    out.extend_from_slice(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor(out, 3, s.len());
    out.extend_from_slice(s.as_bytes());
}
