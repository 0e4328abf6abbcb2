//! What the benchmarks share: the real app on a temporary data dir with its owner signed
//! up, and the HTTP server on a loopback port; `wrk` runs; peer servers to compare with.

// Each benchmark uses some of these.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use strongbox::auth::{Device, UserId};
use strongbox::config::Config;
use strongbox::http::{self, AppState};
use strongbox::workspace::records::{RecordLimits, RecordRules};
use zeroize::Zeroizing;

/// A config on `dir` with rate limits out of the way of a load test.
pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    for limit in [
        &mut config.rate_limits.general,
        &mut config.rate_limits.auth,
        &mut config.rate_limits.account,
    ] {
        limit.per_minute = 1_000_000;
        limit.burst = 1_000_000;
    }
    config
}

/// The app's state on a fresh data dir, and its owner.
pub fn app(config: &Config, runtime: &tokio::runtime::Runtime) -> (AppState, UserId) {
    strongbox::app::init(config).expect("init");
    let store = Arc::new(strongbox::app::open(config).expect("open").store);
    let clock: strongbox::clock::SharedClock = Arc::new(strongbox::clock::SystemClock);
    let state = AppState::new(Arc::new(config.clone()), store, clock).expect("state");
    let user = runtime.block_on(async {
        let link = state
            .auth
            .first_run_setup_link()
            .await
            .expect("link")
            .expect("no owner");
        let token = link.split("token=").nth(1).expect("token in link");
        let session = state
            .auth
            .complete_setup(
                token.to_string(),
                "bench@example.com".into(),
                Zeroizing::new("a long benchmark passphrase".into()),
                Device::new("127.0.0.1", "bench"),
            )
            .await
            .expect("owner");
        session.user.id
    });
    (state, user)
}

/// A new workspace of `user`'s named `name`, and a read-only personal token for it.
pub fn workspace_with_token(
    state: &AppState,
    user: UserId,
    name: &str,
    runtime: &tokio::runtime::Runtime,
) -> (strongbox::ids::WorkspaceId, String) {
    runtime.block_on(async {
        let workspace = state
            .workspaces
            .create(user, name.into())
            .await
            .expect("workspace");
        let (token, _) = state
            .tokens
            .create(user, workspace, "bench".into(), "read".into())
            .await
            .expect("token");
        (workspace, token.to_string())
    })
}

/// Serves `state` on a loopback port in a thread of its own; returns the base URL.
pub fn serve(state: AppState) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            http::server(listener, state)
                .expect("server")
                .await
                .expect("run");
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    url
}

/// Record limits roomy enough for the benchmarks' records.
pub fn record_rules() -> RecordRules {
    RecordRules::new(
        RecordLimits {
            max_record_bytes: 64 * 1024,
            max_fields: 200,
        },
        "[a-z][a-z0-9_]{0,63}",
    )
    .expect("rules")
}

/// Writes `records` (id and data) into `collection` of `db`, with their shown rows, 10,000 to
/// a transaction, and the same records as JSON Lines to `jsonl` for the peers.
pub fn fill_records(
    db: &strongbox::store::Database,
    collection: &str,
    records: impl Iterator<Item = (String, serde_json::Value)>,
    jsonl: &std::path::Path,
) {
    use std::io::Write;
    use strongbox::workspace::records::{self, CollectionName, RecordId};
    use strongbox::workspace::shown::ShownWriter;
    let rules = record_rules();
    let name = CollectionName::parse(collection).expect("collection name");
    let mut out = std::io::BufWriter::new(std::fs::File::create(jsonl).expect("jsonl"));
    let mut records = records.peekable();
    while records.peek().is_some() {
        db.write(|tx| {
            let shown = ShownWriter::open(tx)?;
            for (id, data) in records.by_ref().take(10_000) {
                let line = serde_json::json!({"collection": collection, "id": id, "data": data});
                writeln!(out, "{line}").expect("write jsonl");
                let id = RecordId::parse(&id).expect("record id");
                let data = rules.data(data).expect("record data");
                records::upsert(tx, &shown, &name, &id, &data, 1)?;
            }
            Ok::<_, strongbox::workspace::WorkspaceError>(())
        })
        .expect("fill");
    }
    out.flush().expect("flush jsonl");
}

/// `scripts/bench.sh --quick`: smaller data and shorter runs, for a first look.
pub fn quick() -> bool {
    std::env::var_os("STRONGBOX_BENCH_QUICK").is_some()
}

