//! Opening SQLCipher connections with a raw derived key and the pragmas every handle needs.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::StoreError;
use crate::crypto::DerivedKey;

/// Whether opening a database may create its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Make a new 0600 file; fails if one exists.
    Create,
    /// Open the file that is there; fails if there is none.
    Existing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The single writer of a database.
    Writer(OpenMode),
    /// `SQLITE_OPEN_READ_ONLY` plus `PRAGMA query_only`: two independent locks on writes.
    Reader,
}

pub fn open(
    path: &Path,
    key: &DerivedKey,
    access: Access,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    if access == Access::Writer(OpenMode::Create) {
        create_owner_only_file(path)?;
    }
    let flags = match access {
        Access::Writer(_) => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Access::Reader => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(&key.sqlcipher_key_pragma())?;
    // The key is only checked when a page is read: a wrong key surfaces here as NOTADB.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })
    .map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::WrongKey {
            path: path.to_path_buf(),
        },
        _ => StoreError::Sqlite(e),
    })?;
    conn.busy_timeout(busy_timeout)?;
    // Temp tables and sorts stay in memory so nothing plaintext reaches the disk.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    // Each request runs a handful of statements on whichever handle it gets; they are
    // prepared once per handle and kept.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    match access {
        Access::Writer(_) => {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::NoWal {
                    path: path.to_path_buf(),
                });
            }
            // FULL: a commit is on disk before it is acknowledged.
            conn.execute_batch("PRAGMA synchronous = FULL;")?;
        }
        Access::Reader => conn.execute_batch(&format!(
            "PRAGMA query_only = ON; PRAGMA cache_size = -{READER_CACHE_KIB};"
        ))?,
    }
    Ok(conn)
}

/// True when a reader is fit to go back to its pool: no transaction left open (which would
/// pin an old snapshot and stop WAL checkpoints) and `query_only` still on.
/// The page cache of each read handle, in KiB. A page read past the cache is read from the
/// file and decrypted again: with SQLite's default 2 MiB, a search over a common word in a
/// large workspace spent a third of its time doing that (profiled: `BENCHMARKS.md`). The
/// cache fills only as pages are read, so a small or idle workspace costs no more.
const READER_CACHE_KIB: usize = 32 * 1024;

/// Statements kept prepared per connection: more than any one kind of request uses.
const STATEMENT_CACHE: usize = 64;

pub fn reader_is_clean(conn: &Connection) -> bool {
    conn.is_autocommit()
        && conn
            .prepare_cached("PRAGMA query_only")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, bool>(0)))
            .unwrap_or(false)
}

/// SQLite gives the `-wal` and `-shm` files the main file's mode, so creating it 0600 up
/// front keeps every file of the database owner-only even without the process umask.
fn create_owner_only_file(path: &Path) -> Result<(), StoreError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::FileExists {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(StoreError::io(path)(e)),
    }
}
