//! One SQLCipher database: a single serialised writer and a small pool of read-only handles.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::StoreError;
use super::migrations::{self, Schema};
use super::sqlcipher::{self, Access, OpenMode};
use crate::crypto::DerivedKey;

/// How the connections of every database are set up.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionSettings {
    pub read_connections: usize,
    pub busy_timeout: Duration,
}

pub struct Database {
    path: PathBuf,
    key: DerivedKey,
    settings: ConnectionSettings,
    // Fields drop in order: the readers close first, so the writer is the last connection
    // and can checkpoint and remove the WAL when it closes.
    readers: ReaderPool,
    writer: Mutex<Connection>,
}

impl Database {
    /// Opens (or creates) the file and brings its schema up to date.
    pub fn open(
        path: &Path,
        key: DerivedKey,
        schema: &Schema,
        mode: OpenMode,
        settings: ConnectionSettings,
    ) -> Result<Self, StoreError> {
        let access = Access::Writer(mode);
        let mut writer = sqlcipher::open(path, &key, access, settings.busy_timeout)?;
        migrations::migrate(&mut writer, schema, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            key,
            settings,
            readers: ReaderPool::new(settings.read_connections),
            writer: Mutex::new(writer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in an immediate transaction on the writer and commits if it succeeds.
    /// Callers run this on the blocking pool: it waits for the writer lock.
    pub fn write<T, E>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// Runs `f` on a read-only connection from the pool.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let conn = self.reader()?;
        f(&conn)
    }

    /// Like `read`, with a time limit: SQLite's progress handler interrupts any statement
    /// still running at the deadline (the error is `StoreError::is_interrupted`), so one
    /// heavy query cannot hold a reader for long.
    pub fn read_within<T, E>(
        &self,
        limit: std::time::Duration,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.reader()?;
        let deadline = std::time::Instant::now() + limit;
        conn.progress_handler(1000, Some(move || std::time::Instant::now() > deadline))
            .map_err(StoreError::from)?;
        let result = f(&conn);
        if conn.progress_handler(1000, None::<fn() -> bool>).is_err() {
            // A reader still carrying the deadline must not serve anyone else.
            conn.conn = None;
        }
        result
    }

    /// Writes a consistent copy of the database to `dest`, a new owner-only file encrypted
    /// with the same key. SQLite's online backup API copies every page in one step, under
    /// one read transaction, so the copy is a single snapshot however busy the database
    /// is; SQLCipher encrypts each page as it is written, so nothing reaches the disk in
    /// the clear.
    pub fn snapshot_to(&self, dest: &Path) -> Result<(), StoreError> {
        let access = Access::Writer(OpenMode::Create);
        let mut copy = sqlcipher::open(dest, &self.key, access, self.settings.busy_timeout)?;
        self.read(|source| {
            use rusqlite::backup::{Backup, StepResult};
            let backup = Backup::new(source, &mut copy)?;
            // -1: every page in one step, so one read transaction covers the whole copy.
            loop {
                match backup.step(-1)? {
                    StepResult::Done => return Ok::<_, StoreError>(()),
                    StepResult::More => {}
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
        // Closing the only connection folds its WAL into the file and removes it.
        drop(copy);
        std::fs::File::open(dest)
            .and_then(|file| file.sync_all())
            .map_err(StoreError::io(dest))
    }

    fn reader(&self) -> Result<PooledReader<'_>, StoreError> {
        self.readers.checkout(|| {
            sqlcipher::open(
                &self.path,
                &self.key,
                Access::Reader,
                self.settings.busy_timeout,
            )
        })
    }
}

/// A bounded set of read-only connections, opened on first use. A hand-rolled pool rather
/// than r2d2: r2d2 starts helper threads per pool, and there is one pool per open workspace.
struct ReaderPool {
    state: Mutex<PoolState>,
    returned: Condvar,
    max: usize,
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections in existence: idle, checked out, or being opened.
    open: usize,
}

impl ReaderPool {
    fn new(max: usize) -> Self {
        Self {
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkout(
        &self,
        open: impl FnOnce() -> Result<Connection, StoreError>,
    ) -> Result<PooledReader<'_>, StoreError> {
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(PooledReader {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                // The slot is released by PooledReader's drop, also if `open` fails or panics.
                let mut reader = PooledReader {
                    pool: self,
                    conn: None,
                };
                reader.conn = Some(open()?);
                return Ok(reader);
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct PooledReader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl std::ops::Deref for PooledReader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for PooledReader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take().filter(sqlcipher::reader_is_clean);
        let mut state = self.pool.lock();
        match conn {
            Some(conn) => state.idle.push(conn),
            // Never opened, or left dirty by its user: closed, and its slot freed.
            None => state.open -= 1,
        }
        drop(state);
        self.pool.returned.notify_one();
    }
}
