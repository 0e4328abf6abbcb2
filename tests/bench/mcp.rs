//! The MCP `search` tool over 100,000 records, against a floor measured in the same run:
//! the same full-text query (FTS5 with its snippet) run in-process on a read handle of the
//! same SQLCipher database. Strongbox's figure is the whole path an AI client sees: HTTP,
//! the bearer token and session checks, the membership check, the query, masking every
//! hit, and the usage row each call writes.
//!
//! Latency (p50, p99) with one client; throughput with 16 clients at once, each in its own
//! session. Run by `scripts/bench.sh`, which records the output in BENCHMARKS.md.

mod setup;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strongbox::workspace::records::{self, CollectionName, RecordId};

const RECORDS: usize = 100_000;
/// Each search word is in this many records; a query asks for the first page of 10.
const RECORDS_PER_WORD: usize = 20;
const WORDS: usize = RECORDS / RECORDS_PER_WORD;
const SINGLE_CLIENT_QUERIES: usize = 2_000;
const CLIENTS: usize = 16;
const QUERIES_PER_CLIENT: usize = 250;

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = setup::config(tmp.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (state, user) = setup::app(&config, &runtime);
    let store = Arc::clone(&state.store);
    let (workspace, token) = runtime.block_on(async {
        let workspace = state
            .workspaces
            .create(user, "Search".into())
            .await
            .expect("workspace");
        let (token, _) = state
            .tokens
            .create(user, workspace, "bench".into(), "read".into())
            .await
            .expect("token");
        (workspace, token.to_string())
    });
    let db = store.workspace(workspace).expect("workspace db");
    let started = Instant::now();
    fill(&db);
    let filled = started.elapsed();
    let url = setup::serve(state);

    // Floor: the FTS5 query in-process.
    let floor_one = latencies(|q| {
        let hits = db
            .read(|c| records::search(c, &q, 10, 0).map_err(strongbox::store::StoreError::from))
            .expect("search");
        assert_eq!(hits.len(), 10);
    });
    let floor_many = throughput(|client| {
        let db = Arc::clone(&db);
        move |q: String| {
            let hits = db
                .read(|c| records::search(c, &q, 10, 0).map_err(strongbox::store::StoreError::from))
                .expect("search");
            assert_eq!(hits.len(), 10, "client {client}");
        }
    });

    // Strongbox: tools/call search over HTTP.
    let mut one = McpClient::connect(&url, &token);
    let full_one = latencies(|q| one.search(&q));
    let full_many = throughput(|_| {
        let mut client = McpClient::connect(&url, &token);
        move |q: String| client.search(&q)
    });

    println!(
        "{RECORDS} records of about 300 bytes (each with an email address, masked in every hit), \
         filled in {:.0} s; each query is a word found in {RECORDS_PER_WORD} records, first page of 10.\n",
        filled.as_secs_f64()
    );
    println!(
        "| measure | floor: FTS5 query in-process | strongbox: MCP tools/call search over HTTP | ratio |"
    );
    println!("|---|---|---|---|");
    for (name, pick) in [("p50", 0.50), ("p99", 0.99)] {
        let (floor, full) = (percentile(&floor_one, pick), percentile(&full_one, pick));
        println!(
            "| {name} latency, 1 client | {:.2} ms | {:.2} ms | {:.1}× |",
            ms(floor),
            ms(full),
            full.as_secs_f64() / floor.as_secs_f64()
        );
    }
    println!(
        "| throughput, {CLIENTS} clients | {floor_many:.0} queries/s | {full_many:.0} queries/s | {:.3}× |",
        full_many / floor_many
    );
}

/// Fills the workspace with `RECORDS` customers, 10,000 to a transaction.
fn fill(db: &strongbox::store::Database) {
    let rules = setup::record_rules();
    let collection = CollectionName::parse("customers").expect("name");
    let cities = ["Pune", "Leeds", "Lyon", "Porto", "Austin", "Osaka", "Accra"];
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(10_000) {
        db.write(|tx| {
            for &n in chunk {
                let data = json!({
                    "name": format!("Customer {n}"),
                    "email": format!("customer{n}@example.com"),
                    "city": cities[n % cities.len()],
                    "balance": n % 9973,
                    "note": format!(
                        "Account {} reviewed; ledger reconciled for the quarter, no open disputes, \
                         payment terms net thirty, contact prefers email over phone.",
                        word(n % WORDS)
                    ),
                });
                let id = RecordId::parse(&format!("c{n:06}")).expect("id");
                records::upsert(tx, &collection, &id, &rules.data(data).expect("data"), 1)
                    .map_err(strongbox::store::StoreError::from)?;
            }
            Ok::<_, strongbox::store::StoreError>(())
        })
        .expect("fill");
    }
}

/// The search word of group `n`: a made-up account code.
fn word(n: usize) -> String {
    format!("acct{n:05}")
}

/// How long each of `SINGLE_CLIENT_QUERIES` queries took, one after another, sorted.
fn latencies(mut run: impl FnMut(String)) -> Vec<Duration> {
    let mut taken: Vec<Duration> = (0..SINGLE_CLIENT_QUERIES)
        .map(|i| {
            let query = word((i * 7) % WORDS);
            let started = Instant::now();
            run(query);
            started.elapsed()
        })
        .collect();
    taken.sort();
    taken
}

/// Queries a second with `CLIENTS` threads, each running `QUERIES_PER_CLIENT` queries
/// through the runner `make(client)` returns.
fn throughput<R: FnMut(String) + Send + 'static>(make: impl Fn(usize) -> R) -> f64 {
    let runners: Vec<R> = (0..CLIENTS).map(&make).collect();
    let barrier = Arc::new(std::sync::Barrier::new(CLIENTS + 1));
    let threads: Vec<_> = runners
        .into_iter()
        .enumerate()
        .map(|(client, mut run)| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..QUERIES_PER_CLIENT {
                    run(word((client * 131 + i * 7) % WORDS));
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for thread in threads {
        thread.join().expect("client");
    }
    (CLIENTS * QUERIES_PER_CLIENT) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], pick: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * pick).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An MCP client in one session, speaking JSON-RPC over HTTP as AI clients do.
struct McpClient {
    http: ureq::Agent,
    url: String,
    token: String,
    session: String,
    next_id: u64,
}

impl McpClient {
    fn connect(base: &str, token: &str) -> Self {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{base}/mcp");
        let response = http
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Accept", "application/json, text/event-stream")
            .send_json(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"}}}),
            )
            .expect("initialize");
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .expect("session id")
            .to_string();
        Self {
            http,
            url,
            token: token.to_string(),
            session,
            next_id: 1,
        }
    }

    fn search(&mut self, query: &str) {
        self.next_id += 1;
        let mut response = self
            .http
            .post(&self.url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Session-Id", &self.session)
            .header("MCP-Protocol-Version", "2025-11-25")
            .send_json(
                json!({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
                "params": {"name": "search", "arguments": {"query": query, "limit": 10}}}),
            )
            .expect("search");
        assert_eq!(response.status(), 200);
        let body: Value = response.body_mut().read_json().expect("json");
        let hits = &body["result"]["structuredContent"]["hits"];
        assert_eq!(hits.as_array().map(Vec::len), Some(10), "{body}");
        assert!(!body.to_string().contains("@example.com"), "unmasked email");
    }
}
