//! The production edge, checked with the tools an auditor would use. The shipped
//! `nginx/strongbox.conf` runs on 127.0.0.1, ports 80 and 443, with a certificate made here, in
//! front of a real `strongbox serve`: headers, the redirect, TLS versions (openssl s_client),
//! the client's address, both rate limits and the body limit, then the MDN HTTP Observatory
//! and testssl.sh. Last, sqlmap against the REST API. Run by scripts/test.sh as root (ports 80
//! and 443); each test is ignored otherwise.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use strongbox::http::{PERMISSIONS_POLICY, STRICT_TRANSPORT_SECURITY};
use tempfile::TempDir;

use crate::backups::text;
use crate::common::process::{ServerProcess, free_port};
use crate::common::{
    OWNER_EMAIL, OWNER_PASSWORD, TestServer, WebClient, complete_setup_in, create_workspace,
    link_in, make_token, self_signed_certificate, set_up_owner, verify_email,
};

/// The name the test certificate and nginx's `server_name` carry.
const HOST: &str = "localhost";
const ORIGIN: &str = "https://localhost";

/// Every security header the app and nginx set, each of which must come exactly once.
const SECURITY_HEADERS: &[&str] = &[
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "content-security-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "strict-transport-security",
];

/// Only one front at a time: they all need ports 80 and 443.
static PORTS: Mutex<()> = Mutex::new(());

/// nginx with the shipped site config, in front of a `strongbox serve` process.
/// Fields drop in this order: the server stops before its files go, and the ports are let go
/// last.
struct Front {
    nginx: Child,
    _server: ServerProcess,
    certificate: reqwest::Certificate,
    setup_link: String,
    dir: TempDir,
    _ports: MutexGuard<'static, ()>,
}

impl Front {
    fn start() -> Self {
        let ports = PORTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for port in [80, 443] {
            TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
                panic!("port {port} must be free and bindable (run as root): {e}")
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        self_signed_certificate(&tls, HOST);

        let port = free_port();
        let (server, setup_link) = ServerProcess::start(
            &dir.path().join("data"),
            port,
            &[
                ("STRONGBOX_PUBLIC_URL", ORIGIN),
                ("STRONGBOX_TRUSTED_PROXIES", "[\"127.0.0.1/32\"]"),
            ],
        );
        let site = site_config(
            &std::fs::read_to_string("nginx/strongbox.conf").expect("nginx/strongbox.conf"),
            &tls,
            dir.path(),
            port,
        );
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        let main = main_config(
            &std::fs::read_to_string(DEBIAN_NGINX_CONF).expect(DEBIAN_NGINX_CONF),
            dir.path(),
        );
        let main_path = dir.path().join("nginx.conf");
        std::fs::write(&main_path, main).unwrap();
        let nginx = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&main_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx (Debian package) on PATH");
        let front = Self {
            certificate: reqwest::Certificate::from_pem(
                &std::fs::read(tls.join("fullchain.pem")).unwrap(),
            )
            .unwrap(),
            dir,
            nginx,
            _server: server,
            setup_link: setup_link.expect("setup link"),
            _ports: ports,
        };
        front.wait_until_listening();
        front
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if [80, 443]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not start: {}", self.nginx_log());
    }

    fn nginx_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The server's file outbox (the default email transport).
    fn outbox(&self) -> PathBuf {
        self.dir.path().join("data/outbox")
    }

    fn certificate_file(&self) -> PathBuf {
        self.dir.path().join("tls/fullchain.pem")
    }

    /// An HTTP client that trusts the test certificate only and connects from `source`, an
    /// address of the loopback range: nginx sees each source as a different client.
    fn client(&self, source: &str) -> reqwest::ClientBuilder {
        WebClient::builder()
            .tls_certs_only([self.certificate.clone()])
            .local_address(source.parse::<IpAddr>().unwrap())
    }

    fn browser(&self, source: &str) -> WebClient {
        WebClient::with(ORIGIN, self.client(source))
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.nginx.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.nginx.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
        if std::thread::panicking() {
            eprintln!("nginx error log:\n{}", self.nginx_log());
        }
    }
}

/// `text` with each placeholder replaced. Each must be there, so a renamed one fails here
/// rather than going untested.
fn substitute(text: &str, source: &str, pairs: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        assert!(out.contains(from), "{source} has no {from}");
        out = out.replace(from, to);
    }
    out
}

