//! Encryption at rest, key separation, read-only handles and the bounded workspace cache,
//! on real SQLCipher files.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use strongbox::crypto::{KeyPurpose, KeyRing, MasterKey};
use strongbox::ids::WorkspaceId;
use strongbox::store::{InstallInfo, StoreError};

use crate::common::{TestDir, contains, files_under};

const SENTINEL: &str = "SENTINEL-7f3a9c-quarterly-payroll-figures";

pub(crate) fn key_ring(dir: &TestDir) -> KeyRing {
    let data = dir.data_dir();
    let master = MasterKey::load(&data.join("master.key")).unwrap();
    let install = InstallInfo::load(&data.join("install.toml")).unwrap();
    KeyRing::new(master, install.salt)
}

/// Opens a database file directly, as an attacker with the file (and maybe a key) would.
pub(crate) fn raw_open(path: &Path, key: Option<&str>) -> rusqlite::Result<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    if let Some(key) = key {
        conn.execute_batch(&format!("PRAGMA key = \"{key}\";"))?;
    }
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
}

pub(crate) fn is_not_a_database(result: rusqlite::Result<i64>) -> bool {
    matches!(
        result.map_err(|e| e.sqlite_error_code()),
        Err(Some(ErrorCode::NotADatabase))
    )
}

pub(crate) fn write_note(store: &strongbox::store::Store, id: WorkspaceId, body: &str) {
    store
        .workspace(id)
        .unwrap()
        .write(|tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL)")?;
            tx.execute("INSERT INTO notes (body) VALUES (?1)", [body])?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

pub(crate) fn read_notes(store: &strongbox::store::Store, id: WorkspaceId) -> Vec<String> {
    store
        .workspace(id)
        .unwrap()
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT body FROM notes ORDER BY rowid")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            Ok::<_, StoreError>(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .unwrap()
}

#[test]
fn sentinel_never_reaches_the_disk_in_plaintext() {
    let dir = TestDir::new();
    let store = dir.open_store();
    let id = WorkspaceId::new_random();
    store.create_workspace(id).unwrap();
    write_note(&store, id, SENTINEL);
    // Proves the data is really there (the scan below could otherwise pass vacuously).
    assert_eq!(read_notes(&store, id), vec![SENTINEL.to_string()]);

    let files = files_under(dir.data_dir());
    let wal = dir
        .data_dir()
        .join(format!("workspaces/{id}/workspace.db-wal"));
    assert!(
        files.contains(&wal),
        "the write must still sit in the WAL: {files:?}"
    );
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, SENTINEL.as_bytes()),
            "plaintext sentinel in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, b"CREATE TABLE"),
            "plaintext schema in {}",
            file.display()
        );
    }
}

#[test]
fn workspace_file_does_not_open_without_its_key() {
    let dir = TestDir::new();
    let store = dir.open_store();
    let id = WorkspaceId::new_random();
    store.create_workspace(id).unwrap();
    write_note(&store, id, SENTINEL);
    assert_eq!(read_notes(&store, id), vec![SENTINEL.to_string()]);
    drop(store);
    // Readers close before the writer, so the writer checkpoints and removes the WAL.
    let path = dir.data_dir().join(format!("workspaces/{id}/workspace.db"));
    assert!(
        !path.with_extension("db-wal").exists(),
        "WAL left behind on close"
    );

    let right = key_ring(&dir)
        .derive(KeyPurpose::WorkspaceDb(id), 1)
        .sqlcipher_raw_key();
    assert!(
        raw_open(&path, Some(&right)).unwrap() >= 2,
        "the right key opens it"
    );
    assert!(is_not_a_database(raw_open(&path, None)), "no key");
    let wrong = format!("x'{}'", "ab".repeat(32));
    assert!(
        is_not_a_database(raw_open(&path, Some(&wrong))),
        "wrong raw key"
    );
    assert!(
        is_not_a_database(raw_open(&path, Some("correct horse battery staple"))),
        "passphrase"
    );
    // A key for a later version of the same workspace is a different key.
    let next = key_ring(&dir)
        .derive(KeyPurpose::WorkspaceDb(id), 2)
        .sqlcipher_raw_key();
    assert!(is_not_a_database(raw_open(&path, Some(&next))));
}

