//! Storage: the control database, one encrypted database per workspace, their migrations,
//! and the bounded cache of open workspace handles.

mod blocking;
pub mod columns;
mod data_dir;
mod database;
mod error;
mod lock;
mod migrations;
mod rekey;
mod sqlcipher;
mod workspace_cache;

pub use blocking::BlockingPool;
pub use data_dir::{CONTROL_DB, DataDir, INSTALL_FILE, InstallInfo, InstallState, PendingRotation};
pub use database::{ConnectionSettings, Database};
pub use error::StoreError;
pub use lock::{DataDirLock, KEYS_LOCK, SERVER_LOCK};
pub use rekey::{KeyInUse, PendingKey, Rekeying};
pub use sqlcipher::OpenMode;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, params};

use crate::clock::{Clock, SystemClock};
use crate::crypto::{KeyPurpose, KeyRing};
use crate::ids::WorkspaceId;
use workspace_cache::WorkspaceCache;

/// The key version new workspaces are created with.
const WORKSPACE_KEY_VERSION: u32 = 1;
/// How often a readiness check proves the control database takes writes; in between, a
/// read proves it opens, so probes never write more than this however often they come.
pub const READY_WRITE_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
pub struct StoreSettings {
    pub workspace_cache_size: NonZeroUsize,
    pub connections: ConnectionSettings,
}

impl From<&crate::config::Storage> for StoreSettings {
    fn from(c: &crate::config::Storage) -> Self {
        Self {
            workspace_cache_size: NonZeroUsize::new(c.workspace_cache_size)
                .unwrap_or(NonZeroUsize::MIN),
            connections: ConnectionSettings {
                read_connections: c.read_connections_per_db,
                busy_timeout: Duration::from_millis(c.busy_timeout_ms.into()),
            },
        }
    }
}

/// A workspace's key, as `strongbox keys status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceKey {
    pub workspace: WorkspaceId,
    pub key_version: u32,
}

pub struct Store {
    /// Shared hold on `KEYS_LOCK` for the store's lifetime: no rotation while it is open.
    _keys_in_use: DataDirLock,
    layout: DataDir,
    keys: KeyRing,
    control_key_version: u32,
    settings: StoreSettings,
    control: Database,
    workspaces: WorkspaceCache,
    /// When readiness last proved a write.
    last_write_probe: Mutex<Option<Instant>>,
}

impl Store {
    /// Opens the control database; `OpenMode::Create` makes it (only `init` does), and
    /// `Existing` refuses to run without it rather than start an empty install.
    pub fn open(
        layout: DataDir,
        keys: KeyRing,
        install: &InstallInfo,
        settings: StoreSettings,
        mode: OpenMode,
    ) -> Result<Self, StoreError> {
        let path = layout.control_db();
        if mode == OpenMode::Existing && !path.exists() {
            return Err(StoreError::MissingControlDb { path });
        }
        let keys_in_use = DataDirLock::try_acquire_shared(&layout, KEYS_LOCK)?
            .ok_or(StoreError::RotationRunning)?;
        let key = keys.derive(KeyPurpose::ControlDb, install.control_key_version);
        let control = Database::open(&path, key, &migrations::CONTROL, mode, settings.connections)?;
        match mode {
            OpenMode::Create => {
                control.write(|tx| record_key_version(tx, install.control_key_version))?
            }
            OpenMode::Existing => {
                control.read(|conn| check_key_version(conn, install.control_key_version))?
            }
        }
        Ok(Self {
            _keys_in_use: keys_in_use,
            layout,
            keys,
            control_key_version: install.control_key_version,
            settings,
            control,
            workspaces: WorkspaceCache::new(settings.workspace_cache_size),
            last_write_probe: Mutex::new(None),
        })
    }

    pub fn control(&self) -> &Database {
        &self.control
    }

    pub fn layout(&self) -> &DataDir {
        &self.layout
    }

    /// Registers the workspace in the control database and creates its encrypted file.
    /// The control row commits only if the file was created.
    pub fn create_workspace(&self, id: WorkspaceId) -> Result<Arc<Database>, StoreError> {
        self.create_workspace_with(id, |_| Ok(()), |_| Ok(()))
    }

