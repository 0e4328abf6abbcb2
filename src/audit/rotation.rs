//! The audit logs' part in a key rotation, and the only code that signs a head or an anchor
//! again after the fact. A rotation to a new master key changes the MAC key too: each chain
//! is proven under the old key and re-signed under the new one in the same transaction, so
//! a broken chain is never made to look whole.

use rusqlite::Connection;

use super::chain::MacKey;
use super::{Broken, Chain, Entry, MAC_KEY_VERSION, Verified, append_row, repo, to_hash, verify};
use crate::clock::SharedClock;
use crate::crypto::{KeyPurpose, KeyRing};
use crate::request_meta::RequestMeta;

/// Signs for `strongbox keys rotate`, which works on databases it opened itself.
pub struct RotationSigner {
    old: MacKey,
    /// The new master key's MAC key; `None` when the master key stays, and so do the MACs.
    new: Option<MacKey>,
    clock: SharedClock,
}

impl RotationSigner {
    pub fn new(old: &KeyRing, new: Option<&KeyRing>, clock: SharedClock) -> Self {
        let mac = |ring: &KeyRing| {
            MacKey::new(ring.derive(KeyPurpose::AuditMac, MAC_KEY_VERSION).expose())
        };
        Self {
            old: mac(old),
            new: new.map(mac),
            clock,
        }
    }

    /// Walks the chain under the MAC key in use now.
    pub fn verify(
        &self,
        conn: &Connection,
        chain: Chain,
    ) -> rusqlite::Result<Result<Verified, Broken>> {
        verify::verify(conn, &self.old, chain)
    }

    /// In `tx` on the chain's database: when the master key changes, proves the chain under
    /// the old MAC key and signs its head and anchors again under the new one; then appends
    /// `entry`, signed under whichever key the chain is under now. A broken chain is
    /// returned with nothing changed.
    pub fn finish(
        &self,
        tx: &Connection,
        chain: Chain,
        entry: Entry,
    ) -> rusqlite::Result<Result<(), Broken>> {
        let label = chain.label();
        if let Some(new) = &self.new {
            if let Err(broken) = verify::verify(tx, &self.old, chain)? {
                return Ok(Err(broken));
            }
            resign(tx, new, &label)?;
        }
        let key = self.new.as_ref().unwrap_or(&self.old);
        let at = self.clock.now();
        append_row(tx, key, &label, at, RequestMeta::default(), entry)?;
        Ok(Ok(()))
    }
}

/// Signs the head and every anchor again under `key`. The guard against changing anchors is
/// dropped and created again inside the caller's transaction, so it never lapses for anyone
/// else (and one found missing is restored).
fn resign(tx: &Connection, key: &MacKey, label: &str) -> rusqlite::Result<()> {
    let anchors = repo::anchors(tx)?;
    tx.execute_batch("DROP TRIGGER IF EXISTS audit_anchors_append_only")?;
    for anchor in &anchors {
        let mac = key.anchor(
            label,
            anchor.through_seq,
            &to_hash(&anchor.last_hash),
            anchor.removed,
            anchor.swept_at,
        );
        repo::set_anchor_mac(tx, anchor.through_seq, &mac)?;
    }
    tx.execute_batch(repo::ANCHORS_APPEND_ONLY)?;
    if let Some(head) = repo::head(tx)? {
        let hash = to_hash(&head.hash);
        repo::set_head(tx, head.seq, &hash, &key.head(label, head.seq, &hash))?;
    }
    Ok(())
}
