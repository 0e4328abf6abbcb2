//! High-entropy one-way secrets: session ids, email links, backup codes. Each is 256 random
//! bits shown once; only its SHA-256 is stored, which is right for secrets this strong.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::random_bytes;

/// A freshly generated secret: the text to hand out once, and the hash to store.
pub struct IssuedSecret {
    pub text: Zeroizing<String>,
    pub hash: SecretHash,
}

/// The stored form of a secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// Hashes a presented secret. The prefix is part of the text, so a secret of one kind
    /// never matches a hash of another.
    pub fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// Constant-time comparison, for the rare check that is not an indexed lookup.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

/// Generates `<prefix><43 base64url chars>`: 256 bits of randomness with a recognisable kind.
pub fn issue(prefix: &str) -> IssuedSecret {
    let bytes = random_bytes::<32>();
    let mut text = Zeroizing::new(String::with_capacity(prefix.len() + 43));
    text.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(&bytes[..], &mut text);
    let hash = SecretHash::of(&text);
    IssuedSecret { text, hash }
}

/// Whether `text` has the shape of a secret `issue(prefix)` makes: checked before any
/// lookup, so junk never reaches the database.
pub fn well_formed(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_secrets_are_unique_well_formed_and_hash_back() {
        let a = issue("sbx_t_");
        let b = issue("sbx_t_");
        assert_ne!(*a.text, *b.text);
        assert!(well_formed("sbx_t_", &a.text));
        assert!(!well_formed("sbx_x_", &a.text));
        assert!(!well_formed("sbx_t_", "sbx_t_short"));
        assert!(SecretHash::of(&a.text).matches(&a.hash));
        assert!(!SecretHash::of(&b.text).matches(&a.hash));
        assert_eq!(format!("{:?}", a.hash), "SecretHash([redacted])");
    }
}
