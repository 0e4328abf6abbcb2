//! What the MCP benchmarks share: timing helpers, the FastMCP peer, and a small MCP client
//! that opens the session a load runs in and checks a search answers what it should.

// Each benchmark uses some of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::setup::{Peer, WrkResult, wrk, wrk_script};

/// How long each query took, one after another, sorted.
pub fn latencies(queries: &[String], mut run: impl FnMut(&str)) -> Vec<Duration> {
    let mut taken: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            run(q);
            started.elapsed()
        })
        .collect();
    taken.sort();
    taken
}

/// Runs `total` runs over `inputs`, shared by `clients` threads; runs a second.
pub fn throughput(
    inputs: &[String],
    clients: usize,
    total: usize,
    run: impl Fn(&str) + Send + Sync + 'static,
) -> f64 {
    let run = Arc::new(run);
    let inputs = Arc::new(inputs.to_vec());
    let per_client = total / clients;
    let barrier = Arc::new(std::sync::Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (run, inputs, barrier) =
                (Arc::clone(&run), Arc::clone(&inputs), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per_client {
                    run(&inputs[(client * 131 + i * 7) % inputs.len()]);
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for thread in threads {
        thread.join().expect("client");
    }
    (per_client * clients) as f64 / started.elapsed().as_secs_f64()
}

pub fn percentile(sorted: &[Duration], pick: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * pick).round() as usize]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `tools/call search` for each of `queries` in turn, asking `limit` hits, through `session`
/// with `wrk` from `connections` connections for `seconds`.
pub fn mcp_load(
    dir: &Path,
    name: &str,
    session: &McpClient,
    queries: &[String],
    limit: u32,
    connections: u32,
    seconds: u32,
) -> WrkResult {
    let bodies: Vec<(String, Option<String>)> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let body = session.search_request(i + 10, q, limit);
            ("/mcp".to_string(), Some(body.to_string()))
        })
        .collect();
    let headers = session.headers();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let script = wrk_script(dir, name, &headers, &bodies);
    let url = session.url.trim_end_matches("/mcp");
    wrk(url, connections, seconds, Some(&script))
}

pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The FastMCP peer, serving the records in `jsonl` from its own SQLite file.
pub fn fastmcp_peer(dir: &Path, jsonl: &Path) -> Peer {
    let python = std::env::var("STRONGBOX_BENCH_PYTHON")
        .expect("STRONGBOX_BENCH_PYTHON: a Python with the mcp package (scripts/bench.sh)");
    let port = Peer::free_port();
    let mut command = Command::new(python);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/peers/fastmcp_search.py"))
        .arg(jsonl)
        .arg(dir.join("fastmcp.db"))
        .arg(port.to_string());
    Peer::start(command, port)
}

/// An MCP client in one session, speaking JSON-RPC over streamable HTTP; used to open the
/// session the load runs in and to check that a search answers what it should.
pub struct McpClient {
    pub url: String,
    token: Option<String>,
    session: String,
    /// Speaks 2026-07-28: no session, each `tools/call search` carrying its envelope.
    stateless: bool,
}

/// The 2026-07-28 envelope a stateless request carries in `params._meta`.
pub fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
    })
}

impl McpClient {
    /// A client of the 2026-07-28 revision, which needs no session: its requests here are
    /// all `tools/call search`, which its headers name.
    pub fn stateless(url: &str, token: &str) -> Self {
        Self {
            url: url.to_string(),
            token: Some(token.to_string()),
            session: String::new(),
            stateless: true,
        }
    }

    pub fn connect(url: &str, token: Option<&str>) -> Self {
        let mut client = Self {
            url: url.to_string(),
            token: token.map(str::to_string),
            session: String::new(),
            stateless: false,
        };
        let (session, _) = client.post(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "bench", "version": "1"}}}));
        client.session = session.expect("session id");
        client.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        client
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "Accept".into(),
                "application/json, text/event-stream".into(),
            ),
        ];
        match self.stateless {
            true => headers.extend([
                ("MCP-Protocol-Version".into(), "2026-07-28".into()),
                ("Mcp-Method".into(), "tools/call".into()),
                ("Mcp-Name".into(), "search".into()),
            ]),
            false => headers.push(("MCP-Protocol-Version".into(), "2025-06-18".into())),
        }
        if !self.session.is_empty() {
            headers.push(("Mcp-Session-Id".into(), self.session.clone()));
        }
        if let Some(token) = &self.token {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        headers
    }

    /// POSTs `message`; the session id the answer gave, and the answer (JSON, or the one
    /// message of an event stream).
    pub fn post(&self, message: Value) -> (Option<String>, Value) {
        let mut request = http().post(&self.url);
        for (name, value) in self.headers() {
            request = request.header(&name, &value);
        }
        let mut response = request.send_json(message).expect("mcp request");
        assert!(response.status().is_success(), "{}", response.status());
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.body_mut().read_to_string().expect("body");
        let json = text
            .lines()
            .find_map(|line| line.strip_prefix("data:"))
            .unwrap_or(&text)
            .trim();
        (session, serde_json::from_str(json).unwrap_or(Value::Null))
    }

    /// The `tools/call search` request for `query`, as this client sends it.
    pub fn search_request(&self, id: usize, query: &str, limit: u32) -> Value {
        let mut params = json!({"name": "search", "arguments": {"query": query, "limit": limit}});
        if self.stateless {
            params["_meta"] = stateless_meta();
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
    }

    /// Checks that a search for `query` answers hits, at most `limit`, with no email
    /// address in them when `masked`.
    pub fn check_search(&self, query: &str, limit: u32, masked: bool) {
        let (_, answer) = self.post(self.search_request(1, query, limit));
        let hits = answer["result"]["structuredContent"]["hits"]
            .as_array()
            .map_or(0, Vec::len);
        assert!((1..=limit as usize).contains(&hits), "{answer}");
        if masked {
            assert!(
                !answer.to_string().contains("@example.com"),
                "unmasked email"
            );
        }
    }
}
