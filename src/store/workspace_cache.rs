//! The bounded cache of open workspace databases.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use lru::LruCache;

use super::{Database, StoreError};
use crate::ids::WorkspaceId;

/// Keeps the most recently used workspaces open, and never opens a second handle (and so a
/// second writer) for a workspace whose evicted handle is still in use by a request.
///
/// Lock order: this cache's lock is taken before any control-database connection, never
/// while holding one.
pub struct WorkspaceCache {
    inner: Mutex<Inner>,
}

struct Inner {
    recent: LruCache<WorkspaceId, Arc<Database>>,
    /// Every handle that may still be alive, cached or not. Dead entries are pruned once
    /// they outnumber the cache, so this stays bounded too.
    live: HashMap<WorkspaceId, Weak<Database>>,
}

impl WorkspaceCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                recent: LruCache::new(capacity),
                live: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handle for `id`; `open` runs only when no handle for it is alive. The lock is
    /// held across `open` so two callers never open one file twice; a raw-key open of an
    /// up-to-date database takes well under a millisecond and no write lock.
    pub fn get_or_open(
        &self,
        id: WorkspaceId,
        open: impl FnOnce() -> Result<Database, StoreError>,
    ) -> Result<Arc<Database>, StoreError> {
        let mut inner = self.lock();
        if let Some(db) = inner.recent.get(&id) {
            return Ok(Arc::clone(db));
        }
        let db = match inner.live.get(&id).and_then(Weak::upgrade) {
            Some(db) => db,
            None => Arc::new(open()?),
        };
        Ok(keep(inner, id, db))
    }

    /// Adds a workspace that `create` makes; it fails if the workspace already exists.
    pub fn insert_new(
        &self,
        id: WorkspaceId,
        create: impl FnOnce() -> Result<Database, StoreError>,
    ) -> Result<Arc<Database>, StoreError> {
        let inner = self.lock();
        let db = Arc::new(create()?);
        Ok(keep(inner, id, db))
    }

    /// Forgets the workspace's handle, returning it if one was alive, so the caller can
    /// drop it (closing the database once no request holds it) outside the cache's lock.
    pub fn remove(&self, id: WorkspaceId) -> Option<Arc<Database>> {
        let mut inner = self.lock();
        let cached = inner.recent.pop(&id);
        let live = inner.live.remove(&id).and_then(|handle| handle.upgrade());
        cached.or(live)
    }

    /// How many workspaces the cache holds open.
    pub fn len(&self) -> usize {
        self.lock().recent.len()
    }
}

/// Records `db` as the latest handle for `id`, then releases the lock before closing
/// whatever was evicted: closing a database checkpoints its WAL.
fn keep(mut inner: MutexGuard<'_, Inner>, id: WorkspaceId, db: Arc<Database>) -> Arc<Database> {
    let evicted = inner.remember(id, &db);
    drop(inner);
    drop(evicted);
    db
}

impl Inner {
    fn remember(
        &mut self,
        id: WorkspaceId,
        db: &Arc<Database>,
    ) -> Option<(WorkspaceId, Arc<Database>)> {
        if self.live.len() >= 2 * self.recent.cap().get() {
            self.live.retain(|_, handle| handle.strong_count() > 0);
        }
        self.live.insert(id, Arc::downgrade(db));
        self.recent.push(id, Arc::clone(db))
    }
}
