//! Recovery codes: one-time codes a user keeps on paper for when their authenticator app is
//! gone. Each is 12 characters of Crockford's base32 (60 random bits), shown as
//! `XXXX-XXXX-XXXX`; typed back in any case, with or without dashes, and with the letters
//! people confuse with digits (O, I, L) read as the digits. Random values that long need no
//! slow hash: the store keeps their SHA-256, like session ids.

/// Crockford's base32 alphabet: no I, L, O or U, so nothing reads as something else.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LEN: usize = 12;

/// `n` new codes, as shown to the user.
pub fn generate(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut bytes = [0u8; 8];
            rand::fill(&mut bytes);
            let mut bits = u64::from_le_bytes(bytes);
            let mut code = String::with_capacity(LEN + 2);
            for i in 0..LEN {
                if i > 0 && i % 4 == 0 {
                    code.push('-');
                }
                code.push(char::from(ALPHABET[(bits & 31) as usize]));
                bits >>= 5;
            }
            code
        })
        .collect()
}

/// A typed recovery code in its one canonical form, or None when it cannot be one (so a
/// 6-digit app code is never taken for a recovery code).
pub fn normalize(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_read_back_however_typed() {
        let codes = generate(10);
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 14);
            assert_eq!(c.matches('-').count(), 2);
            let canonical = normalize(c).unwrap_or_else(|| panic!("{c}"));
            assert_eq!(
                normalize(&c.to_lowercase()).as_deref(),
                Some(canonical.as_str())
            );
            assert_eq!(
                normalize(&c.replace('-', " ")).as_deref(),
                Some(canonical.as_str())
            );
        }
        assert_eq!(normalize("o1il-0000-0000").as_deref(), Some("011100000000"));
        assert_eq!(normalize("123456"), None);
        assert_eq!(
            normalize("ABCD-EFGH-JKMU"),
            None,
            "U is not in the alphabet"
        );
        assert_eq!(normalize("ABCD-EFGH-JKM"), None);
    }
}
