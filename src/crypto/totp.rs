//! Time-based one-time codes (RFC 6238) for authenticator apps: the secret, its sealing under
//! the master key, the check, and the enrolment's `otpauth://` URI and QR code.
//!
//! The parameters every authenticator app understands: HMAC-SHA-1, 6 digits, 30-second steps
//! (RFC 6238 section 4, RFC 4226 section 5.3). SHA-256 would be allowed (RFC 6238 section 1.2)
//! but several popular apps silently compute SHA-1 whatever the URI says.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::aead::MasterKey;

/// RFC 6238 section 5.2 recommends a time step of 30 seconds.
pub const STEP_SECONDS: i64 = 30;
const DIGITS: u8 = 6;
/// RFC 4226 section 4 R6: at least 128 bits, 160 recommended.
const SECRET_BYTES: usize = 20;

/// A TOTP secret. Never printed: `Debug` shows nothing of it.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::fill(&mut bytes[..]);
        TotpSecret(bytes)
    }

    /// Sealed for the store (AES-256-GCM under the master key): the server must read a TOTP
    /// secret back, so it cannot be stored as a hash. Bound to its factor's id, so a sealed
    /// secret copied into another user's row does not open there.
    pub fn seal(&self, master: &MasterKey, factor_id: &str) -> anyhow::Result<String> {
        master.encrypt_bound(STANDARD.encode(&self.0).as_bytes(), factor_id.as_bytes())
    }

    pub fn open(master: &MasterKey, sealed: &str, factor_id: &str) -> anyhow::Result<Self> {
        let (encoded, _) = master.decrypt_bound_telling(sealed, factor_id.as_bytes())?;
        let bytes = STANDARD.decode(encoded)?;
        anyhow::ensure!(bytes.len() >= 16, "a TOTP secret is shorter than 128 bits");
        Ok(TotpSecret(bytes))
    }

    /// For typing into an app by hand: base32 without padding, in groups of four.
    pub fn base32(&self) -> String {
        let plain = Secret::from(self.0.clone()).to_base32();
        plain
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn totp(&self, account: &str, issuer: Option<&str>) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS as u64)
            .with_secret(self.0.clone())
            .with_account_name(account)
            .with_issuer(issuer)
            // The values are the RFC's; only the names could fail `build`'s checks, and the
            // caller has made them safe.
            .build_noncompliant()
    }

    /// The code for `step`.
    pub fn code_at(&self, step: i64) -> String {
        let t = u64::try_from(step.max(0)).unwrap_or(0) * STEP_SECONDS as u64;
        self.totp("", None).generate(t).to_string()
    }

    /// The time step whose code `typed` is, among the current step and one on either side
    /// (RFC 6238 section 5.2: at most one step of network delay; section 6: clocks drift).
    /// The crate compares in constant time. The caller accepts the step at most once
    /// (`Store::accept_totp_step`).
    pub fn matching_step(&self, typed: &str, now: i64) -> Option<i64> {
        if !Self::well_formed(typed) {
            return None;
        }
        let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        let t = u64::try_from(now).ok()?;
        self.totp("", None)
            .check(&typed, t)
            .and_then(|step| i64::try_from(step).ok())
    }

    /// Whether `typed` has the shape of a code at all (6 digits, spaces ignored). Anything
    /// else is refused before it is counted as a guess.
    pub fn well_formed(typed: &str) -> bool {
        let digits = typed.chars().filter(|c| !c.is_whitespace());
        digits.clone().count() == usize::from(DIGITS)
            && digits.into_iter().all(|c| c.is_ascii_digit())
    }

    /// The Key Uri Format link an authenticator app scans: `otpauth://totp/Issuer:account?...`.
    /// Neither part may contain ':' (it separates them), so any is replaced.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        // Apps show the label on a small screen, and a long one would not fit a QR code.
        let issuer: String = issuer.replace(':', " ").chars().take(64).collect();
        let account: String = account.replace(':', " ").chars().take(64).collect();
        // `to_url` refuses only a name with ':', which is gone.
        self.totp(&account, Some(&issuer))
            .to_url()
            .unwrap_or_default()
    }
}

/// `uri` as a QR code: an SVG document in a `data:` URI, for an `<img>` the page CSP already
/// allows (`img-src data:`), made here with no outside service.
pub fn qr_data_uri(uri: &str) -> anyhow::Result<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg.as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits there; the last 6 digits are the 6-digit
    /// code, as HOTP truncates modulo 10^digits).
    #[test]
    fn the_rfc_6238_test_vectors() {
        let s = TotpSecret(b"12345678901234567890".to_vec());
        for (t, code8) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(s.code_at(t / STEP_SECONDS), code8[2..], "t={t}");
            assert_eq!(s.matching_step(&code8[2..], t), Some(t / STEP_SECONDS));
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let s = TotpSecret::generate();
        let now = 1_800_000_000;
        let step = now / STEP_SECONDS;
        for d in [-1, 0, 1] {
            assert_eq!(s.matching_step(&s.code_at(step + d), now), Some(step + d));
        }
        for d in [-2, 2] {
            let code = s.code_at(step + d);
            // A code of a farther step is refused, unless it happens to equal a near one.
            let near = [-1, 0, 1].iter().any(|n| s.code_at(step + n) == code);
            assert_eq!(s.matching_step(&code, now).is_some(), near, "{d}");
        }
        assert_eq!(s.matching_step("12345", now), None);
        assert_eq!(s.matching_step("abcdef", now), None);
        let spaced = format!("{} {}", &s.code_at(step)[..3], &s.code_at(step)[3..]);
        assert_eq!(s.matching_step(&spaced, now), Some(step));
    }

    #[test]
    fn sealed_secrets_open_only_with_the_master_key() {
        let master = MasterKey::generate();
        let s = TotpSecret::generate();
        let sealed = s.seal(&master, "f1").unwrap_or_else(|e| panic!("{e}"));
        let opened = TotpSecret::open(&master, &sealed, "f1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(opened.code_at(7), s.code_at(7));
        assert!(TotpSecret::open(&MasterKey::generate(), &sealed, "f1").is_err());
        // Moved to another factor's row, it does not open.
        assert!(TotpSecret::open(&master, &sealed, "f2").is_err());
        assert_eq!(format!("{s:?}"), "TotpSecret(..)");
    }

    #[test]
    fn the_uri_and_the_qr_code() {
        let s = TotpSecret(b"12345678901234567890".to_vec());
        let uri = s.otpauth_uri("Latchkey", "ali:ce");
        assert!(
            uri.starts_with("otpauth://totp/Latchkey:ali%20ce?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Latchkey"), "{uri}");
        assert_eq!(s.base32(), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
        let qr = qr_data_uri(&uri).unwrap_or_else(|e| panic!("{e}"));
        assert!(qr.starts_with("data:image/svg+xml;base64,"));
    }
}
