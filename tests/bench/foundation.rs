//! Foundation benchmarks, each reported as a ratio against a floor measured in the same run:
//! - cold open of a workspace through the store and a first query in it, against opening
//!   the same SQLCipher file with its raw key and the same query, in-process with nothing
//!   around it;
//! - `/healthz` throughput through the full middleware stack, against a bare actix-web
//!   handler with the same body and worker count (load from `wrk`).
//!
//! Run by `scripts/bench.sh`, which records the output in BENCHMARKS.md.

mod setup;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use rusqlite::{Connection, OpenFlags};
use strongbox::config::Config;
use strongbox::crypto::KeyPurpose;
use strongbox::http::{self, AppState};
use strongbox::ids::WorkspaceId;
use strongbox::store::StoreError;

const WORKSPACES: usize = 300;
const ROUNDS: usize = 3;
const WRK_SECONDS: u32 = 10;
const WRK_CONNECTIONS: u32 = 32;

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        data_dir: tmp.path().join("data"),
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    config.storage.workspace_cache_size = 1;
    config.rate_limits.general.per_minute = 1_000_000;
    config.rate_limits.general.burst = 1_000_000;

    println!("## Cold workspace open\n");
    cold_open(&config);
    println!("\n## `/healthz` throughput\n");
    healthz_throughput(config);
}

fn cold_open(config: &Config) {
    strongbox::app::init(config).expect("init");
    let store = strongbox::app::open(config).expect("open").store;
    let ids: Vec<WorkspaceId> = (0..WORKSPACES).map(|_| WorkspaceId::new_random()).collect();
    for id in &ids {
        store.create_workspace(*id).expect("create");
    }
    // Keys for the floor are derived up front: the floor is the open itself.
    let ring = setup::key_ring(&config.data_dir);
    let floor_inputs: Vec<_> = ids
        .iter()
        .map(|id| {
            let path = store.layout().workspace_db(*id);
            (
                path,
                ring.derive(KeyPurpose::WorkspaceDb(*id), 1)
                    .sqlcipher_raw_key(),
            )
        })
        .collect();

    let mut floor = Vec::new();
    let mut full = Vec::new();
    for _ in 0..ROUNDS {
        for (path, key) in &floor_inputs {
            let started = Instant::now();
            let conn =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).expect("open");
            conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.as_str()))
                .expect("key");
            let _: i64 = conn
                .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
                .expect("first query");
            drop(conn);
            floor.push(started.elapsed());
        }
        // The cache holds one workspace, so walking the list makes every open cold.
        for id in &ids {
            let started = Instant::now();
            let db = store.workspace(*id).expect("open workspace");
            let _: i64 = db
                .read(|c| {
                    c.query_row("SELECT count(*) FROM records", [], |r| r.get(0))
                        .map_err(StoreError::from)
                })
                .expect("first query");
            drop(db);
            full.push(started.elapsed());
        }
    }
    let (floor_p50, floor_p99) = percentiles(&mut floor);
    let (full_p50, full_p99) = percentiles(&mut full);
    println!(
        "{} workspaces × {ROUNDS} rounds, cache size 1 so every open is cold.\n",
        WORKSPACES
    );
    println!(
        "| measure | floor: raw-key open + first query | strongbox: `Store::workspace` + first query | ratio |"
    );
    println!("|---|---|---|---|");
    println!(
        "| p50 | {} | {} | {:.2}× |",
        fmt(floor_p50),
        fmt(full_p50),
        full_p50.as_secs_f64() / floor_p50.as_secs_f64()
    );
    println!(
        "| p99 | {} | {} | {:.2}× |",
        fmt(floor_p99),
        fmt(full_p99),
        full_p99.as_secs_f64() / floor_p99.as_secs_f64()
    );
    println!(
        "\nTarget: a cold open and first query under 2 ms at the p50: {}.",
        setup::verdict(full_p50 < Duration::from_millis(2))
    );
    passphrase_contrast(&floor_inputs[0].0);
}

/// What a passphrase (PBKDF2) open would cost instead, on a scratch file.
fn passphrase_contrast(sample: &std::path::Path) {
    let scratch = sample.with_file_name("passphrase-contrast.db");
    let conn = Connection::open(&scratch).expect("scratch");
    conn.execute_batch("PRAGMA key = 'a passphrase'; CREATE TABLE t (x);")
        .expect("create");
    drop(conn);
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let conn = Connection::open(&scratch).expect("open");
        conn.execute_batch("PRAGMA key = 'a passphrase';")
            .expect("key");
        let _: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .expect("read");
        samples.push(started.elapsed());
    }
    let (p50, _) = percentiles(&mut samples);
    println!(
        "\nFor contrast, a passphrase (PBKDF2) open of the same kind of file: p50 {}.",
        fmt(p50)
    );
    std::fs::remove_file(&scratch).ok();
}

fn healthz_throughput(config: Config) {
    let store = Arc::new(strongbox::app::open(&config).expect("open").store);
    let clock: strongbox::clock::SharedClock = Arc::new(strongbox::clock::SystemClock);
    let state = AppState::new(Arc::new(config), store, clock).expect("state");
    let full_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let floor_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let full_url = format!(
        "http://{}/healthz",
        full_listener.local_addr().expect("addr")
    );
    let floor_url = format!(
        "http://{}/healthz",
        floor_listener.local_addr().expect("addr")
    );
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let full = http::server(full_listener, state).expect("server");
            let floor = HttpServer::new(|| {
                App::new().route(
                    "/healthz",
                    web::get().to(|| async {
                        HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
                    }),
                )
            })
            .listen(floor_listener)
            .expect("floor listen")
            .run();
            let _ = futures_join(full, floor).await;
        });
    });
    std::thread::sleep(Duration::from_millis(300));

    let floor = setup::wrk(&floor_url, WRK_CONNECTIONS, WRK_SECONDS, None);
    let full = setup::wrk(&full_url, WRK_CONNECTIONS, WRK_SECONDS, None);
    println!(
        "`wrk -t2 -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s --latency`, server and load generator on the same machine.\n"
    );
    println!("| measure | floor: bare actix-web handler | strongbox: full middleware | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| requests/s | {:.0} | {:.0} | {:.2}× |",
        floor.requests_per_sec,
        full.requests_per_sec,
        full.requests_per_sec / floor.requests_per_sec
    );
    println!("| p50 latency | {} | {} | |", fmt(floor.p50), fmt(full.p50));
    println!("| p99 latency | {} | {} | |", fmt(floor.p99), fmt(full.p99));
}

async fn futures_join(a: actix_web::dev::Server, b: actix_web::dev::Server) {
    let a = actix_web::rt::spawn(a);
    let _ = b.await;
    let _ = a.await;
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn fmt(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
