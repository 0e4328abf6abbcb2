//! The chain's arithmetic: each row's SHA-256 covers the previous row's hash and every
//! stored field of the row; the head and the sweep's anchors carry an HMAC under a key
//! derived from the master key, so neither can be forged without it.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub type Hash = [u8; 32];

/// The `prev_hash` of a chain's first row.
pub const GENESIS: Hash = [0; 32];

/// A row's stored fields, in the order they are hashed.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct RowFields {
    pub seq: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The details JSON exactly as stored.
    pub details: String,
}

/// The row's hash: SHA-256 over a domain tag, the previous hash and the fields as a JSON
/// array (an unambiguous encoding: every string is quoted and escaped).
pub fn row_hash(prev: &Hash, row: &RowFields) -> Hash {
    let fields = (
        row.seq,
        row.at,
        &row.actor_kind,
        &row.actor_id,
        &row.action,
        &row.target,
        &row.ip,
        &row.user_agent,
        &row.request_id,
        &row.details,
    );
    let encoded = serde_json::to_vec(&fields).expect("strings and integers serialise");
    let mut digest = Sha256::new();
    digest.update(b"strongbox-audit-row-v1");
    digest.update(prev);
    digest.update(&encoded);
    digest.finalize().into()
}

/// The MAC key for heads and anchors; one per install, derived by HKDF.
pub struct MacKey(Hmac<Sha256>);

impl MacKey {
    pub fn new(key: &[u8]) -> Self {
        Self(Hmac::new_from_slice(key).expect("HMAC accepts any key length"))
    }

    /// Signs where a chain ends: its label (which log), last seq and last hash.
    pub fn head(&self, chain: &str, seq: i64, hash: &Hash) -> Vec<u8> {
        self.sign(&[b"head", chain.as_bytes(), &seq.to_be_bytes(), hash])
    }

    /// Signs a sweep's anchor: rows up to `through_seq` were removed, `removed` of them in
    /// this sweep, the last with hash `last_hash`.
    pub fn anchor(
        &self,
        chain: &str,
        through_seq: i64,
        last_hash: &Hash,
        removed: i64,
        swept_at: i64,
    ) -> Vec<u8> {
        self.sign(&[
            b"anchor",
            chain.as_bytes(),
            &through_seq.to_be_bytes(),
            last_hash,
            &removed.to_be_bytes(),
            &swept_at.to_be_bytes(),
        ])
    }

    /// Each part is length-prefixed, so no two sequences of parts sign the same bytes.
    fn sign(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
}

/// Compares a stored MAC with the expected one in constant time.
pub fn mac_matches(expected: &[u8], stored: &[u8]) -> bool {
    expected.ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RowFields {
        RowFields {
            seq: 1,
            at: 1_700_000_000,
            actor_kind: "user".into(),
            actor_id: Some("u1".into()),
            action: "sign_in.succeeded".into(),
            target: None,
            ip: Some("192.0.2.1".into()),
            user_agent: None,
            request_id: Some("r1".into()),
            details: r#"{"method":"password"}"#.into(),
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let base = row_hash(&GENESIS, &row());
        assert_ne!(row_hash(&[1; 32], &row()), base);
        let changes: Vec<fn(&mut RowFields)> = vec![
            |r| r.seq = 2,
            |r| r.at += 1,
            |r| r.actor_kind = "agent".into(),
            |r| r.actor_id = None,
            |r| r.action = "sign_in.failed".into(),
            |r| r.target = Some(String::new()),
            |r| r.ip = None,
            |r| r.user_agent = Some("x".into()),
            |r| r.request_id = Some("r2".into()),
            |r| r.details = r#"{"method":"passwore"}"#.into(),
        ];
        for change in changes {
            let mut changed = row();
            change(&mut changed);
            assert_ne!(row_hash(&GENESIS, &changed), base, "{changed:?}");
        }
        // Moving text from one field to the next is a different row too.
        let mut shifted = row();
        shifted.actor_id = Some("u".into());
        shifted.action = "1sign_in.succeeded".into();
        assert_ne!(row_hash(&GENESIS, &shifted), base);
    }

    #[test]
    fn macs_bind_every_part() {
        let key = MacKey::new(b"k");
        let head = key.head("system", 5, &[7; 32]);
        assert!(mac_matches(&head, &key.head("system", 5, &[7; 32])));
        assert!(!mac_matches(&head, &key.head("other", 5, &[7; 32])));
        assert!(!mac_matches(&head, &key.head("system", 4, &[7; 32])));
        assert!(!mac_matches(
            &head,
            &MacKey::new(b"j").head("system", 5, &[7; 32])
        ));
        let anchor = key.anchor("system", 9, &[1; 32], 9, 100);
        assert!(!mac_matches(
            &anchor,
            &key.anchor("system", 9, &[1; 32], 8, 100)
        ));
        assert!(!mac_matches(
            &anchor,
            &key.anchor("system", 9, &[1; 32], 9, 101)
        ));
    }
}
