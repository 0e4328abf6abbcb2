//! The audit log: one hash-chained log per workspace (in its own database) and a system log
//! in the control database. Rows are append-only (the database's triggers refuse changes);
//! the retention sweep removes old rows from the start of a chain after writing a signed
//! anchor, so `strongbox audit verify` still proves what remains.
//!
//! A row names who acted, what they did (a closed set), on what, from where (IP, user agent
//! and request id of the request being served), and details: counts, roles, kinds, never a
//! secret or any record content.

mod action;
mod chain;
mod export;
mod repo;
mod rotation;
mod verify;

pub use action::{Action, Actor, ActorKind, UnknownName};
pub use export::{AuditRow, MAX_EXPORT_ROWS, csv_header, csv_line};
pub use repo::Filter;
pub use rotation::RotationSigner;
pub use verify::{Broken, Problem, Verified};

use std::fmt;
use std::sync::Arc;

use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::clock::SharedClock;
use crate::crypto::KeyPurpose;
use crate::ids::WorkspaceId;
use crate::request_meta::RequestMeta;
use crate::store::{Database, Store, StoreError};
use chain::{Hash, MacKey, RowFields};

/// The version of the key that signs heads and anchors.
const MAC_KEY_VERSION: u32 = 1;

/// Which log: the system's, or one workspace's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    System,
    Workspace(WorkspaceId),
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::Workspace(id) => write!(f, "workspace {id}"),
        }
    }
}

impl Chain {
    /// What the MACs bind a head or an anchor to, so one log's cannot pass for another's.
    fn label(&self) -> String {
        match self {
            Self::System => "system".into(),
            Self::Workspace(id) => id.to_string(),
        }
    }
}

/// One event, before it is stamped with the time and the request and chained.
#[derive(Clone, Debug)]
pub struct Entry {
    actor: Actor,
    action: Action,
    target: Option<String>,
    details: Map<String, Value>,
}

impl Entry {
    pub fn new(actor: Actor, action: Action) -> Self {
        Self {
            actor,
            action,
            target: None,
            details: Map::new(),
        }
    }

    /// What was acted on, as `kind:id` (`user:…`, `agent:…`, `grant:…`).
    pub fn target(mut self, kind: &'static str, id: impl fmt::Display) -> Self {
        self.target = Some(format!("{kind}:{id}"));
        self
    }

    /// A detail under a fixed key. Callers pass counts, roles, kinds and ids: never a
    /// secret, never submitted content.
    pub fn detail(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// Writes, reads, verifies and sweeps the audit logs.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    clock: SharedClock,
    key: MacKey,
}

impl AuditLog {
    pub fn new(store: Arc<Store>, clock: SharedClock) -> Self {
        let key = store.derive_key(KeyPurpose::AuditMac, MAC_KEY_VERSION);
        let key = MacKey::new(key.expose());
        Self {
            inner: Arc::new(Inner { store, clock, key }),
        }
    }

    /// Appends to `chain` inside the caller's transaction on that chain's database, so the
    /// row commits (or not) with the change it records.
    pub fn append(&self, tx: &Connection, chain: Chain, entry: Entry) -> rusqlite::Result<()> {
        let meta = RequestMeta::current().unwrap_or_default();
        let at = self.inner.clock.now();
        append_row(tx, &self.inner.key, &chain.label(), at, meta, entry)
    }

    /// Appends to `chain` in a transaction of its own.
    pub fn record(&self, chain: Chain, entry: Entry) -> Result<(), StoreError> {
        self.with_database(chain, |db| {
            db.write(|tx| Ok(self.append(tx, chain, entry)?))
        })
    }

    /// Appends to `chain` after the change it records has committed in another database;
    /// a failure is logged (by action, never content), as the change cannot be undone.
    pub fn record_after(&self, chain: Chain, entry: Entry) {
        let action = entry.action;
        if let Err(e) = self.record(chain, entry) {
            let error = crate::telemetry::error_chain(&e);
            tracing::error!(%chain, %action, error = %error, "audit row not written");
        }
    }

    /// Every chain: the system log, then each workspace's.
    pub fn chains(&self) -> Result<Vec<Chain>, StoreError> {
        let workspaces = self.inner.store.workspace_keys()?;
        let mut chains = vec![Chain::System];
        chains.extend(
            workspaces
                .into_iter()
                .map(|w| Chain::Workspace(w.workspace)),
        );
        Ok(chains)
    }

