//! One SQLCipher database: a single serialised writer and a small pool of read-only handles.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::StoreError;
use super::migrations::{self, Schema};
use super::sqlcipher::{self, Access};
use crate::crypto::DerivedKey;

pub struct Database {
    path: PathBuf,
    key: DerivedKey,
    busy_timeout: Duration,
    writer: Mutex<Connection>,
    readers: ReaderPool,
}

impl Database {
    /// Opens (or, with `create`, creates) the file and brings its schema up to date.
    pub fn open(
        path: &Path,
        key: DerivedKey,
        schema: &Schema,
        create: bool,
        read_connections: usize,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut writer = sqlcipher::open(path, &key, Access::Writer { create }, busy_timeout)?;
        migrations::migrate(&mut writer, schema, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            key,
            busy_timeout,
            writer: Mutex::new(writer),
            readers: ReaderPool::new(read_connections),
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
        let conn = self.readers.checkout(|| {
            sqlcipher::open(&self.path, &self.key, Access::Reader, self.busy_timeout)
        })?;
        f(&conn)
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
                return match open() {
                    Ok(conn) => Ok(PooledReader {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
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

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.lock().idle.push(conn);
            self.pool.returned.notify_one();
        }
    }
}
