//! Moving a database to a new key (`strongbox keys rotate`): the database opened alone, on
//! one connection, under whichever of its two possible keys it is.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior};

use super::migrations::{self, Schema};
use super::sqlcipher::{self, Access, OpenMode};
use super::{ConnectionSettings, DataDir, StoreError, WorkspaceKey};
use crate::crypto::DerivedKey;
use crate::ids::WorkspaceId;

/// Which of the keys it was offered a database took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyInUse {
    /// The key its record names: not rekeyed yet.
    Recorded,
    /// The key a pending rotation names: rekeyed by a run that stopped before recording it.
    Pending,
}

/// A workspace database an unfinished rotation has still to move, from one key version to
/// the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingKey {
    pub workspace: WorkspaceId,
    pub from: u32,
    pub to: u32,
}

/// One database on one connection of its own: no pool, no cache.
pub struct Rekeying {
    conn: Connection,
    path: PathBuf,
    settings: ConnectionSettings,
}

impl Rekeying {
    /// Opens the control database under `recorded` or, failing that, `pending`.
    pub fn control(
        layout: &DataDir,
        recorded: &DerivedKey,
        pending: Option<&DerivedKey>,
        settings: ConnectionSettings,
    ) -> Result<(Self, KeyInUse), StoreError> {
        let path = layout.control_db();
        if !path.exists() {
            return Err(StoreError::MissingControlDb { path });
        }
        Self::open(path, &migrations::CONTROL, recorded, pending, settings)
    }

    /// Opens a workspace's database under `recorded` or, failing that, `pending`.
    pub fn workspace(
        layout: &DataDir,
        id: WorkspaceId,
        recorded: &DerivedKey,
        pending: Option<&DerivedKey>,
        settings: ConnectionSettings,
    ) -> Result<(Self, KeyInUse), StoreError> {
        let path = layout.workspace_db(id);
        if !path.exists() {
            return Err(StoreError::WorkspaceNotFound);
        }
        Self::open(path, &migrations::WORKSPACE, recorded, pending, settings)
    }

    fn open(
        path: PathBuf,
        schema: &Schema,
        recorded: &DerivedKey,
        pending: Option<&DerivedKey>,
        settings: ConnectionSettings,
    ) -> Result<(Self, KeyInUse), StoreError> {
        let writer = Access::Writer(OpenMode::Existing);
        let timeout = settings.busy_timeout;
        let (mut conn, in_use) = match (sqlcipher::open(&path, recorded, writer, timeout), pending)
        {
            (Ok(conn), _) => (conn, KeyInUse::Recorded),
            (Err(StoreError::WrongKey { .. }), Some(pending)) => {
                let conn = sqlcipher::open(&path, pending, writer, timeout)?;
                (conn, KeyInUse::Pending)
            }
            (Err(e), _) => return Err(e),
        };
        migrations::migrate(&mut conn, schema, &path)?;
        let db = Self {
            conn,
            path,
            settings,
        };
        Ok((db, in_use))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-encrypts every page under `key`, then proves that a fresh connection opens the
    /// file with it.
    ///
    /// The change runs in rollback-journal mode, as one transaction whose journal SQLCipher
    /// writes under the old key: a crash part-way leaves a journal that the next open, under
    /// either key, rolls back, and the file is wholly under the old key again. Leaving WAL
    /// mode needs the file to itself, so a database that another process has open is
    /// refused (`InUse`), never rekeyed under it. `synchronous = EXTRA` makes the removal
    /// of the journal, which is the commit, durable.
    pub fn rekey(&mut self, key: &DerivedKey) -> Result<(), StoreError> {
        let mode = self.set_journal_mode("delete").map_err(|e| match e {
            StoreError::Sqlite(e) if is_busy(&e) => self.in_use(),
            other => other,
        })?;
        if mode != "delete" {
            return Err(self.in_use());
        }
        self.conn.execute_batch("PRAGMA synchronous = EXTRA;")?;
        self.conn.execute_batch(&key.sqlcipher_rekey_pragma())?;
        self.conn.execute_batch("PRAGMA synchronous = FULL;")?;
        if self.set_journal_mode("wal")? != "wal" {
            return Err(StoreError::NoWal {
                path: self.path.clone(),
            });
        }
        sqlcipher::open(&self.path, key, Access::Reader, self.settings.busy_timeout)
            .map(drop)
            .map_err(|_| StoreError::RekeyNotApplied {
                path: self.path.clone(),
            })
    }

    fn set_journal_mode(&self, mode: &str) -> Result<String, StoreError> {
        // PRAGMA takes no bound parameters; the mode is one of two literals above.
        let set: String =
            self.conn
                .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |row| {
                    row.get(0)
                })?;
        Ok(set.to_ascii_lowercase())
    }