    /// Like `create_workspace`, with more control-database writes (name, owner) made in
    /// the same transaction, so a workspace never exists half-registered, and a first
    /// write into the new file (its audit log's first row) made before that commits.
    pub fn create_workspace_with<E: From<StoreError>>(
        &self,
        id: WorkspaceId,
        register: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), E>,
        first_write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), E>,
    ) -> Result<Arc<Database>, E> {
        let mut refused = None;
        let created = self.workspaces.insert_new(id, || {
            self.control.write(|tx| {
                let inserted = tx.execute(
                    "INSERT INTO workspaces (id, key_version, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO NOTHING",
                    params![id.to_string(), WORKSPACE_KEY_VERSION, SystemClock.now()],
                )?;
                if inserted == 0 {
                    return Err(StoreError::WorkspaceExists);
                }
                if let Err(e) = register(tx) {
                    refused = Some(e);
                    return Err(StoreError::RegistrationRefused);
                }
                self.layout.create_workspace_dir(id)?;
                let db = self.open_workspace_file(id, WORKSPACE_KEY_VERSION, OpenMode::Create)?;
                db.write(|wtx| match first_write(wtx) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        refused = Some(e);
                        Err(StoreError::RegistrationRefused)
                    }
                })?;
                Ok(db)
            })
        });
        match (created, refused) {
            (Ok(db), _) => Ok(db),
            (Err(_), Some(reason)) => Err(reason),
            (Err(e), None) => Err(e.into()),
        }
    }

    /// Returns the workspace's handle, opening its file if no handle is open.
    pub fn workspace(&self, id: WorkspaceId) -> Result<Arc<Database>, StoreError> {
        self.workspaces.get_or_open(id, || {
            let version = self
                .workspace_key_version(id)?
                .ok_or(StoreError::WorkspaceNotFound)?;
            self.open_workspace_file(id, version, OpenMode::Existing)
        })
    }

    /// Deletes a workspace for good. `unregister` runs first, in the control transaction:
    /// it re-checks that the deletion is still wanted (answering `false` leaves everything as
    /// it was) and may write more. Then the workspace's control rows go (its memberships,
    /// grants, agents and tokens cascade) and a deletion marker is written, all in one
    /// commit. Only after that is its handle evicted and its directory removed: a crash in
    /// between leaves a marker for `finish_workspace_deletions`, never a registered
    /// workspace without its file.
    pub fn delete_workspace_with<E: From<StoreError>>(
        &self,
        id: WorkspaceId,
        unregister: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let deleted = self.control.write(|tx| -> Result<bool, E> {
            if !unregister(tx)? {
                return Ok(false);
            }
            let removed = tx
                .execute("DELETE FROM workspaces WHERE id = ?1", [id.to_string()])
                .map_err(StoreError::from)?;
            if removed == 0 {
                // Nothing `unregister` wrote may commit for a workspace that is not there.
                return Err(StoreError::WorkspaceNotFound.into());
            }
            tx.execute(
                "INSERT INTO workspace_deletions (workspace_id, deleted_at) VALUES (?1, ?2)
                 ON CONFLICT (workspace_id) DO NOTHING",
                params![id.to_string(), SystemClock.now()],
            )
            .map_err(StoreError::from)?;
            Ok(true)
        })?;
        if deleted {
            self.remove_workspace_files(id)?;
        }
        Ok(deleted)
    }

    /// Removes the directories of workspaces whose control rows were deleted by a run that
    /// stopped before removing them. Returns how many it finished.
    pub fn finish_workspace_deletions(&self) -> Result<usize, StoreError> {
        let pending: Vec<String> = self.control.read(|conn| {
            let mut stmt = conn.prepare("SELECT workspace_id FROM workspace_deletions")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect::<Result<_, _>>().map_err(StoreError::from)
        })?;
        for id in &pending {
            let id = id
                .parse()
                .map_err(|_| StoreError::Corrupt("workspace id in workspace_deletions"))?;
            self.remove_workspace_files(id)?;
        }
        Ok(pending.len())
    }

    /// Evicts the workspace's handle, removes its directory, then its deletion marker.
    /// An evicted handle still held by a request closes when that request ends; its files
    /// are unlinked already, so nothing it writes lands on disk under the workspace's name.
    fn remove_workspace_files(&self, id: WorkspaceId) -> Result<(), StoreError> {
        drop(self.workspaces.remove(id));
        self.layout.remove_workspace_dir(id)?;
        self.control.write(|tx| {
            tx.execute(
                "DELETE FROM workspace_deletions WHERE workspace_id = ?1",
                [id.to_string()],
            )
            .map_err(StoreError::from)
        })?;
        Ok(())
    }

    /// How many workspace databases the cache holds open right now.
    pub fn open_workspace_count(&self) -> usize {
        self.workspaces.len()
    }

    pub fn control_key_id(&self) -> String {
        KeyPurpose::ControlDb.key_id(self.control_key_version)
    }

    pub fn control_key_version(&self) -> u32 {
        self.control_key_version
    }

    /// A key for a purpose outside the databases (CSRF tokens, JWT signing, manifest MACs).
    pub fn derive_key(&self, purpose: KeyPurpose, version: u32) -> crate::crypto::DerivedKey {
        self.keys.derive(purpose, version)
    }

    pub fn master_key_fingerprint(&self) -> String {
        self.keys.fingerprint()
    }

    pub fn workspace_keys(&self) -> Result<Vec<WorkspaceKey>, StoreError> {
        self.control.read(workspace_keys)
    }

    /// Proves the control database takes a write and reads it back.
    /// Whether the control database answers: a write and read-back of a fresh nonce at
    /// most once per `READY_WRITE_INTERVAL`, a read otherwise.
    pub fn check_ready(&self) -> Result<bool, StoreError> {
        // Held through the write, so probes arriving meanwhile wait and then only read.
        let mut last_write = self
            .last_write_probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last_write.is_some_and(|at| at.elapsed() < READY_WRITE_INTERVAL) {
            drop(last_write);
            let probes: i64 = self.control.read(|conn| {
                conn.query_row("SELECT count(*) FROM readiness_probe", [], |row| row.get(0))
                    .map_err(StoreError::from)
            })?;
            return Ok(probes == 1);
        }
        let nonce = hex::encode(*crate::crypto::random_bytes::<16>());
        self.control.write(|tx| {
            tx.execute(
                "INSERT INTO readiness_probe (id, nonce, checked_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET nonce = excluded.nonce, checked_at = excluded.checked_at",
                params![nonce, SystemClock.now()],
            )
            .map_err(StoreError::from)
        })?;
        let read_back: String = self.control.read(|conn| {
            conn.query_row(
                "SELECT nonce FROM readiness_probe WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .map_err(StoreError::from)
        })?;
        let ready = read_back == nonce;
        if ready {
            *last_write = Some(Instant::now());
        }
        Ok(ready)
    }

    fn workspace_key_version(&self, id: WorkspaceId) -> Result<Option<u32>, StoreError> {
        self.control.read(|conn| {
            conn.query_row(
                "SELECT key_version FROM workspaces WHERE id = ?1",
                [id.to_string()],
                |row| row.get(0),
            )
            .optional()
            .map_err(StoreError::from)
        })
    }

    fn open_workspace_file(
        &self,
        id: WorkspaceId,
        key_version: u32,
        mode: OpenMode,
    ) -> Result<Database, StoreError> {
        let path = self.layout.workspace_db(id);
        if mode == OpenMode::Existing && !path.exists() {
            return Err(StoreError::WorkspaceNotFound);
        }
        let key = self.keys.derive(KeyPurpose::WorkspaceDb(id), key_version);
        let db = Database::open(
            &path,
            key,
            &migrations::WORKSPACE,
            mode,
            self.settings.connections,
        )?;
        if mode == OpenMode::Create {
            db.write(|tx| {
                record_key_version(tx, key_version)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('workspace_id', ?1)",
                    [id.to_string()],
                )?;
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(db)
    }
}

/// Brings an in-memory connection to the workspace schema, for unit tests of the SQL that
/// runs against workspace databases.
#[cfg(test)]
pub(crate) fn migrate_workspace_for_tests(conn: &mut rusqlite::Connection) {
    migrations::migrate(
        conn,
        &migrations::WORKSPACE,
        std::path::Path::new(":memory:"),
    )
    .expect("workspace schema applies");
}

/// Brings an in-memory connection to the control schema, for unit tests of the SQL that
/// runs against the control database.
#[cfg(test)]
pub(crate) fn migrate_control_for_tests(conn: &mut rusqlite::Connection) {
    migrations::migrate(conn, &migrations::CONTROL, std::path::Path::new(":memory:"))
        .expect("control schema applies");
}

/// Every registered workspace and its key version, in id order.
fn workspace_keys(conn: &rusqlite::Connection) -> Result<Vec<WorkspaceKey>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, key_version FROM workspaces ORDER BY id")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))
    })?;
    let mut keys = Vec::new();
    for row in rows {
        let (id, key_version) = row?;
        keys.push(WorkspaceKey {
            workspace: parse_workspace_id(&id)?,
            key_version,
        });
    }
    Ok(keys)
}