#[test]
fn two_workspaces_have_different_keys() {
    let dir = TestDir::new();
    let store = dir.open_store();
    let (a, b) = (WorkspaceId::new_random(), WorkspaceId::new_random());
    store.create_workspace(a).unwrap();
    store.create_workspace(b).unwrap();
    write_note(&store, a, "alpha");
    write_note(&store, b, "beta");
    drop(store);

    let ring = key_ring(&dir);
    let key_a = ring
        .derive(KeyPurpose::WorkspaceDb(a), 1)
        .sqlcipher_raw_key();
    let key_b = ring
        .derive(KeyPurpose::WorkspaceDb(b), 1)
        .sqlcipher_raw_key();
    assert_ne!(*key_a, *key_b);
    let path_a = dir.data_dir().join(format!("workspaces/{a}/workspace.db"));
    let path_b = dir.data_dir().join(format!("workspaces/{b}/workspace.db"));
    assert!(raw_open(&path_a, Some(&key_a)).is_ok());
    assert!(raw_open(&path_b, Some(&key_b)).is_ok());
    assert!(is_not_a_database(raw_open(&path_a, Some(&key_b))));
    assert!(is_not_a_database(raw_open(&path_b, Some(&key_a))));
    // Nor does the control database's key open a workspace.
    let control = ring.derive(KeyPurpose::ControlDb, 1).sqlcipher_raw_key();
    assert!(is_not_a_database(raw_open(&path_a, Some(&control))));
}

#[test]
fn store_refuses_a_different_master_key() {
    let dir = TestDir::new();
    drop(dir.open_store());
    let key_path = dir.data_dir().join("master.key");
    std::fs::write(&key_path, [0x42u8; 32]).unwrap();
    let err = strongbox::app::open(&dir.config)
        .err()
        .expect("must refuse");
    assert!(
        err.to_string()
            .contains("does not open with the derived key"),
        "{err}"
    );
}

#[test]
fn read_only_handles_refuse_writes() {
    let dir = TestDir::new();
    let store = dir.open_store();
    let id = WorkspaceId::new_random();
    store.create_workspace(id).unwrap();
    write_note(&store, id, "original");
    let db = store.workspace(id).unwrap();
    let query_only = |db: &strongbox::store::Database| {
        db.read(|conn| {
            conn.query_row("PRAGMA query_only", [], |row| row.get::<_, bool>(0))
                .map_err(StoreError::from)
        })
        .unwrap()
    };
    assert!(query_only(&db), "readers are opened with query_only on");

    for attempt in [
        "INSERT INTO notes (body) VALUES ('smuggled')",
        "UPDATE notes SET body = 'changed'",
        "DELETE FROM notes",
        "CREATE TABLE extra (x)",
    ] {
        let result = db.read(|conn| conn.execute_batch(attempt).map_err(StoreError::from));
        assert!(result.is_err(), "{attempt} must fail on a read-only handle");
    }
    // Even switching query_only off does not help: the handle was opened read-only.
    let result = db.read(|conn| {
        conn.execute_batch("PRAGMA query_only = OFF; INSERT INTO notes (body) VALUES ('x')")
            .map_err(StoreError::from)
    });
    assert!(result.is_err());
    // The connection that had query_only switched off is not handed out again.
    assert!(query_only(&db));
    assert_eq!(read_notes(&store, id), vec!["original".to_string()]);
}

