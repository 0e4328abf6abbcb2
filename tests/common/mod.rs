//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod document_server;
pub mod process;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use sha2::{Digest, Sha256};
use strongbox::app;
use strongbox::config::Config;
use strongbox::http::{self, AppState};
use strongbox::store::Store;
use tempfile::TempDir;

/// A config on a fresh temporary data dir, listening on an ephemeral loopback port.
pub struct TestDir {
    pub dir: TempDir,
    pub config: Config,
}

impl TestDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().expect("address"),
            ..Config::default()
        };
        Self { dir, config }
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Initialises the data dir and opens its store.
    pub fn open_store(&self) -> Store {
        app::init(&self.config).expect("init");
        app::open(&self.config).expect("open").store
    }
}

/// The real app on a real socket, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    /// The server's clock: tests move it to cross timeouts instead of sleeping.
    pub clock: Arc<strongbox::clock::ManualClock>,
    pub auth: strongbox::auth::AuthService,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    pub dir: TestDir,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let mut dir = TestDir::new();
        // Tests sign in many times from one address; the auth budget has its own test.
        dir.config.rate_limits.auth.per_minute = 100_000;
        dir.config.rate_limits.auth.burst = 100_000;
        dir.config.rate_limits.tokens.per_minute = 100_000;
        dir.config.rate_limits.tokens.burst = 100_000;
        dir.config.rate_limits.account.per_minute = 100_000;
        dir.config.rate_limits.account.burst = 100_000;
        tweak(&mut dir.config);
        Self::start_in(dir)
    }

    /// The server on a data dir that may hold an install already, such as one a stopped
    /// server left (see `stop`).
    pub fn start_in(mut dir: TestDir) -> Self {
        let store = Arc::new(dir.open_store());
        let listener = TcpListener::bind(dir.config.listen).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        if dir.config.public_url == Config::default().public_url {
            dir.config.public_url = format!("http://{addr}").parse().expect("url");
        }
        let clock = strongbox::clock::ManualClock::starting_now();
        let shared: strongbox::clock::SharedClock = clock.clone();
        let state =
            AppState::new(Arc::new(dir.config.clone()), Arc::clone(&store), shared).expect("state");
        let auth = state.auth.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = http::server(listener, state).expect("server");
                tx.send(server.handle()).expect("send handle");
                server.await.expect("server run");
            });
        });
        let handle = rx.recv().expect("server handle");
        Self {
            addr,
            store,
            clock,
            auth,
            handle,
            thread: Some(thread),
            dir,
        }
    }

    /// Stops the server and closes every database it opened, as stopping the service would;
    /// returns its data dir for the operator's commands. Handles the test still holds on the
    /// store (an `AuditLog`, a `JobContext`) must be dropped first.
    pub async fn stop(self) -> TestDir {
        let Self {
            addr,
            store,
            auth,
            handle,
            thread,
            mut dir,
            ..
        } = self;
        drop(auth);
        handle.stop(false).await;
        if let Some(thread) = thread {
            thread.join().expect("the server thread ends");
        }
        // The workers' threads let go of the store a moment after the server stops; the
        // last handle is dropped here, so every database is closed when this returns.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&store) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "something still holds the store"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(store);
        let own_url: url::Url = format!("http://{addr}").parse().expect("url");
        if dir.config.public_url == own_url {
            // The next server on this dir gets a port, and so a URL, of its own.
            dir.config.public_url = Config::default().public_url;
        }
        dir
    }

    /// One number from the control database.
    pub fn count(&self, sql: &str, params: &[&str]) -> i64 {
        self.store
            .control()
            .read(|c| {
                c.query_row(sql, rusqlite::params_from_iter(params), |row| row.get(0))
                    .map_err(strongbox::store::StoreError::from)
            })
            .unwrap()
    }

    /// The id of the account with this email address.
    pub fn user_id(&self, email: &str) -> strongbox::auth::UserId {
        self.store
            .control()
            .read(|c| {
                c.query_row("SELECT id FROM users WHERE email = ?1", [email], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(strongbox::store::StoreError::from)
            })
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Where browsers reach this server, and the origin they send with form posts: its
    /// public URL, which is its own address unless a test puts a proxy in front.
    pub fn origin(&self) -> String {
        self.dir.config.public_url.origin().ascii_serialization()
    }

    /// Every email in the outbox so far, decoded enough to read links from.
    pub fn outbox(&self) -> Vec<String> {
        outbox_in(&self.dir.config.outbox_dir())
    }

    /// The newest link in the outbox to `to` whose path is `path`. Mail is delivered by a
    /// thread of its own, so this waits (briefly) for it to arrive.
    pub fn link_in_outbox(&self, to: &str, path: &str) -> String {
        link_in(&self.dir.config.outbox_dir(), &self.origin(), to, path)
    }

    /// Every link to `to` in the outbox whose path is `path`, newest first, without waiting.
    pub fn links_in_outbox(&self, to: &str, path: &str) -> Vec<String> {
        links_in(&self.dir.config.outbox_dir(), &self.origin(), to, path)
    }

    /// The newest link to `to` whose path is `path` and that is not one of `known`, waiting
    /// for the mail thread to deliver it.
    pub fn new_link_in_outbox(&self, to: &str, path: &str, known: &[String]) -> String {
        new_link_in(
            &self.dir.config.outbox_dir(),
            &self.origin(),
            to,
            path,
            known,
        )
    }

    /// Waits until the outbox holds `count` messages.
    pub fn wait_for_mail(&self, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mails = self.outbox();
            if mails.len() >= count || std::time::Instant::now() >= deadline {
                return mails;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether a mail containing `needle` lands in the outbox within 10 s (mail is sent
    /// from a queue, after the response).
    pub fn mail_arrives_with(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if self.outbox().iter().any(|mail| mail.contains(needle)) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Every email in a file outbox, oldest first, decoded enough to read links from.
pub fn outbox_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut mails: Vec<(std::time::SystemTime, String)> = entries
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let modified = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .expect("mtime");
            let raw = std::fs::read_to_string(&p).expect("read eml");
            // Undo quoted-printable soft breaks and the escaped '='.
            (modified, raw.replace("=\r\n", "").replace("=3D", "="))
        })
        .collect();
    mails.sort_by_key(|(t, _)| *t);
    mails.into_iter().map(|(_, m)| m).collect()
}

/// The newest link to `to` in the outbox whose path on `origin` is `path`, waiting briefly
/// for the mail thread to deliver it.
pub fn link_in(outbox: &Path, origin: &str, to: &str, path: &str) -> String {
    new_link_in(outbox, origin, to, path, &[])
}

/// Every link to `to` in the outbox whose path on `origin` is `path`, newest first.
pub fn links_in(outbox: &Path, origin: &str, to: &str, path: &str) -> Vec<String> {
    let needle = format!("{origin}/{path}?token=");
    outbox_in(outbox)
        .iter()
        .rev()
        .filter(|mail| mail.contains(&format!("To: {to}")))
        .filter_map(|mail| {
            let start = mail.find(&needle)?;
            let end = mail[start..]
                .find(char::is_whitespace)
                .map_or(mail.len(), |n| start + n);
            Some(mail[start..end].to_string())
        })
        .collect()
}

/// The newest such link that is not one of `known`, waiting for the mail thread to deliver
/// it: a link sent before the request that should send one is never taken for its own.
pub fn new_link_in(outbox: &Path, origin: &str, to: &str, path: &str, known: &[String]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let fresh = links_in(outbox, origin, to, path)
            .into_iter()
            .find(|link| !known.contains(link));
        match fresh {
            Some(link) => return link,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            None => panic!("no new {path} link for {to} in the outbox"),
        }
    }
}

/// A self-signed certificate for `host` (and 127.0.0.1), valid for a year, in `dir` as a
/// certificate provider lays one out: `fullchain.pem`, `chain.pem`, `privkey.pem`.
pub fn self_signed_certificate(dir: &Path, host: &str) {
    std::fs::create_dir_all(dir).expect("certificate dir");
    let output = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "365"])
        .arg("-subj")
        .arg(format!("/CN={host}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{host},IP:127.0.0.1"))
        // An end-entity certificate: TLS clients refuse a CA certificate as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem"))
        .output()
        .expect("openssl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::copy(dir.join("fullchain.pem"), dir.join("chain.pem")).expect("chain.pem");
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// A client whose connections come from `source`, another address on the loopback range.
pub fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

/// Every regular file under `root`, recursively.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Path → (mode, sha256) of every file and directory under `root`: a fingerprint that
/// changes if anything is created, removed, rewritten or re-permissioned.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).expect("metadata");
        let mode = meta.permissions().mode() & 0o7777;
        let digest = if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("entry").path());
            }
            String::new()
        } else {
            hex::encode(Sha256::digest(std::fs::read(&path).expect("read")))
        };
        out.insert(path, (mode, digest));
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A small browser: keeps cookies by name, sends the server's Origin on posts, and never
/// follows redirects, so each step can be checked.
pub struct WebClient {
    client: reqwest::Client,
    base: String,
    pub origin: String,
    pub cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub location: Option<String>,
}

