//! The master key and AES-256-GCM sealing: signing keys are stored sealed under the master
//! key, and a refresh token's successor pair under a key derived from the token.
//!
//! Rotating the master key (README, "Rotating the master key"): every node is given the new
//! key and, as `previous_master_key`, the old one; values sealed under either open, new ones
//! are sealed under the new key; `latchkey keys reseal` then re-seals every stored signing
//! key, after which the old key can go.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// 32-byte key that encrypts private signing keys at rest (AES-256-GCM) and derives the
/// server's HMAC keys. May carry the key it replaces, which still opens what it sealed.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    previous: Option<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Which key opened a sealed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenedWith {
    Current,
    Previous,
}

impl MasterKey {
    pub fn from_base64(s: &str) -> Result<Self, ()> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| ())?;
        Ok(MasterKey {
            key: bytes.try_into().map_err(|_| ())?,
            previous: None,
        })
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        MasterKey {
            key,
            previous: None,
        }
    }

    /// This key, still able to open what `previous` sealed (a rotation in progress).
    pub fn with_previous(mut self, previous: &MasterKey) -> Self {
        self.previous = (previous.key != self.key).then_some(previous.key);
        self
    }

    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    /// A purpose-bound subkey (SHA-256 of key and label), e.g. for CSRF tokens. Always of the
    /// current key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut data = self.key.to_vec();
        data.extend_from_slice(label.as_bytes());
        super::secret::sha256(&data)
    }

    /// `derive` of the current key, then of the previous one during a rotation: what signs
    /// comes first, and the rest is still accepted.
    pub fn derive_all(&self, label: &str) -> Vec<[u8; 32]> {
        let mut keys = vec![self.derive(label)];
        if let Some(previous) = self.previous {
            let old = MasterKey {
                key: previous,
                previous: None,
            };
            keys.push(old.derive(label));
        }
        keys
    }

    /// A sealing key of its own for one purpose, derived like `derive` (from the previous
    /// key too, during a rotation): what it seals cannot be opened as anything else, and a
    /// flood of it spends nothing of the master key's own nonce space.
    pub fn subkey(&self, label: &str) -> MasterKey {
        let mut keys = self.derive_all(label).into_iter();
        MasterKey {
            key: keys.next().unwrap_or_else(|| self.derive(label)),
            previous: keys.next(),
        }
    }

    /// Seal under the current key.
    pub fn encrypt(&self, plaintext: &[u8]) -> anyhow::Result<String> {
        seal(&self.key, plaintext)
    }

    /// Seal under the current key, bound to `context` (AES-GCM associated data, e.g. the
    /// id of the row it is stored in): it opens only with the same context, so a value
    /// copied into another row does not open there.
    pub fn encrypt_bound(&self, plaintext: &[u8], context: &[u8]) -> anyhow::Result<String> {
        seal_bound(&self.key, plaintext, context)
    }

    /// `decrypt_telling` for a value sealed with `encrypt_bound` and this `context`.
    pub fn decrypt_bound_telling(
        &self,
        sealed: &str,
        context: &[u8],
    ) -> anyhow::Result<(Vec<u8>, OpenedWith)> {
        match (open_bound(&self.key, sealed, context), &self.previous) {
            (Ok(plain), _) => Ok((plain, OpenedWith::Current)),
            (Err(_), Some(previous)) => {
                open_bound(previous, sealed, context).map(|plain| (plain, OpenedWith::Previous))
            }
            (Err(e), None) => Err(e),
        }
    }

    /// Open a value sealed under the current key or, during a rotation, the previous one.
    pub fn decrypt(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        self.decrypt_telling(sealed).map(|(plain, _)| plain)
    }

    /// `decrypt`, saying which key opened it (`keys reseal` re-seals those of the previous).
    pub fn decrypt_telling(&self, sealed: &str) -> anyhow::Result<(Vec<u8>, OpenedWith)> {
        match (open(&self.key, sealed), &self.previous) {
            (Ok(plain), _) => Ok((plain, OpenedWith::Current)),
            (Err(_), Some(previous)) => {
                open(previous, sealed).map(|plain| (plain, OpenedWith::Previous))
            }
            (Err(e), None) => Err(e),
        }
    }
}

/// AES-256-GCM with a random 96-bit nonce; output is base64(nonce || ciphertext || tag).
pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> anyhow::Result<String> {
    seal_bound(key, plaintext, &[])
}

pub fn open(key: &[u8; 32], sealed: &str) -> anyhow::Result<Vec<u8>> {
    open_bound(key, sealed, &[])
}

/// `seal` with `context` as the associated data.
fn seal_bound(key: &[u8; 32], plaintext: &[u8], context: &[u8]) -> anyhow::Result<String> {
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| anyhow::anyhow!("aead key"))?,
    );
    let mut nonce = [0u8; 12];
    rand::fill(&mut nonce);
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(context),
        &mut buf,
    )
    .map_err(|_| anyhow::anyhow!("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(STANDARD.encode(out))
}

fn open_bound(key: &[u8; 32], sealed: &str, context: &[u8]) -> anyhow::Result<Vec<u8>> {
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| anyhow::anyhow!("aead key"))?,
    );
    let raw = STANDARD.decode(sealed)?;
    if raw.len() < 12 + 16 {
        anyhow::bail!("sealed value too short");
    }
    let (nonce, ct) = raw.split_at(12);
    let nonce: [u8; 12] = nonce.try_into()?;
    let mut buf = ct.to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut buf,
        )
        .map_err(|_| anyhow::anyhow!("decryption failed: wrong master key or corrupted data"))?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_opens_both_and_seals_with_the_new_key() {
        let old = MasterKey::generate();
        let sealed_old = old.encrypt(b"rsa key").unwrap_or_default();
        let new = MasterKey::generate().with_previous(&old);
        assert!(new.has_previous());
        let (plain, by) = new.decrypt_telling(&sealed_old).unwrap_or_default_pair();
        assert_eq!(
            (plain.as_slice(), by),
            (&b"rsa key"[..], OpenedWith::Previous)
        );
        let sealed_new = new.encrypt(b"rsa key").unwrap_or_default();
        let (_, by) = new.decrypt_telling(&sealed_new).unwrap_or_default_pair();
        assert_eq!(by, OpenedWith::Current);
        // The old key alone cannot open what the new one sealed, and a key without its
        // previous cannot open the old values.
        assert!(old.decrypt(&sealed_new).is_err());
        let new_alone =
            MasterKey::from_base64(&new.to_base64()).unwrap_or_else(|()| MasterKey::generate());
        assert!(new_alone.decrypt(&sealed_old).is_err());
        // The CSRF subkey is made with the current key; the previous one's is still accepted.
        assert_eq!(new.derive("x"), new_alone.derive("x"));
        assert_eq!(new.derive_all("x"), [new.derive("x"), old.derive("x")]);
        assert_eq!(new_alone.derive_all("x"), [new.derive("x")]);
        // Naming the same key twice is no rotation.
        assert!(!old.clone().with_previous(&old).has_previous());
    }

    trait OrPair {
        fn unwrap_or_default_pair(self) -> (Vec<u8>, OpenedWith);
    }

    impl OrPair for anyhow::Result<(Vec<u8>, OpenedWith)> {
        fn unwrap_or_default_pair(self) -> (Vec<u8>, OpenedWith) {
            self.unwrap_or_else(|e| panic!("{e}"))
        }
    }
}
