//! Helpers shared by the integration tests.

#![allow(dead_code)]

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
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    _dir: TestDir,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let mut dir = TestDir::new();
        tweak(&mut dir.config);
        let store = Arc::new(dir.open_store());
        let listener = TcpListener::bind(dir.config.listen).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = AppState::new(Arc::new(dir.config.clone()), Arc::clone(&store));
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
            handle,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // stop() sends the command at once; the returned future only reports completion.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