impl Page {
    /// The CSRF token the page embeds in its forms.
    pub fn csrf(&self) -> String {
        self.try_csrf().unwrap_or_else(|| {
            panic!(
                "a {} page without a CSRF field:\n{}",
                self.status, self.body
            )
        })
    }

    /// The secret with this prefix that the page shows (once).
    pub fn secret(&self, prefix: &str) -> String {
        let start = self.body.find(prefix).expect("a secret on the page");
        self.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    }

    pub fn try_csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_string())
    }
}

impl WebClient {
    pub fn new(server: &TestServer) -> Self {
        Self::at(&server.origin())
    }

    /// A browser for a server at `origin` (`http://host:port`).
    pub fn at(origin: &str) -> Self {
        Self::with(origin, Self::builder())
    }

    /// How a browser's HTTP client is built; a test may add to it (a certificate to trust,
    /// an address to connect from) and pass it to `with`.
    pub fn builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The server closes idle connections after 5 s; never reuse one that old.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
    }

    /// A browser for a server at `origin` whose client is made by `builder`.
    pub fn with(origin: &str, builder: reqwest::ClientBuilder) -> Self {
        let client = builder.build().expect("client");
        Self {
            client,
            base: origin.to_string(),
            origin: origin.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().expect("ascii cookie");
            let pair = text.split(';').next().expect("name=value");
            let (name, value) = pair.split_once('=').expect("name=value");
            if text.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ascii").to_string());
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
            location,
        }
    }

    /// `path` may be a full URL from an email.
    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let response = self
            .client
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.finish(response).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.origin.clone();
        self.post_from(Some(&origin), path, fields).await
    }

    pub async fn post_from(
        &mut self,
        origin: Option<&str>,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.expect("post");
        self.finish(response).await
    }

    /// Posts `body` as it is, as a form from this browser's origin.
    pub async fn post_raw(&mut self, path: &str, body: &str) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", self.origin.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .expect("post");
        self.finish(response).await
    }

    /// Loads a form page and posts it with its CSRF token.
    pub async fn submit(&mut self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(form_page).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub fn session(&self) -> Option<String> {
        self.cookies.get(strongbox_session_cookie()).cloned()
    }
}