    fn in_use(&self) -> StoreError {
        StoreError::InUse {
            path: self.path.clone(),
        }
    }

    /// The key version recorded inside the database.
    pub fn key_version(&self) -> Result<u32, StoreError> {
        let recorded: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'key_version'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        recorded
            .and_then(|v| v.parse().ok())
            .ok_or(StoreError::Corrupt("recorded key version"))
    }

    /// Runs `f` and records `version` inside the database in one transaction: once it
    /// commits, the database is wholly at its new version.
    pub fn finish<E: From<StoreError>>(
        &mut self,
        version: u32,
        f: impl FnOnce(&Transaction<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        f(&tx)?;
        let updated = tx
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'key_version'",
                [version.to_string()],
            )
            .map_err(StoreError::from)?;
        if updated != 1 {
            return Err(StoreError::Corrupt("recorded key version").into());
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Runs `f` on the connection, for reads.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
        f(&self.conn)
    }

    /// Every workspace and its recorded key version (control database only).
    pub fn workspace_keys(&self) -> Result<Vec<WorkspaceKey>, StoreError> {
        super::workspace_keys(&self.conn)
    }

    /// Names every workspace's next key version as pending, in one transaction (control
    /// database only). Runs before the first workspace is rekeyed.
    pub fn mark_workspaces_pending(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE workspaces SET pending_key_version = key_version + 1",
                [],
            )
            .map(drop)
            .map_err(StoreError::from)
    }