#[test]
fn unknown_workspace_is_not_found_and_creates_nothing() {
    let dir = TestDir::new();
    let store = dir.open_store();
    let before = files_under(dir.data_dir());
    assert!(matches!(
        store.workspace(WorkspaceId::new_random()),
        Err(StoreError::WorkspaceNotFound)
    ));
    let id = WorkspaceId::new_random();
    store.create_workspace(id).unwrap();
    assert!(matches!(
        store.create_workspace(id),
        Err(StoreError::WorkspaceExists)
    ));
    assert_eq!(
        files_under(dir.data_dir()).len(),
        before.len() + 3,
        "db, wal and shm only"
    );
}

/// Open file descriptors of this process that point into `root`.
fn open_files_under(root: &Path) -> usize {
    let root = root.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(&root))
        .count()
}

#[test]
fn workspace_cache_bounds_open_files_and_keeps_everything_readable() {
    const CACHE: usize = 4;
    const READERS: usize = 2;
    let mut dir = TestDir::new();
    dir.config.storage.workspace_cache_size = CACHE;
    dir.config.storage.read_connections_per_db = READERS;
    let store = dir.open_store();
    let workspaces: Vec<WorkspaceId> = (0..CACHE * 4).map(|_| WorkspaceId::new_random()).collect();
    for (n, id) in workspaces.iter().enumerate() {
        store.create_workspace(*id).unwrap();
        write_note(&store, *id, &format!("note {n}"));
        assert_eq!(read_notes(&store, *id), vec![format!("note {n}")]);
    }
    // Each open database holds a writer and its readers, each with the main file and the
    // WAL, plus one shared-memory index per process; the control database counts too.
    let per_db = (1 + READERS) * 2 + 1;
    let bound = (CACHE + 1) * per_db;
    let open = open_files_under(dir.data_dir());
    assert!(open <= bound, "{open} files open, bound {bound}");
    assert_eq!(store.open_workspace_count(), CACHE);

    // Evicted workspaces reopen on demand, in any order.
    for (n, id) in workspaces.iter().enumerate().rev() {
        assert_eq!(read_notes(&store, *id), vec![format!("note {n}")]);
    }
    assert!(open_files_under(dir.data_dir()) <= bound);
}

#[test]
fn a_handle_in_use_is_reused_after_eviction_not_opened_twice() {
    let mut dir = TestDir::new();
    dir.config.storage.workspace_cache_size = 2;
    let store = dir.open_store();
    let held_id = WorkspaceId::new_random();
    let held = store.create_workspace(held_id).unwrap();
    for _ in 0..4 {
        store.create_workspace(WorkspaceId::new_random()).unwrap();
    }
    // `held_id` was evicted while a request still holds its handle: asking again must give
    // the same handle (one writer per file), not a second one.
    let again = store.workspace(held_id).unwrap();
    assert!(std::sync::Arc::ptr_eq(&held, &again));
    drop((held, again));
    write_note(&store, held_id, "still writable");
    assert_eq!(
        read_notes(&store, held_id),
        vec!["still writable".to_string()]
    );
}

#[test]
fn a_read_past_its_time_limit_is_interrupted_and_the_reader_still_serves() {
    let dir = crate::common::TestDir::new();
    let store = dir.open_store();
    let id = strongbox::ids::WorkspaceId::new_random();
    let db = store.create_workspace(id).unwrap();
    let endless =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
    let result = db.read_within(std::time::Duration::from_millis(50), |c| {
        c.query_row(endless, [], |row| row.get::<_, i64>(0))
            .map_err(strongbox::store::StoreError::from)
    });
    let Err(strongbox::store::StoreError::Sqlite(e)) = result else {
        panic!("the endless query should have been stopped");
    };
    assert!(strongbox::workspace::records::interrupted(&e));
    let quick: i64 = db
        .read(|c| {
            c.query_row("SELECT 1", [], |row| row.get(0))
                .map_err(strongbox::store::StoreError::from)
        })
        .unwrap();
    assert_eq!(quick, 1, "no deadline lingers on the pooled reader");
}