pub fn strongbox_session_cookie() -> &'static str {
    "__Host-sbx_session"
}

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "a long and unusual owner passphrase";

/// Opens a setup link and creates the owner account with it; returns the signed-in
/// browser (the address is not verified yet).
pub async fn complete_setup(server: &TestServer, link: &str) -> WebClient {
    complete_setup_at(&server.origin(), link).await
}

/// `complete_setup` for a server at `origin`, such as a `strongbox` process.
pub async fn complete_setup_at(origin: &str, link: &str) -> WebClient {
    complete_setup_in(WebClient::at(origin), link).await
}

/// `complete_setup` in a given browser, such as one reaching the server through a proxy.
pub async fn complete_setup_in(mut browser: WebClient, link: &str) -> WebClient {
    let path = link
        .strip_prefix(&browser.origin)
        .expect("link on this server");
    let token = path.split("token=").nth(1).expect("token");
    let form = browser.get(path).await;
    assert_eq!(form.status, 200, "setup form");
    let done = browser
        .post(
            "/setup",
            &[
                ("csrf", &form.csrf()),
                ("token", token),
                ("email", OWNER_EMAIL),
                ("password", OWNER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "setup: {}", done.body);
    browser
}

/// Runs first-run setup, then verifies the owner's email from the outbox. Returns a client
/// signed in as the owner.
pub async fn set_up_owner(server: &TestServer) -> WebClient {
    let link = server
        .auth
        .first_run_setup_link()
        .await
        .expect("link")
        .expect("no owner yet");
    let mut browser = complete_setup(server, &link).await;
    let verify = server.link_in_outbox(OWNER_EMAIL, "verify");
    verify_email(&mut browser, &verify).await;
    browser
}

/// Follows an email-verification link and confirms it, as its recipient would.
pub async fn verify_email(browser: &mut WebClient, link: &str) {
    let page = browser.get(link).await;
    let token = link.split("token=").nth(1).expect("token");
    let verified = browser
        .post("/verify", &[("csrf", &page.csrf()), ("token", token)])
        .await;
    assert_eq!(verified.status, 200, "verify: {}", verified.body);
}

/// Signs in with a fresh client.
pub async fn sign_in(server: &TestServer, email: &str, password: &str) -> (WebClient, Page) {
    let mut browser = WebClient::new(server);
    let page = browser
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email", email), ("password", password)],
        )
        .await;
    (browser, page)
}

/// Every log line the process writes from the first call on, as the JSON an operator's
/// journal would hold (the default `info` filter).
pub fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> =
        std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_span_list(true)
            .with_env_filter("info")
            .with_writer(move || LogWriter(buffer))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        buffer
    })
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Creates a workspace from the dashboard; returns its id.
pub async fn create_workspace(browser: &mut WebClient, name: &str) -> String {
    let page = browser.submit("/", "/workspaces", &[("name", name)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    page.location.unwrap().trim_start_matches("/w/").to_string()
}

/// Issues a pairing code from the workspace's agents page; returns the code shown.
pub async fn pairing_code(browser: &mut WebClient, workspace: &str, device: &str) -> String {
    let page = browser
        .submit(
            &format!("/w/{workspace}/agents"),
            &format!("/w/{workspace}/pairing-codes"),
            &[("name", device)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.secret("sbx_pair_")
}

/// Makes a personal token on the workspace's Tokens page; returns its text.
pub async fn make_token(browser: &mut WebClient, workspace: &str, access: &str) -> String {
    let page = browser
        .submit(
            &format!("/w/{workspace}/tokens"),
            &format!("/w/{workspace}/tokens"),
            &[("name", "script"), ("access", access)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page.secret("sbx_pat_");
    let again = browser.get(&format!("/w/{workspace}/tokens")).await;
    assert!(!again.body.contains(&token), "a token is shown only once");
    token
}

/// An agent's side of the API, as plain HTTP calls.
pub struct Agent {
    http: reqwest::Client,
    base: String,
    pub id: String,
    pub workspace: String,
    pub refresh: String,
    pub access: String,
}

pub async fn pair_request(server: &TestServer, code: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/agent/v1/pair"))
        .json(&serde_json::json!({"code": code, "agent_version": "0.1.0-test"}))
        .send()
        .await
        .unwrap()
}

impl Agent {
    pub async fn pair(server: &TestServer, code: &str) -> Self {
        let response = pair_request(server, code).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["expires_in"], 900);
        Self {
            http: reqwest::Client::new(),
            base: server.url("/api/agent/v1"),
            id: body["agent_id"].as_str().unwrap().into(),
            workspace: body["workspace_id"].as_str().unwrap().into(),
            refresh: body["refresh_secret"].as_str().unwrap().into(),
            access: body["access_token"].as_str().unwrap().into(),
        }
    }

    pub async fn refresh_with(&self, secret: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.base))
            .json(&serde_json::json!({"agent_id": self.id, "refresh_secret": secret}))
            .send()
            .await
            .unwrap()
    }

    pub async fn policy_with(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/policy", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn policy(&self) -> serde_json::Value {
        let response = self.policy_with(&self.access).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn sync(&self, batch: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/sync", self.base))
            .bearer_auth(&self.access)
            .json(batch)
            .send()
            .await
            .unwrap()
    }
}

/// Registers an OAuth client; returns the status, headers and body.
pub async fn register(
    server: &TestServer,
    body: &serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/register"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// A PKCE pair: a 64-character verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// One OAuth client and a PKCE pair, ready to authorize.
pub struct Flow {
    pub client_id: String,
    pub redirect: String,
    pub verifier: String,
    pub challenge: String,
}

pub async fn new_flow(server: &TestServer) -> Flow {
    let (status, _, client) = register(
        server,
        &serde_json::json!({"client_name": "Inspector", "redirect_uris": ["http://127.0.0.1:9/callback"]}),
    )
    .await;
    assert_eq!(status, 201);
    let (verifier, challenge) = pkce();
    Flow {
        client_id: client["client_id"].as_str().unwrap().into(),
        // Loopback redirect URIs match on any port.
        redirect: "http://127.0.0.1:5555/callback".into(),
        verifier,
        challenge,
    }
}

pub fn authorize_query(server: &TestServer, flow: &Flow, changes: &[(&str, &str)]) -> String {
    let resource = format!("{}/mcp", server.origin());
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", flow.client_id.as_str()),
        ("redirect_uri", flow.redirect.as_str()),
        ("code_challenge", flow.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
        ("scope", "mcp:read offline_access"),
        ("resource", resource.as_str()),
    ];
    for (name, value) in changes {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth/authorize?{query}")
}

/// Approves the flow for `workspace` as the signed-in `browser`; returns the code.
pub async fn approve(
    server: &TestServer,
    browser: &mut WebClient,
    flow: &Flow,
    workspace: &str,
) -> String {
    let location = approve_at(browser, &authorize_query(server, flow, &[]), workspace).await;
    assert!(
        location
            .as_str()
            .starts_with("http://127.0.0.1:5555/callback?")
    );
    let get = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("st4te"));
    assert_eq!(
        get("iss").as_deref(),
        Some(server.origin().as_str()),
        "RFC 9207"
    );
    get("code").expect("a code")
}

/// Opens an authorization URL (a path on this server) as `browser`, allows it for
/// `workspace`, and returns where the server sent the browser.
pub async fn approve_at(browser: &mut WebClient, path: &str, workspace: &str) -> url::Url {
    let consent = browser.get(path).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let query = path.split_once('?').expect("a query").1;
    let mut fields: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    fields.push(("csrf".into(), consent.csrf()));
    fields.push(("workspace".into(), workspace.into()));
    fields.push(("decision".into(), "approve".into()));
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let done = browser.post("/oauth/authorize", &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    url::Url::parse(done.location.as_deref().expect("a redirect")).expect("an absolute URL")
}

/// POSTs a token request; returns the status and body.
pub async fn token_request(
    server: &TestServer,
    fields: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap())
}
