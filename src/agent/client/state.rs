//! The local sync state: what the server has confirmed, and the batch in flight. The
//! batch is written down before it is sent, so after a crash or a dropped connection the
//! next run sends the very same batch (same idempotency key) and the server either applies
//! it or answers from the result it already stored.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::home::{AgentHome, HomeError};
use crate::agent::wire::SyncBatch;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// Confirmed by the server: collection → record id → hash of the masked content.
    pub synced: BTreeMap<String, BTreeMap<String, String>>,
    /// Sent (or about to be) and not yet confirmed.
    pub pending: Option<PendingBatch>,
    /// Unix seconds of the last complete sync.
    pub last_sync_at: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PendingBatch {
    pub batch: SyncBatch,
    /// What `synced` becomes for each change once confirmed: a hash, or gone (a delete).
    pub outcome: Vec<(String, String, Option<String>)>,
}

impl SyncState {
    pub fn load(path: &Path) -> Result<Self, HomeError> {
        match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|_| HomeError::Damaged(path.into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(HomeError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    pub fn save(&self, home: &AgentHome, path: &Path) -> Result<(), HomeError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| HomeError::Damaged(path.into()))?;
        let json = serde_json::to_vec(self).map_err(|_| HomeError::Damaged(path.into()))?;
        home.write_private(name, &json)
    }

    /// The pending batch was confirmed: its outcome becomes the synced state.
    pub fn confirm_pending(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        for (collection, id, hash) in pending.outcome {
            let records = self.synced.entry(collection.clone()).or_default();
            match hash {
                Some(hash) => {
                    records.insert(id, hash);
                }
                None => {
                    records.remove(&id);
                    if records.is_empty() {
                        self.synced.remove(&collection);
                    }
                }
            }
        }
    }
}