    /// Walks the chain and reports the first broken link, if any.
    pub fn verify(&self, chain: Chain) -> Result<Result<Verified, Broken>, StoreError> {
        self.with_database(chain, |db| {
            db.read(|c| Ok(verify::verify(c, &self.inner.key, chain)?))
        })
    }

    /// Removes the rows older than `cutoff` from the start of the chain, writing a signed
    /// anchor first (the delete trigger allows only anchored rows) and an `audit.swept` row
    /// after. Returns how many rows went.
    pub fn sweep(&self, chain: Chain, cutoff: i64) -> Result<i64, StoreError> {
        let (label, now) = (chain.label(), self.inner.clock.now());
        self.with_database(chain, |db| {
            db.write(|tx| Ok(sweep_chain(tx, &self.inner.key, &label, now, cutoff)?))
        })
    }

    /// Up to `limit` rows matching `filter`, newest first, older than `before` when given.
    pub fn page(
        &self,
        chain: Chain,
        filter: &Filter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = self.with_database(chain, |db| {
            db.read(|c| Ok::<_, StoreError>(repo::page(c, filter, before, limit)?))
        })?;
        Ok(rows.into_iter().map(AuditRow::from).collect())
    }

    /// Hands every row matching `filter` to `visit`, oldest first; stops when it says so.
    pub fn each(
        &self,
        chain: Chain,
        filter: &Filter,
        mut visit: impl FnMut(AuditRow) -> bool,
    ) -> Result<(), StoreError> {
        self.with_database(chain, |db| {
            db.read(|c| Ok(repo::each_row(c, filter, |row| visit(row.into()))?))
        })
    }

    fn with_database<T>(
        &self,
        chain: Chain,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match chain {
            Chain::System => f(self.inner.store.control()),
            Chain::Workspace(id) => f(self.inner.store.workspace(id)?.as_ref()),
        }
    }
}

/// Chains `entry` onto the log in `tx` and moves the signed head to it.
fn append_row(
    tx: &Connection,
    key: &MacKey,
    label: &str,
    at: i64,
    meta: RequestMeta,
    entry: Entry,
) -> rusqlite::Result<()> {
    let prev = match repo::head(tx)? {
        Some(head) => (head.seq, to_hash(&head.hash)),
        None => (0, chain::GENESIS),
    };
    let row = RowFields {
        seq: prev.0 + 1,
        at,
        actor_kind: entry.actor.kind.as_str().into(),
        actor_id: entry.actor.id,
        action: entry.action.as_str().into(),
        target: entry.target,
        ip: meta.ip,
        user_agent: meta.user_agent,
        request_id: meta.request_id,
        details: Value::Object(entry.details).to_string(),
    };
    let hash = chain::row_hash(&prev.1, &row);
    repo::insert(tx, &row, &prev.1, &hash)?;
    repo::set_head(tx, row.seq, &hash, &key.head(label, row.seq, &hash))
}

/// Removes the expired start of the log in `tx`: anchor first (the delete trigger allows
/// only anchored rows), then the rows, then an `audit.swept` row.
fn sweep_chain(
    tx: &Connection,
    key: &MacKey,
    label: &str,
    now: i64,
    cutoff: i64,
) -> rusqlite::Result<i64> {
    let Some((through_seq, last_hash, removed)) = repo::expired_prefix(tx, cutoff)? else {
        return Ok(0);
    };
    let last_hash = to_hash(&last_hash);
    let anchor = repo::Anchor {
        through_seq,
        last_hash: last_hash.to_vec(),
        removed,
        swept_at: now,
        mac: key.anchor(label, through_seq, &last_hash, removed, now),
    };
    repo::insert_anchor(tx, &anchor)?;
    repo::delete_through(tx, through_seq)?;
    let entry = Entry::new(Actor::system(), Action::AuditSwept)
        .detail("removed", removed)
        .detail("through_seq", through_seq)
        .detail("cutoff", cutoff);
    append_row(tx, key, label, now, RequestMeta::default(), entry)?;
    Ok(removed)
}

fn to_hash(bytes: &[u8]) -> Hash {
    // A stored hash of the wrong length cannot match any computed one; verify reports it.
    bytes.try_into().unwrap_or_default()
}

#[cfg(test)]
mod tests;
