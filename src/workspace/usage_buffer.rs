//! Usage rows wait here briefly and are written in batches, one transaction per workspace.
//!
//! Written one per call, every AI client read would also be a write, and a write makes the
//! workspace's read handles drop their page cache, which SQLCipher must then decrypt again:
//! on a search, most of the call's cost. A row reaches the database within `FLUSH_DELAY` of
//! its call, before the usage report reads the table, and when the server stops. A crash
//! loses at most that window of usage metadata; records and audit rows are never held here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::usage::{self, Usage};
use crate::ids::WorkspaceId;
use crate::store::{Store, StoreError};

/// How long a row may wait for its batch.
pub const FLUSH_DELAY: Duration = Duration::from_secs(1);
/// Rows held before a call writes them itself rather than waiting for the delay.
const MAX_PENDING: usize = 1_000;

/// What the caller of [`UsageBuffer::add`] must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// A flush is already on its way.
    Later,
    /// The buffer was empty: schedule a flush in `FLUSH_DELAY`.
    Schedule,
    /// The buffer is full: flush now.
    Now,
}

pub struct UsageBuffer {
    store: Arc<Store>,
    pending: Mutex<Pending>,
    /// Held while a flush writes, so one that starts later waits for rows taken earlier.
    flushing: Mutex<()>,
}

#[derive(Default)]
struct Pending {
    rows: HashMap<WorkspaceId, Vec<(i64, Usage)>>,
    count: usize,
}

impl UsageBuffer {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            pending: Mutex::new(Pending::default()),
            flushing: Mutex::new(()),
        }
    }

    /// Holds `usage`, recorded at `at`, for the next batch.
    pub fn add(&self, workspace: WorkspaceId, at: i64, usage: Usage) -> Due {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.rows.entry(workspace).or_default().push((at, usage));
        pending.count += 1;
        match pending.count {
            1 => Due::Schedule,
            n if n >= MAX_PENDING => Due::Now,
            _ => Due::Later,
        }
    }

    /// Writes every held row. Blocks on the databases' writers.
    pub fn flush(&self) {
        let _flushing = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (workspace, rows) in taken.rows {
            self.write(workspace, rows);
        }
    }

    /// Writes the rows held for `workspace`, so a read of its usage table sees every call.
    pub fn flush_workspace(&self, workspace: WorkspaceId) {
        let _flushing = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let rows = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let rows = pending.rows.remove(&workspace).unwrap_or_default();
            pending.count -= rows.len();
            rows
        };
        if !rows.is_empty() {
            self.write(workspace, rows);
        }
    }

    /// One transaction for a workspace's rows. Rows of a workspace that can no longer be
    /// written (purged meanwhile) are dropped with a warning: they describe calls, they
    /// are not anyone's data.
    fn write(&self, workspace: WorkspaceId, rows: Vec<(i64, Usage)>) {
        let written = self.store.workspace(workspace).and_then(|db| {
            db.write(|tx| {
                for (at, row) in &rows {
                    usage::insert(tx, row, *at)?;
                }
                Ok::<_, StoreError>(())
            })
        });
        if let Err(e) = written {
            tracing::warn!(%workspace, rows = rows.len(), error = %e, "usage rows not written");
        }
    }
}
