//! Resident memory with 10,000 workspaces created and the open-workspace cache at its
//! default bound of 256, every workspace opened and queried once so the cache turns over;
//! floor: 256 SQLCipher connections opened with their raw keys, one query each, held open,
//! which is what the cache holds at most. Each side runs in a process of its own (this
//! binary again), so memory one side freed cannot hide what the other uses.
//!
//! Run by `scripts/bench.sh`, which records the output in BENCHMARKS.md.

mod setup;

use std::process::Command;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};
use strongbox::config::Config;
use strongbox::crypto::KeyPurpose;
use strongbox::ids::WorkspaceId;
use strongbox::store::{Store, StoreError};

const SIDE: &str = "STRONGBOX_BENCH_MEMORY_SIDE";
const TARGET_MIB: f64 = 500.0;

fn main() {
    if let Ok(side) = std::env::var(SIDE) {
        return measure(&side);
    }
    let workspaces = workspace_count();
    let strongbox = run_side("strongbox");
    let floor = run_side("floor");
    let cache = Config::default().storage.workspace_cache_size;
    println!(
        "{workspaces} workspaces created (in {:.0} s) and each opened and queried once, open-workspace \
         cache bound {cache}; each side in a fresh process.\n",
        strongbox.seconds
    );
    println!(
        "| measure | floor: {cache} raw-key SQLCipher connections held open | strongbox | ratio |"
    );
    println!("|---|---|---|---|");
    println!(
        "| resident memory | {:.0} MiB | {:.0} MiB | {:.2}× |",
        floor.rss_mib,
        strongbox.rss_mib,
        strongbox.rss_mib / floor.rss_mib
    );
    println!(
        "| peak resident memory | {:.0} MiB | {:.0} MiB | |",
        floor.peak_mib, strongbox.peak_mib
    );
    println!(
        "\nTarget: {workspaces} workspaces under {TARGET_MIB:.0} MiB resident: {}.",
        setup::verdict(strongbox.rss_mib < TARGET_MIB)
    );
}

fn workspace_count() -> usize {
    match setup::quick() {
        true => 1_000,
        false => 10_000,
    }
}

struct Side {
    rss_mib: f64,
    peak_mib: f64,
    seconds: f64,
}

/// Runs one side in a child process and reads the figures it prints.
fn run_side(side: &str) -> Side {
    let output = Command::new(std::env::current_exe().expect("this binary"))
        .env(SIDE, side)
        .output()
        .expect("run side");
    assert!(
        output.status.success(),
        "{side}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let figures: Vec<f64> = text
        .split_whitespace()
        .map(|n| n.parse().expect("figure"))
        .collect();
    Side {
        rss_mib: figures[0],
        peak_mib: figures[1],
        seconds: figures[2],
    }
}

/// The child's job: create the workspaces, then hold what `side` holds, and print the
/// resident and peak memory (MiB) and how long creating took.
fn measure(side: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        data_dir: tmp.path().join("data"),
        ..Config::default()
    };
    let cache = config.storage.workspace_cache_size;
    let count = match side {
        "strongbox" => workspace_count(),
        _ => cache,
    };
    if side == "floor" {
        // The floor's files are made without a cache worth the name.
        config.storage.workspace_cache_size = 1;
    }
    strongbox::app::init(&config).expect("init");
    let store = strongbox::app::open(&config).expect("open").store;
    let ids: Vec<WorkspaceId> = (0..count).map(|_| WorkspaceId::new_random()).collect();
    let started = Instant::now();
    for id in &ids {
        drop(store.create_workspace(*id).expect("create"));
    }
    let seconds = started.elapsed().as_secs_f64();
    let _held = match side {
        "strongbox" => {
            open_all(&store, &ids);
            Vec::new()
        }
        _ => raw_connections(&config, &store, &ids),
    };
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    let kib = |field: &str| -> f64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("memory figure")
    };
    println!(
        "{} {} {seconds}",
        kib("VmRSS:") / 1024.0,
        kib("VmHWM:") / 1024.0
    );
}

/// Opens every workspace through the store and runs a first query in it.
fn open_all(store: &Store, ids: &[WorkspaceId]) {
    for id in ids {
        let db = store.workspace(*id).expect("open");
        let records: i64 = db
            .read(|c| {
                Ok::<_, StoreError>(c.query_row("SELECT count(*) FROM records", [], |r| r.get(0))?)
            })
            .expect("first query");
        assert_eq!(records, 0);
    }
}

/// A connection to each workspace file with its raw key, a first query run in each.
fn raw_connections(config: &Config, store: &Store, ids: &[WorkspaceId]) -> Vec<Connection> {
    let ring = setup::key_ring(&config.data_dir);
    ids.iter()
        .map(|id| {
            let key = ring
                .derive(KeyPurpose::WorkspaceDb(*id), 1)
                .sqlcipher_raw_key();
            let conn = Connection::open_with_flags(
                store.layout().workspace_db(*id),
                OpenFlags::SQLITE_OPEN_READ_WRITE,
            )
            .expect("open");
            conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.as_str()))
                .expect("key");
            let records: i64 = conn
                .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
                .expect("first query");
            assert_eq!(records, 0);
            conn
        })
        .collect()
}