/// The shipped site config with this test's host name, certificate, log dir and app port.
fn site_config(shipped: &str, tls: &Path, logs: &Path, app_port: u16) -> String {
    let pairs = [
        (
            "/etc/letsencrypt/live/strongbox.example.com/",
            format!("{}/", tls.display()),
        ),
        ("strongbox.example.com", HOST.to_string()),
        ("/var/log/nginx/", format!("{}/", logs.display())),
        ("127.0.0.1:8080", format!("127.0.0.1:{app_port}")),
    ];
    substitute(shipped, "nginx/strongbox.conf", &pairs)
}

/// Debian's own main config, whose http-level settings (gzip on, TLS 1.0 and 1.1 enabled) the
/// site must hold its own against.
const DEBIAN_NGINX_CONF: &str = "/etc/nginx/nginx.conf";

/// Debian's nginx.conf with this test's pid file and error log, and the site in place of
/// sites-enabled.
fn main_config(debian: &str, dir: &Path) -> String {
    let d = dir.display();
    let pairs = [
        ("pid /run/nginx.pid;", format!("pid {d}/nginx.pid;")),
        (
            "error_log /var/log/nginx/error.log;",
            format!("error_log {d}/error.log;"),
        ),
        (
            "include /etc/nginx/sites-enabled/*;",
            format!("include {d}/site.conf;"),
        ),
    ];
    substitute(debian, DEBIAN_NGINX_CONF, &pairs)
}