    /// The workspaces whose move is pending (control database only).
    pub fn pending_workspaces(&self) -> Result<Vec<PendingKey>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, key_version, pending_key_version FROM workspaces
             WHERE pending_key_version IS NOT NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
        })?;
        let mut pending = Vec::new();
        for row in rows {
            let (id, from, to) = row?;
            let workspace = super::parse_workspace_id(&id)?;
            pending.push(PendingKey {
                workspace,
                from,
                to,
            });
        }
        Ok(pending)
    }

    /// Records that a workspace's database is under its pending key (control database
    /// only): its key version moves up and nothing is pending for it any more.
    pub fn record_workspace_moved(&mut self, key: PendingKey) -> Result<(), StoreError> {
        let updated = self.conn.execute(
            "UPDATE workspaces SET key_version = ?2, pending_key_version = NULL
             WHERE id = ?1 AND pending_key_version = ?2",
            rusqlite::params![key.workspace.to_string(), key.to],
        )?;
        match updated {
            1 => Ok(()),
            _ => Err(StoreError::Corrupt("pending key version in control db")),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::time::Duration;

    use super::*;
    use crate::crypto::{KeyPurpose, KeyRing, MasterKey};
    use crate::store::{InstallInfo, Store, StoreSettings};

    const SETTINGS: ConnectionSettings = ConnectionSettings {
        read_connections: 2,
        busy_timeout: Duration::from_millis(100),
    };

    struct Fixture {
        _dir: tempfile::TempDir,
        layout: DataDir,
        install: InstallInfo,
        id: WorkspaceId,
    }

    impl Fixture {
        /// An install with one workspace holding one note.
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let layout = DataDir::new(dir.path().join("data"));
            layout.create().unwrap();
            let install = InstallInfo::generate();
            let id = WorkspaceId::new_random();
            let store = Self::store(&layout, &install, crate::store::OpenMode::Create);
            store.create_workspace(id).unwrap();
            store
                .workspace(id)
                .unwrap()
                .write(|tx| {
                    tx.execute_batch(
                        "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('kept');",
                    )
                    .map_err(StoreError::from)
                })
                .unwrap();
            Self {
                _dir: dir,
                layout,
                install,
                id,
            }
        }

        fn store(layout: &DataDir, install: &InstallInfo, mode: crate::store::OpenMode) -> Store {
            let settings = StoreSettings {
                workspace_cache_size: NonZeroUsize::MIN,
                connections: SETTINGS,
            };
            Store::open(layout.clone(), ring(install), install, settings, mode).unwrap()
        }

        fn key(&self, version: u32) -> DerivedKey {
            ring(&self.install).derive(KeyPurpose::WorkspaceDb(self.id), version)
        }

        fn open(
            &self,
            version: u32,
            pending: Option<u32>,
        ) -> Result<(Rekeying, KeyInUse), StoreError> {
            let pending = pending.map(|v| self.key(v));
            Rekeying::workspace(
                &self.layout,
                self.id,
                &self.key(version),
                pending.as_ref(),
                SETTINGS,
            )
        }
    }

    fn ring(install: &InstallInfo) -> KeyRing {
        KeyRing::new(MasterKey::from_bytes([5; 32]), install.salt)
    }

    fn note(db: &Rekeying) -> String {
        db.read(|c| c.query_row("SELECT body FROM notes", [], |row| row.get(0)))
            .unwrap()
    }

    #[test]
    fn a_rekeyed_database_opens_only_under_its_new_key_and_keeps_its_data() {
        let f = Fixture::new();
        let (mut db, in_use) = f.open(1, Some(2)).unwrap();
        assert_eq!(in_use, KeyInUse::Recorded);
        db.rekey(&f.key(2)).unwrap();
        assert_eq!(db.key_version().unwrap(), 1, "recorded only by finish");
        db.finish(2, |_| Ok::<_, StoreError>(())).unwrap();
        drop(db);

        assert!(matches!(f.open(1, None), Err(StoreError::WrongKey { .. })));
        let (db, in_use) = f.open(1, Some(2)).unwrap();
        assert_eq!(in_use, KeyInUse::Pending);
        assert_eq!(db.key_version().unwrap(), 2);
        assert_eq!(note(&db), "kept");
        let mode: String = db
            .read(|c| c.query_row("PRAGMA journal_mode", [], |row| row.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_database_open_elsewhere_is_never_rekeyed() {
        let f = Fixture::new();
        let store = Fixture::store(&f.layout, &f.install, crate::store::OpenMode::Existing);
        let held = store.workspace(f.id).unwrap();
        let (mut db, _) = f.open(1, Some(2)).unwrap();
        assert!(matches!(db.rekey(&f.key(2)), Err(StoreError::InUse { .. })));
        drop(db);
        let count: i64 = held
            .read(|c| {
                c.query_row("SELECT count(*) FROM notes", [], |row| row.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(count, 1, "the other handle still reads it");
        drop((held, store));
        let (db, in_use) = f.open(1, None).unwrap();
        assert_eq!(in_use, KeyInUse::Recorded);
        assert_eq!(note(&db), "kept");
    }

    #[test]
    fn pending_versions_are_recorded_for_every_workspace_and_cleared_one_by_one() {
        let f = Fixture::new();
        let control_key = ring(&f.install).derive(KeyPurpose::ControlDb, 1);
        let (mut control, _) = Rekeying::control(&f.layout, &control_key, None, SETTINGS).unwrap();
        assert!(control.pending_workspaces().unwrap().is_empty());
        control.mark_workspaces_pending().unwrap();
        let pending = control.pending_workspaces().unwrap();
        let expected = PendingKey {
            workspace: f.id,
            from: 1,
            to: 2,
        };
        assert_eq!(pending, vec![expected]);
        let wrong = PendingKey { to: 3, ..expected };
        assert!(control.record_workspace_moved(wrong).is_err());
        control.record_workspace_moved(expected).unwrap();
        assert!(control.pending_workspaces().unwrap().is_empty());
        assert_eq!(control.workspace_keys().unwrap()[0].key_version, 2);
        assert!(
            control.record_workspace_moved(expected).is_err(),
            "moved once only"
        );
    }
}
