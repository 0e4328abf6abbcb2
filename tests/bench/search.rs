//! Search and record reads over 100,000 records of about 1 KB, each figure against a floor
//! measured in the same run and, where one does the same job, a peer serving the same
//! records on the same machine:
//! - MCP `search`: latency with one client and throughput with 16; floor: the same FTS5
//!   query on the shown index (the records as AI clients are shown them) in-process on a
//!   read handle of the same SQLCipher database; peer: an MCP server written with the
//!   official Python SDK's FastMCP over SQLite FTS5.
//! - The shown index: how long adding a masking rule takes, which rebuilds it for every
//!   record in the rule's transaction.
//! - REST record read by id: throughput; floor: the same read in-process; peer: PocketBase.
//! - REST search: throughput; peer: PocketBase's record list with a `~` filter, its
//!   full-text-style search.
//!
//! Strongbox's figures are the whole path a client sees: HTTP, the bearer token, the
//! session and membership checks, and the query (for MCP, on the shown index, whose rows
//! were masked when the records were written; filling includes that). Load comes from
//! `wrk` on 127.0.0.1. Run by `scripts/bench.sh`, which gives the peers' executables in
//! `STRONGBOX_BENCH_PYTHON` and `STRONGBOX_BENCH_POCKETBASE`.

mod mcp_load;
mod setup;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_load::{McpClient, fastmcp_peer, http, latencies, mcp_load, ms, percentile, throughput};
use serde_json::{Value, json};
use setup::{Peer, WrkResult, wrk, wrk_script};
use strongbox::store::{Database, StoreError};
use strongbox::workspace::records::{self, CollectionName, RecordId};
use strongbox::workspace::shown;

/// Each search word is in this many records; a query asks for the first page.
const RECORDS_PER_WORD: usize = 20;
const CLIENTS: usize = 16;
const COLLECTION: &str = "customers";

struct Scale {
    records: usize,
    seconds: u32,
    floor_queries: usize,
}

