//! Backup and restore throughput for one workspace of about 200 MB, against a floor
//! measured in the same run: the `age` CLI encrypting the same database bytes to the same
//! kind of X25519 recipient, and decrypting them again.
//!
//! Strongbox's figures are the in-process calls the backup job and `strongbox restore`
//! make: `backup::run` (snapshot, encrypt, hash, manifest) and `backup::restore` (check,
//! decrypt, check each database through, move into place). Each figure is the best of
//! `RUNS`. Run by `scripts/bench.sh`, which records the output in BENCHMARKS.md.

mod setup;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use serde_json::{Value, json};
use strongbox::audit::AuditLog;
use strongbox::backup::{self, BackupId, Identities, RestoreRequest, Source};
use strongbox::clock::{SharedClock, SystemClock};
use strongbox::config::{self, Config};
use strongbox::crypto::{KeyPurpose, KeyRing, MasterKey};
use strongbox::ids::WorkspaceId;
use strongbox::store::{self, Database, InstallInfo, Store};
use strongbox::workspace::WorkspaceError;
use strongbox::workspace::records::{self, CollectionName, RecordId};
use strongbox::workspace::shown::ShownWriter;

/// The workspace is filled until its database file is at least this large.
const WORKSPACE_BYTES: u64 = 200 * 1_000_000;
const BATCH_RECORDS: usize = 2_000;
const RUNS: usize = 3;
/// Megabytes as `BackupReport::mb_per_s` counts them.
const MB: f64 = 1_000_000.0;

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = setup::config(tmp.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (state, user) = setup::app(&config, &runtime);
    let workspace = runtime
        .block_on(state.workspaces.create(user, "Backed up".into()))
        .expect("workspace");
    let store = Arc::clone(&state.store);
    let db = store.workspace(workspace).expect("workspace db");
    let path = store.layout().workspace_db(workspace);
    let started = Instant::now();
    let (filled, json_bytes) = fill(&db, &path);
    let fill_time = started.elapsed();

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let identity_file = tmp.path().join("identity.txt");
    fs::write(&identity_file, identity.to_string().expose_secret()).expect("identity");

    // The same bytes a backup encrypts: a snapshot of the live database.
    let floor_dir = tmp.path().join("floor");
    fs::create_dir(&floor_dir).expect("floor dir");
    let copy = floor_dir.join("workspace.db");
    let (snapshot_time, ()) = best_of(|| {
        remove_if_present(&copy);
        let started = Instant::now();
        db.snapshot_to(&copy).expect("snapshot");
        (started.elapsed(), ())
    });
    let copy_bytes = size(&copy);
    let (encrypt, decrypt, sealed_bytes) = age_floor(&copy, &recipient, &identity_file);
    let check_time = check_copy(&store, workspace, &copy);
    fs::remove_dir_all(&floor_dir).expect("clean floor");

    let settings = config::Backup {
        dir: tmp.path().join("backups"),
        recipients: vec![recipient],
        ..config::Backup::default()
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let audit = AuditLog::new(Arc::clone(&store), clock.clone());
    let (backup_time, report) = best_of(|| {
        let started = Instant::now();
        let report =
            backup::run(&store, &audit, &settings, clock.now(), &|| false).expect("backup");
        (started.elapsed(), report)
    });
    let restore_time = restore_runs(&config, &settings.dir, &report.id, &identity_file);

    println!("## Backup and restore\n");
    println!(
        "One workspace of {filled} records of about {:.1} KB of JSON, filled in {:.0} s; its \
         database is {:.0} MB. Best of {RUNS} runs each.\n",
        json_bytes as f64 / filled as f64 / 1000.0,
        fill_time.as_secs_f64(),
        copy_bytes as f64 / MB
    );
    println!("| operation | MB | seconds | MB/s | ratio to `age` |");
    println!("|---|---|---|---|---|");
    let age_encrypt = row("floor: `age -r` encrypt", copy_bytes, encrypt, None);
    row(
        "strongbox: backup",
        report.bytes,
        backup_time,
        Some(age_encrypt),
    );
    let age_decrypt = row("floor: `age -d` decrypt", sealed_bytes, decrypt, None);
    row(
        "strongbox: restore",
        report.bytes,
        restore_time,
        Some(age_decrypt),
    );
    println!(
        "\nA backup's MB are every file it wrote ({} files, the control database and install \
         file with the workspace). Beyond encrypting, it copies the live database through \
         SQLite's online backup, hashes every encrypted byte with SHA-256, syncs each file to \
         disk and writes the signed manifest; a restore checks the manifest's MAC and every \
         file's SHA-256, decrypts, then runs SQLCipher's and SQLite's integrity checks on each \
         database before moving it into place.",
        report.files
    );
    println!(
        "\nTimed on their own (best of {RUNS}), the workspace's snapshot takes {:.2} s and the \
         integrity checks of its restored copy {:.2} s.",
        snapshot_time.as_secs_f64(),
        check_time.as_secs_f64()
    );
}

/// Fills the workspace in transactions of `BATCH_RECORDS` until its file reaches
/// `WORKSPACE_BYTES`; returns how many records it holds and their size as JSON.
fn fill(db: &Database, path: &Path) -> (usize, usize) {
    let rules = setup::record_rules();
    let collection = CollectionName::parse("tickets").expect("name");
    let (mut written, mut json_bytes) = (0, 0);
    while size(path) < WORKSPACE_BYTES {
        db.write(|tx| {
            let shown = ShownWriter::open(tx)?;
            for n in written..written + BATCH_RECORDS {
                let id = RecordId::parse(&format!("t{n:07}")).expect("id");
                let ticket = ticket(n);
                json_bytes += ticket.to_string().len();
                let data = rules.data(ticket).expect("data");
                records::upsert(tx, &shown, &collection, &id, &data, 1)?;
            }
            Ok::<_, WorkspaceError>(())
        })
        .expect("fill");
        written += BATCH_RECORDS;
    }
    (written, json_bytes)
}

/// A support ticket of about 2 KB of JSON whose text comes from a generator seeded with
/// `n`, so every record differs, as in a real workspace.
fn ticket(n: usize) -> Value {
    let mut rng = SplitMix::new(n as u64);
    let customers = [
        "Ada Byron",
        "Grace Hopper",
        "Alan Turing",
        "Edsger Dijkstra",
    ];
    let cities = ["Pune", "Leeds", "Lyon", "Porto", "Austin", "Osaka", "Accra"];
    let customer = rng.pick(&customers);
    json!({
        "subject": rng.sentence(8),
        "customer": {
            "name": customer,
            "email": format!("{}.{n}@example.com", customer.replace(' ', ".").to_lowercase()),
            "city": rng.pick(&cities),
        },
        "status": rng.pick(&["open", "pending", "solved", "closed"]),
        "priority": rng.below(5),
        "amount": rng.below(1_000_000) as f64 / 100.0,
        "tags": [rng.word(), rng.word(), rng.word()],
        "body": (0..12).map(|_| rng.sentence(22)).collect::<Vec<_>>().join(" "),
    })
}

/// The words ticket text is mostly made of.
const VOCABULARY: &str = "invoice ledger payment supplier quarter rebate shipment refund account \
    order delivery warehouse contract renewal discount pallet customer address billing schedule \
    the a was for with after before late missing damaged again please confirm received pending \
    approved credit balance";

/// Text from a SplitMix64 generator: deterministic and dependency-free, good enough to vary
/// text.
struct SplitMix {
    state: u64,
    words: Vec<&'static str>,
}

impl SplitMix {
    fn new(seed: u64) -> Self {
        let words = VOCABULARY.split_whitespace().collect();
        Self { state: seed, words }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// A common word most of the time, otherwise a made-up code or number.
    fn word(&mut self) -> String {
        match self.below(10) {
            0 => format!("ref{:06}", self.below(1_000_000)),
            1 => self.below(100_000).to_string(),
            _ => {
                let i = self.below(self.words.len() as u64) as usize;
                self.words[i].to_string()
            }
        }
    }

    fn sentence(&mut self, words: usize) -> String {
        let words: Vec<String> = (0..words).map(|_| self.word()).collect();
        format!("{}.", words.join(" "))
    }
}

/// The best of `RUNS` times for `age` to encrypt `plain` to `recipient`, and to decrypt
/// that again; and the encrypted size.
fn age_floor(plain: &Path, recipient: &str, identity: &Path) -> (Duration, Duration, u64) {
    let sealed = plain.with_extension("db.age");
    let opened = plain.with_extension("opened");
    let (encrypt, ()) = best_of(|| {
        remove_if_present(&sealed);
        let started = Instant::now();
        age(&["-r", recipient, "-o", path_str(&sealed), path_str(plain)]);
        (started.elapsed(), ())
    });
    let (decrypt, ()) = best_of(|| {
        remove_if_present(&opened);
        let started = Instant::now();
        age(&[
            "-d",
            "-i",
            path_str(identity),
            "-o",
            path_str(&opened),
            path_str(&sealed),
        ]);
        (started.elapsed(), ())
    });
    assert_eq!(size(&opened), size(plain), "age round trip");
    (encrypt, decrypt, size(&sealed))
}

fn age(args: &[&str]) {
    let status = Command::new("age").args(args).status().expect("run age");
    assert!(status.success(), "age {args:?}: {status}");
}

/// The best time for the checks a restore runs on a decrypted workspace database, run on
/// `copy`.
fn check_copy(store: &Store, workspace: WorkspaceId, copy: &Path) -> Duration {
    let layout = store.layout();
    let master = MasterKey::load(&layout.root().join("master.key")).expect("master key");
    let install = InstallInfo::load(&layout.install_file()).expect("install");
    let version = store
        .workspace_keys()
        .expect("keys")
        .iter()
        .find(|k| k.workspace == workspace)
        .expect("workspace key")
        .key_version;
    let key =
        KeyRing::new(master, install.salt).derive(KeyPurpose::WorkspaceDb(workspace), version);
    let (taken, ()) = best_of(|| {
        let started = Instant::now();
        store::check_database_copy(copy, &key, version, Some(workspace)).expect("check");
        (started.elapsed(), ())
    });
    taken
}

/// The best of `RUNS` restores of backup `id` into a new data dir each time.
fn restore_runs(config: &Config, backups: &Path, id: &BackupId, identity: &Path) -> Duration {
    let master_key = config.data_dir.join("master.key");
    let identities = Identities::load(identity).expect("identities");
    let to: PathBuf = config.data_dir.with_file_name("restored");
    let (taken, ()) = best_of(|| {
        let started = Instant::now();
        backup::restore(RestoreRequest {
            source: Source::Local(backups),
            id,
            master_key_file: &master_key,
            identities: &identities,
            to: &to,
            force: false,
            place_master_key: None,
            drill_account: false,
        })
        .expect("restore");
        let taken = started.elapsed();
        fs::remove_dir_all(&to).expect("clean restore");
        (taken, ())
    });
    taken
}

/// Runs `measure` `RUNS` times; the shortest time and what that run returned.
fn best_of<T>(mut measure: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    (0..RUNS)
        .map(|_| measure())
        .min_by_key(|(taken, _)| *taken)
        .expect("at least one run")
}

/// Prints a table row, with its ratio to `floor` (in MB/s) if it has one; returns its MB/s.
fn row(operation: &str, bytes: u64, taken: Duration, floor: Option<f64>) -> f64 {
    let rate = bytes as f64 / MB / taken.as_secs_f64();
    let ratio = floor.map_or(String::new(), |f| format!("{:.2}×", rate / f));
    println!(
        "| {operation} | {:.0} | {:.2} | {rate:.0} | {ratio} |",
        bytes as f64 / MB,
        taken.as_secs_f64()
    );
    rate
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

fn remove_if_present(path: &Path) {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{}: {e}", path.display()),
        _ => {}
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}