/// The install's key ring, read from `data_dir` as the server reads it: for floors that
/// open a workspace file with its raw key.
pub fn key_ring(data_dir: &std::path::Path) -> strongbox::crypto::KeyRing {
    let master = strongbox::crypto::MasterKey::load(&data_dir.join("master.key")).expect("key");
    let install =
        strongbox::store::InstallInfo::load(&data_dir.join("install.toml")).expect("install");
    strongbox::crypto::KeyRing::new(master, install.salt)
}

/// How a figure stands against its target, in the report's words.
pub fn verdict(met: bool) -> &'static str {
    match met {
        true => "met",
        false => "missed",
    }
}

/// What one `wrk` run measured.
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Runs `wrk` against `url` (always on 127.0.0.1) for `seconds` with `connections`, on up
/// to two threads; `script` (see [`wrk_script`]) shapes the requests. Panics if any
/// response was not a success, so an error page is never measured as speed.
pub fn wrk(
    url: &str,
    connections: u32,
    seconds: u32,
    script: Option<&std::path::Path>,
) -> WrkResult {
    let text = wrk_text(url, connections, seconds, script);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("wrk output has no {prefix:?} line:\n{text}"))
    };
    assert!(
        !text.contains("Non-2xx") && !text.contains("Socket errors"),
        "wrk saw errors; the benchmark would measure them:\n{text}"
    );
    WrkResult {
        requests_per_sec: field("Requests/sec:").parse().expect("requests/sec"),
        p50: wrk_duration(&field("50%")),
        p99: wrk_duration(&field("99%")),
    }
}

/// What `wrk` printed, standard output then standard error.
pub fn wrk_text(
    url: &str,
    connections: u32,
    seconds: u32,
    script: Option<&std::path::Path>,
) -> String {
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "load only to loopback"
    );
    let mut command = std::process::Command::new("wrk");
    command.args([
        &format!("-t{}", connections.min(2)),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        // A slow peer's answers are measured, not counted as errors.
        "--timeout",
        "30s",
        "--latency",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command
        .arg(url)
        .output()
        .expect("run wrk (scripts/bench.sh installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// wrk's `400.00us`, `1.08ms`, `2.00s`.
fn wrk_duration(text: &str) -> Duration {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().expect("wrk latency");
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        other => panic!("wrk latency unit {other:?}"),
    };
    Duration::from_secs_f64(seconds)
}

/// A wrk script that sends `requests` (path and body; no body means GET) in turn, with
/// `headers` on each.
pub fn wrk_script(
    dir: &std::path::Path,
    name: &str,
    headers: &[(&str, &str)],
    requests: &[(String, Option<String>)],
) -> std::path::PathBuf {
    // Lua long brackets: nothing in a path or JSON body closes `]==]`.
    let quote = |s: &str| {
        assert!(!s.contains("]==]"));
        format!("[==[{s}]==]")
    };
    let mut lua = String::from("local headers = {}\n");
    for (name, value) in headers {
        lua.push_str(&format!("headers[ {} ] = {}\n", quote(name), quote(value)));
    }
    lua.push_str("local requests = {\n");
    for (path, body) in requests {
        let (method, body) = match body {
            Some(body) => ("POST", quote(body)),
            None => ("GET", "nil".into()),
        };
        lua.push_str(&format!("  {{\"{method}\", {}, {body}}},\n", quote(path)));
    }
    lua.push_str(
        "}\nlocal i = 0\nrequest = function()\n  i = i % #requests + 1\n  local r = requests[i]\n  \
         return wrk.format(r[1], r[2], headers, r[3])\nend\n\
         local told = false\nresponse = function(status, headers, body)\n  \
         if status >= 300 and not told then\n    told = true\n    \
         io.stderr:write(\"first failure: \" .. status .. \" \" .. body .. \"\\n\")\n  end\nend\n",
    );
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, lua).expect("write wrk script");
    path
}

/// A peer server started for a comparison, killed when this is dropped.
pub struct Peer {
    child: std::process::Child,
    pub url: String,
}

impl Peer {
    /// Starts `command`, which serves on `port` of 127.0.0.1, and waits until it accepts
    /// connections (loading its data may take a while).
    pub fn start(mut command: std::process::Command, port: u16) -> Self {
        let child = command.spawn().expect("start peer");
        let mut peer = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = peer.child.try_wait() {
                panic!("peer exited before serving: {status}");
            }
            assert!(std::time::Instant::now() < deadline, "peer never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        peer
    }

    /// The peer's process id, to read its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A loopback port free at the time of asking.
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