fn main() {
    let scale = match setup::quick() {
        true => Scale {
            records: 10_000,
            seconds: 3,
            floor_queries: 500,
        },
        false => Scale {
            records: 100_000,
            seconds: 10,
            floor_queries: 2_000,
        },
    };
    let words = scale.records / RECORDS_PER_WORD;
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = setup::config(tmp.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (state, user) = setup::app(&config, &runtime);
    let store = Arc::clone(&state.store);
    let (workspace, token) = setup::workspace_with_token(&state, user, "Search", &runtime);
    let db = store.workspace(workspace).expect("workspace db");
    let jsonl = tmp.path().join("records.jsonl");
    let started = Instant::now();
    let customers = (0..scale.records).map(|n| (record_id(n), customer(n, words)));
    setup::fill_records(&db, COLLECTION, customers, &jsonl);
    let filled = started.elapsed();
    // A rule on a term the records do not hold: the answers stay the same, the whole
    // shown index is rebuilt all the same.
    let started = Instant::now();
    runtime
        .block_on(state.workspaces.put_masking_rule(
            user,
            workspace,
            "Globex Ltd".into(),
            "alias".into(),
            "Client G".into(),
        ))
        .expect("masking rule");
    let rule_added = started.elapsed();
    let url = setup::serve(state);
    let queries: Vec<String> = (0..words).map(|i| word((i * 7) % words)).collect();
    let ids: Vec<String> = (0..1_000)
        .map(|i| record_id((i * 7_919) % scale.records))
        .collect();

    println!(
        "{} records of about 1 KB (each with an email address, masked in every MCP hit), filled \
         in {:.0} s with their shown rows; adding a masking rule, which rebuilds the shown index \
         of every record in its transaction, took {:.1} s. Each search is a word found in \
         {RECORDS_PER_WORD} records. Load from `wrk` for {} s a figure: one connection for \
         latency, {CLIENTS} for throughput.\n",
        scale.records,
        filled.as_secs_f64(),
        rule_added.as_secs_f64(),
        scale.seconds
    );

    // MCP search: floor, Strongbox, FastMCP.
    let floor_latency = latencies(&queries[..scale.floor_queries.min(words)], |q| {
        assert_eq!(search_in_process(&db, q), 10);
    });
    let floor_search = throughput(&queries, CLIENTS, scale.floor_queries, {
        let db = Arc::clone(&db);
        move |q| assert_eq!(search_in_process(&db, q), 10)
    });
    // One connection for latency, then `CLIENTS` for throughput.
    let loads = |name: &str, session: &McpClient| {
        let load = |connections| {
            mcp_load(
                tmp.path(),
                name,
                session,
                &queries,
                10,
                connections,
                scale.seconds,
            )
        };
        (load(1), load(CLIENTS as u32))
    };
    let strongbox_mcp = {
        let session = McpClient::connect(&format!("{url}/mcp"), Some(&token));
        session.check_search(&queries[0], 10, true);
        loads("strongbox-mcp", &session)
    };
    let fastmcp = {
        let peer = fastmcp_peer(tmp.path(), &jsonl);
        let session = McpClient::connect(&format!("{}/mcp", peer.url), None);
        session.check_search(&queries[0], 10, false);
        loads("fastmcp", &session)
    };
    println!("### MCP `search`, first page of 10 hits\n");
    println!(
        "| measure | floor: FTS5 query on the shown index in-process | strongbox: MCP over HTTP \
         | ratio to floor | peer: FastMCP (Python SDK) over SQLite FTS5 | strongbox/peer |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, pick, full, peer) in [
        ("p50", 0.50, strongbox_mcp.0.p50, fastmcp.0.p50),
        ("p99", 0.99, strongbox_mcp.0.p99, fastmcp.0.p99),
    ] {
        let floor = percentile(&floor_latency, pick);
        println!(
            "| {name} latency, 1 client | {} | {} | {:.1}× | {} | {:.2}× |",
            ms(floor),
            ms(full),
            full.as_secs_f64() / floor.as_secs_f64(),
            ms(peer),
            full.as_secs_f64() / peer.as_secs_f64()
        );
    }
    println!(
        "| throughput, {CLIENTS} clients | {floor_search:.0}/s | {:.0}/s | {:.2}× | {:.0}/s | {:.2}× |",
        strongbox_mcp.1.requests_per_sec,
        strongbox_mcp.1.requests_per_sec / floor_search,
        fastmcp.1.requests_per_sec,
        strongbox_mcp.1.requests_per_sec / fastmcp.1.requests_per_sec
    );
    let target = floor_latency_target(percentile(&floor_latency, 0.5));
    println!(
        "\nTarget: MCP search p50 within 2× the floor plus 1 ms ({}): {}.\n",
        ms(target),
        setup::verdict(strongbox_mcp.0.p50 <= target)
    );

    // REST reads by id and searches: floor, Strongbox, PocketBase.
    let collection = CollectionName::parse(COLLECTION).expect("collection");
    let floor_read = throughput(&ids, CLIENTS, scale.floor_queries * 10, {
        let db = Arc::clone(&db);
        move |id| {
            let id = RecordId::parse(id).expect("id");
            let found = db
                .read(|c| records::get(c, &collection, &id).map_err(StoreError::from))
                .expect("read");
            assert!(found.is_some());
        }
    });
    let bearer = format!("Bearer {token}");
    let strongbox_read = rest_load(
        tmp.path(),
        "strongbox-read",
        &url,
        &bearer,
        &ids.iter()
            .map(|id| format!("/api/v1/collections/{COLLECTION}/records/{id}"))
            .collect::<Vec<_>>(),
        scale.seconds,
    );
    let strongbox_search = rest_load(
        tmp.path(),
        "strongbox-search",
        &url,
        &bearer,
        &queries
            .iter()
            .map(|q| format!("/api/v1/search?q={q}"))
            .collect::<Vec<_>>(),
        scale.seconds,
    );
    let (pocketbase_read, pocketbase_search) = {
        let (peer, auth) = pocketbase_peer(tmp.path(), &jsonl);
        let read = rest_load(
            tmp.path(),
            "pocketbase-read",
            &peer.url,
            &auth,
            &ids.iter()
                .map(|id| format!("/api/collections/{COLLECTION}/records/{id}"))
                .collect::<Vec<_>>(),
            scale.seconds,
        );
        let search = rest_load(
            tmp.path(),
            "pocketbase-search",
            &peer.url,
            &auth,
            &queries
                .iter()
                .map(|q| {
                    format!(
                        "/api/collections/{COLLECTION}/records?perPage=25&skipTotal=1&filter=note%7E%27{q}%27"
                    )
                })
                .collect::<Vec<_>>(),
            scale.seconds,
        );
        (read, search)
    };
    println!("### REST reads and searches, {CLIENTS} connections\n");
    println!(
        "| measure | floor: in-process | strongbox | ratio to floor | peer: PocketBase | strongbox/peer |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| record by id, requests/s | {floor_read:.0} | {:.0} | {:.2}× | {:.0} | {:.2}× |",
        strongbox_read.requests_per_sec,
        strongbox_read.requests_per_sec / floor_read,
        pocketbase_read.requests_per_sec,
        strongbox_read.requests_per_sec / pocketbase_read.requests_per_sec
    );
    println!(
        "| search, first page of 25, requests/s | {floor_search:.0} (page of 10) | {:.0} | | {:.0} | {:.2}× |",
        strongbox_search.requests_per_sec,
        pocketbase_search.requests_per_sec,
        strongbox_search.requests_per_sec / pocketbase_search.requests_per_sec
    );
    println!(
        "\nTarget: search and read throughput ahead of both peers: {}.",
        setup::verdict(
            strongbox_mcp.1.requests_per_sec > fastmcp.1.requests_per_sec
                && strongbox_read.requests_per_sec > pocketbase_read.requests_per_sec
                && strongbox_search.requests_per_sec > pocketbase_search.requests_per_sec
        )
    );
    println!(
        "\nStrongbox's REST search uses its FTS5 index; PocketBase has no full-text index, so its \
         `~` filter is a `LIKE` over every record's `note`. The peers keep plain SQLite files; \
         Strongbox decrypts every page it reads (SQLCipher).\n"
    );
}

fn floor_latency_target(floor: Duration) -> Duration {
    floor * 2 + Duration::from_millis(1)
}

/// One record's id, the same in Strongbox and in the peers (PocketBase wants 15 characters).
fn record_id(n: usize) -> String {
    format!("c{n:014}")
}

/// The search word of group `n`: a made-up account code.
fn word(n: usize) -> String {
    format!("acct{n:05}")
}

/// Sentences a note is made of: ordinary words that many records share, as in real notes.
const SENTENCES: [&str; 12] = [
    "Quarterly review completed with the regional team and the outcome filed with finance.",
    "Invoices for the period were reconciled against the ledger without exceptions.",
    "The customer asked for consolidated statements and a single monthly payment run.",
    "Delivery schedule confirmed for the spring season, warehouse notified of volumes.",
    "Credit limit reviewed against last year's turnover; no change recommended for now.",
    "Support tickets closed within the agreed response times, satisfaction noted as high.",
    "Contract renewal due in the autumn; draft terms sent to the procurement office.",
    "Prefers email over phone, replies within a day, and keeps meetings to thirty minutes.",
    "Site visit planned with the operations lead to look at the new packing line.",
    "Payment terms net thirty, early settlement discount of two percent accepted.",
    "Asked about volume pricing for the new catalogue and the returns policy for samples.",
    "Account manager changed this quarter; handover notes shared with the whole team.",
];

/// Record `n`: a customer of about 1 KB whose note holds its group's search word.
fn customer(n: usize, words: usize) -> Value {
    let cities = ["Pune", "Leeds", "Lyon", "Porto", "Austin", "Osaka", "Accra"];
    let mut note = format!("Account {} reviewed.", word(n % words));
    for k in 0..10 {
        note.push(' ');
        note.push_str(SENTENCES[(n * 7 + k * 5) % SENTENCES.len()]);
    }
    json!({
        "name": format!("Customer {n}"),
        "email": format!("customer{n}@example.com"),
        "city": cities[n % cities.len()],
        "balance": n % 9973,
        "note": note,
    })
}

/// The MCP search's query, run in-process on the shown index: how many hits it found.
fn search_in_process(db: &Database, query: &str) -> usize {
    db.read(|c| shown::search(c, query, 10, 0).map_err(StoreError::from))
        .expect("search")
        .len()
}

/// GETs of `paths` with `authorization`, from `CLIENTS` connections.
fn rest_load(
    dir: &Path,
    name: &str,
    url: &str,
    authorization: &str,
    paths: &[String],
    seconds: u32,
) -> WrkResult {
    let client = http();
    let mut first = client
        .get(&format!("{url}{}", paths[0]))
        .header("Authorization", authorization)
        .call()
        .expect("first request");
    assert_eq!(
        first.status(),
        200,
        "{name}: {}",
        first.body_mut().read_to_string().unwrap_or_default()
    );
    let requests: Vec<(String, Option<String>)> = paths.iter().map(|p| (p.clone(), None)).collect();
    let script = wrk_script(dir, name, &[("Authorization", authorization)], &requests);
    wrk(url, CLIENTS as u32, seconds, Some(&script))
}

/// PocketBase with a `customers` collection holding the records in `jsonl`, loaded through
/// its batch API; returns it and a superuser's `Authorization` value.
fn pocketbase_peer(dir: &Path, jsonl: &Path) -> (Peer, String) {
    let binary = std::env::var("STRONGBOX_BENCH_POCKETBASE")
        .expect("STRONGBOX_BENCH_POCKETBASE: the pocketbase executable (scripts/bench.sh)");
    let data = dir.join("pb_data");
    let (email, password) = ("bench@example.com", "a long benchmark passphrase");
    let status = Command::new(&binary)
        .args(["superuser", "upsert", email, password, "--dir"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("pocketbase superuser");
    assert!(status.success());
    let port = Peer::free_port();
    let mut command = Command::new(&binary);
    command
        .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--dir"])
        .arg(&data)
        .stdout(std::process::Stdio::null());
    let peer = Peer::start(command, port);
    let client = http();
    let post = |path: &str, auth: Option<&str>, body: Value| -> Value {
        let mut request = client.post(&format!("{}{path}", peer.url));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let mut response = request.send_json(body).expect("pocketbase request");
        let status = response.status();
        let body: Value = response.body_mut().read_json().unwrap_or(Value::Null);
        assert!(status.is_success(), "pocketbase {path}: {status} {body}");
        body
    };
    let auth = post(
        "/api/collections/_superusers/auth-with-password",
        None,
        json!({"identity": email, "password": password}),
    )["token"]
        .as_str()
        .expect("token")
        .to_string();
    post(
        "/api/collections",
        Some(&auth),
        json!({"name": COLLECTION, "type": "base", "fields": [
            {"name": "name", "type": "text"},
            {"name": "email", "type": "text"},
            {"name": "city", "type": "text"},
            {"name": "balance", "type": "number"},
            {"name": "note", "type": "text", "max": 10000},
        ]}),
    );
    let mut response = client
        .patch(&format!("{}/api/settings", peer.url))
        .header("Authorization", &auth)
        .send_json(json!({"batch": {"enabled": true, "maxRequests": 1000, "timeout": 60}}))
        .expect("settings");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.body_mut().read_to_string()
    );
    let lines = std::fs::read_to_string(jsonl).expect("jsonl");
    let rows: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    for chunk in rows.chunks(1_000) {
        let requests: Vec<Value> = chunk
            .iter()
            .map(|row| {
                let mut body = row["data"].clone();
                body["id"] = row["id"].clone();
                json!({"method": "POST", "url": format!("/api/collections/{COLLECTION}/records"), "body": body})
            })
            .collect();
        post("/api/batch", Some(&auth), json!({ "requests": requests }));
    }
    (peer, auth)
}