/// Ids are written only by `create_workspace`, so a bad one means corruption.
fn parse_workspace_id(id: &str) -> Result<WorkspaceId, StoreError> {
    id.parse()
        .map_err(|_| StoreError::Corrupt("workspace id in control db"))
}

fn record_key_version(tx: &rusqlite::Transaction<'_>, version: u32) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('key_version', ?1)",
        [version.to_string()],
    )?;
    Ok(())
}

/// Checks a database file restored from a backup all through with `key`: SQLCipher's
/// page MACs, SQLite's integrity check, and the key version (and, for a workspace, the id)
/// recorded inside it.
pub fn check_database_copy(
    path: &std::path::Path,
    key: &crate::crypto::DerivedKey,
    key_version: u32,
    workspace: Option<WorkspaceId>,
) -> Result<(), StoreError> {
    let access = sqlcipher::Access::Writer(OpenMode::Existing);
    let conn = sqlcipher::open(path, key, access, Duration::from_secs(5))?;
    let mut stmt = conn.prepare("PRAGMA cipher_integrity_check")?;
    if stmt.query([])?.next()?.is_some() {
        return Err(StoreError::Corrupt("a page fails its MAC"));
    }
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        return Err(StoreError::Corrupt("the integrity check fails"));
    }
    check_key_version(&conn, key_version)?;
    if let Some(id) = workspace {
        let recorded: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'workspace_id'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        if recorded != Some(id.to_string()) {
            return Err(StoreError::Corrupt(
                "the workspace id recorded inside does not match",
            ));
        }
    }
    Ok(())
}

/// The version recorded inside the database must match the one it was opened with.
fn check_key_version(conn: &rusqlite::Connection, expected: u32) -> Result<(), StoreError> {
    let recorded: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'key_version'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    match recorded {
        Some(v) if v == expected.to_string() => Ok(()),
        _ => Err(StoreError::Corrupt("recorded key version does not match")),
    }
}