/// Each security header comes exactly once; HSTS and the permissions policy have the app's
/// values, whoever sent them.
fn assert_headers_once(what: &str, headers: &HeaderMap) {
    for name in SECURITY_HEADERS {
        let values: Vec<_> = headers.get_all(*name).iter().collect();
        assert_eq!(
            values.len(),
            1,
            "{what}: {name} sent {} times",
            values.len()
        );
    }
    assert_eq!(
        headers["strict-transport-security"], STRICT_TRANSPORT_SECURITY,
        "{what}"
    );
    assert_eq!(headers["permissions-policy"], PERMISSIONS_POLICY, "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
}

/// Whether the app produced the response: it tags each one with a request id; nginx's own
/// pages have none.
fn from_the_app(headers: &HeaderMap) -> bool {
    headers.contains_key("x-request-id")
}

/// One TLS handshake for `server_name` with `protocol` (`tls1`, `tls1_1`, …). The client's
/// own floor is lowered, so a refusal is the server's.
fn handshake(server_name: &str, protocol: &str) -> Output {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            "127.0.0.1:443",
            "-servername",
            server_name,
        ])
        .arg(format!("-{protocol}"))
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[actix_web::test]
#[ignore = "needs nginx and ports 80 and 443; run by scripts/test.sh"]
async fn nginx_serves_tls_headers_the_client_address_and_limits_as_the_app_expects() {
    let front = Front::start();
    let mut owner = complete_setup_in(front.browser("127.0.0.2"), &front.setup_link).await;
    let verify = link_in(&front.outbox(), ORIGIN, OWNER_EMAIL, "verify");
    verify_email(&mut owner, &verify).await;
    let workspace = create_workspace(&mut owner, "Edge").await;
    let token = make_token(&mut owner, &workspace, "read_write").await;
    let api = front.client("127.0.0.2").build().unwrap();

    // Every header exactly once, on the app's pages, assets, errors and API answers alike.
    for path in [
        "/",
        "/sign-in",
        "/static/app.css",
        "/no-such-page",
        "/api/v1/collections",
    ] {
        let response = api.get(format!("{ORIGIN}{path}")).send().await.unwrap();
        assert!(from_the_app(response.headers()), "{path}");
        assert_headers_once(path, response.headers());
    }
    // Nothing is compressed, though Debian's nginx.conf turns gzip on (BREACH).
    let page = api
        .get(format!("{ORIGIN}/sign-in"))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert!(!page.headers().contains_key("content-encoding"));
    let record = format!("{ORIGIN}/api/v1/collections/notes/records/first");
    let stored = api
        .put(&record)
        .bearer_auth(&token)
        .json(&json!({"text": "through nginx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    assert_headers_once("PUT record", stored.headers());

    // A body over the app's limit is refused by nginx, which still sends every header; the
    // agent's sync endpoint takes larger batches and reaches the app.
    let too_big = vec![b'x'; 2 * 1024 * 1024];
    let refused = api
        .put(&record)
        .bearer_auth(&token)
        .body(too_big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    assert!(!from_the_app(refused.headers()));
    assert_headers_once("nginx's 413", refused.headers());
    let batch = api
        .post(format!("{ORIGIN}/api/agent/v1/sync"))
        .body(too_big)
        .send()
        .await
        .unwrap();
    assert!(from_the_app(batch.headers()), "sync: {}", batch.status());
    assert_ne!(batch.status(), 413);

    // MCP goes through its own location to the app.
    let mcp = api
        .post(format!("{ORIGIN}/mcp"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 401);
    assert!(mcp.headers().contains_key("www-authenticate"));
    assert_headers_once("/mcp", mcp.headers());

    // Plain HTTP is redirected to the same path over HTTPS; another host name gets nothing.
    let plain = WebClient::builder().build().unwrap();
    let redirect = plain
        .get("http://localhost/sign-in?next=%2Faccount")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 301);
    assert_eq!(
        redirect.headers()["location"],
        "https://localhost/sign-in?next=%2Faccount"
    );
    let mut stranger = TcpStream::connect("127.0.0.1:80").unwrap();
    stranger
        .write_all(b"GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    stranger.read_to_end(&mut answer).unwrap();
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let stranger = handshake("attacker.example", "tls1_3");
    assert!(!stranger.status.success());
    assert!(
        text(&stranger).contains("unrecognized name"),
        "{}",
        text(&stranger)
    );

    // TLS 1.2 and 1.3 only, refused by the server (a protocol-version alert), not the client.
    for old in ["tls1", "tls1_1"] {
        let output = handshake(HOST, old);
        assert!(!output.status.success(), "{old} was accepted");
        assert!(
            text(&output).contains("alert protocol version"),
            "{old}: {}",
            text(&output)
        );
    }
    for (current, name) in [("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")] {
        let output = handshake(HOST, current);
        assert!(output.status.success(), "{current}: {}", text(&output));
        assert!(
            text(&output).contains(&format!("New, {name}")),
            "{}",
            text(&output)
        );
    }

    // The app sees the address nginx saw, not one the client wrote into X-Forwarded-For.
    let mut forged_headers = HeaderMap::new();
    forged_headers.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
    // Nor the request id it wrote: nginx sends its own, which the app keeps.
    forged_headers.insert("x-request-id", "chosen-by-client".parse().unwrap());
    let mut forger = WebClient::with(
        ORIGIN,
        front
            .client("127.0.0.3")
            .default_headers(forged_headers.clone()),
    );
    let signed_in = forger
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let account = forger.get("/account").await;
    assert!(account.body.contains("127.0.0.3"), "{}", account.body);
    assert!(!account.body.contains("203.0.113.7"));
    let request_id = account.headers["x-request-id"].to_str().unwrap();
    assert!(
        request_id.len() == 32 && request_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "nginx's $request_id, not the client's: {request_id}"
    );

    // The app's own per-client budget for sign-in attempts answers 429 with Retry-After,
    // keyed on the address nginx passed: a forged header does not reset it, and another
    // client is not affected.
    let mut guesser = front.browser("127.0.0.4");
    let mut limited = None;
    for _ in 0..200 {
        let guess = guesser
            .submit(
                "/sign-in",
                "/sign-in",
                &[("email", OWNER_EMAIL), ("password", "a wrong guess")],
            )
            .await;
        if guess.status == 429 {
            limited = Some(guess.headers);
            break;
        }
    }
    let limited = limited.expect("the app's sign-in budget runs out");
    assert!(from_the_app(&limited));
    assert_eq!(limited.get_all("retry-after").iter().count(), 1);
    assert_headers_once("the app's 429", &limited);
    let mut disguised = WebClient::with(
        ORIGIN,
        front.client("127.0.0.4").default_headers(forged_headers),
    );
    let still_limited = disguised
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email", OWNER_EMAIL), ("password", "another guess")],
        )
        .await;
    assert_eq!(still_limited.status, 429);
    let other = front
        .browser("127.0.0.5")
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
        )
        .await;
    assert_eq!(other.status, 303, "another client signs in");

    // nginx's outer limit stops a flood before the app, with its own 429 and Retry-After.
    let flooder = front.client("127.0.0.6").build().unwrap();
    let mut flooded = None;
    for _ in 0..5000 {
        let response = flooder
            .get(format!("{ORIGIN}/healthz"))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            flooded = Some(response.headers().clone());
            break;
        }
    }
    let flooded = flooded.expect("nginx's limit stops a flood");
    assert!(!from_the_app(&flooded), "nginx, not the app, answered");
    assert_eq!(flooded.get_all("retry-after").iter().count(), 1);
    assert_headers_once("nginx's 429", &flooded);
    // Other clients are still served.
    let calm = api.get(format!("{ORIGIN}/healthz")).send().await.unwrap();
    assert_eq!(calm.status(), 200);
}

/// The MDN HTTP Observatory's scan of the front: it follows `http://localhost/` to HTTPS and
/// grades the headers and cookies of what it finds there.
#[actix_web::test]
#[ignore = "needs nginx, ports 80 and 443 and the Observatory; run by scripts/test.sh"]
async fn the_mdn_http_observatory_grades_the_front_a_plus() {
    let scanner = std::env::var("STRONGBOX_OBSERVATORY")
        .expect("STRONGBOX_OBSERVATORY names the Observatory's src/scan.js");
    let front = Front::start();
    let output = Command::new("node")
        .arg(&scanner)
        .arg(HOST)
        .env("NODE_EXTRA_CA_CERTS", front.certificate_file())
        .output()
        .expect("node");
    // It exits 0 whatever the grade: the JSON says how it went.
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON from the Observatory ({e}): {}", text(&output)));
    let failing: Vec<String> = report["tests"]
        .as_object()
        .expect("tests")
        .iter()
        .filter(|(_, test)| test["pass"] != true)
        .map(|(name, test)| format!("{name}: {}", test["result"]))
        .collect();
    assert_eq!(
        report["scan"]["grade"], "A+",
        "score {}, failing: {failing:?}",
        report["scan"]["score"]
    );
    assert!(failing.is_empty(), "{failing:?}");
}

/// What a self-signed test certificate always causes: no CA vouches for it, and it names no
/// revocation service. Anything else of severity HIGH or CRITICAL fails the test.
const SELF_SIGNED_FINDINGS: &[&str] = &["cert_chain_of_trust", "cert_revocation"];

#[actix_web::test]
#[ignore = "needs nginx, ports 80 and 443 and testssl.sh; run by scripts/test.sh"]
async fn testssl_finds_nothing_high_or_critical_beyond_the_self_signed_certificate() {
    let front = Front::start();
    let report = front.dir.path().join("testssl.json");
    let output = Command::new("testssl")
        .args([
            "--nodns",
            "none",
            "--warnings",
            "batch",
            "--quiet",
            "--color",
            "0",
        ])
        .args(["--ip", "127.0.0.1", "--jsonfile"])
        .arg(&report)
        .arg(format!("{HOST}:443"))
        .output()
        .expect("testssl (Debian package testssl.sh) on PATH");
    let findings: Vec<Value> = serde_json::from_slice(&std::fs::read(&report).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON from testssl ({e}): {}", text(&output)));
    assert!(
        findings.iter().any(|f| f["id"] == "TLS1_3"),
        "testssl tested no protocols: {}",
        text(&output)
    );
    let serious: Vec<String> = findings
        .iter()
        .filter(|f| f["severity"] == "HIGH" || f["severity"] == "CRITICAL")
        .filter(|f| !SELF_SIGNED_FINDINGS.iter().any(|id| f["id"] == *id))
        .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["finding"]))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
}

/// sqlmap at level 3, risk 2 against the search and record endpoints, with a valid token: it
/// must find nothing to inject into, in the query string, the path or the JSON body.
#[actix_web::test]
#[ignore = "needs sqlmap; run by scripts/test.sh"]
async fn sqlmap_finds_no_injection_in_the_rest_api() {
    let server = TestServer::start_with(|config| {
        config.rate_limits.general.per_minute = 1_000_000;
        config.rate_limits.general.burst = 1_000_000;
    });
    let mut owner = set_up_owner(&server).await;
    let workspace = create_workspace(&mut owner, "Injection").await;
    let token = make_token(&mut owner, &workspace, "read_write").await;
    let record = server.url("/api/v1/collections/notes/records/first");
    let stored = reqwest::Client::new()
        .put(&record)
        .bearer_auth(&token)
        .json(&json!({"text": "findable words", "owner": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);

    let output_dir = tempfile::tempdir().unwrap();
    let search = server.url("/api/v1/search?q=findable&page=0");
    // `*` marks the path segments as injection points.
    let record_marked = server.url("/api/v1/collections/notes*/records/first*");
    for (what, args) in [
        ("search", vec!["-u", search.as_str()]),
        ("record read", vec!["-u", record_marked.as_str()]),
        (
            "record write",
            vec![
                "-u",
                record.as_str(),
                "--method",
                "PUT",
                "--data",
                r#"{"text":"findable words","owner":"Ada"}"#,
            ],
        ),
    ] {
        let started = Instant::now();
        let output = sqlmap(&args, &token, output_dir.path());
        let log = text(&output);
        eprintln!("sqlmap, {what}: {:.0?}", started.elapsed());
        assert!(output.status.success(), "sqlmap, {what}: {log}");
        // Had the token been refused, sqlmap would have probed the 401 page instead.
        assert!(
            !log.contains("401 (Unauthorized)"),
            "the token was refused: {log}"
        );
        assert!(
            !log.contains("identified the following injection point"),
            "sqlmap found an injection in the {what}: {log}"
        );
        assert!(
            log.contains("do not appear to be injectable"),
            "sqlmap did not finish testing the {what}: {log}"
        );
    }
}

/// Runs sqlmap non-interactively with the token, from a fresh session, in `dir`.
fn sqlmap(args: &[&str], token: &str, dir: &Path) -> Output {
    Command::new("sqlmap")
        .args(args)
        .args(["--batch", "--flush-session", "--level", "3", "--risk", "2"])
        .args(["--time-sec", "1", "--timeout", "10", "--retries", "0"])
        .arg(format!("--headers=Authorization: Bearer {token}"))
        .arg(format!("--output-dir={}", dir.display()))
        .stdin(Stdio::null())
        .output()
        .expect("sqlmap (Debian package) on PATH")
}
