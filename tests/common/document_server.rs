//! An https server on 127.0.0.1 for client metadata documents, with a certificate the test
//! made: each path answers as the test set it (a document, a status with headers, a body of
//! any size, or nothing for a while), and every request is counted.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a path answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn json(document: &serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: document.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub struct DocumentServer {
    /// `https://127.0.0.1:PORT`.
    pub origin: String,
    pub port: u16,
    /// The certificate's PEM, for the server under test to trust.
    pub certificate: PathBuf,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<AtomicUsize>,
}

impl DocumentServer {
    /// Starts the server with a certificate for `localhost` and 127.0.0.1 made in `dir`.
    /// Like `TestServer`, it runs until the test binary exits.
    pub fn start(dir: &Path) -> Self {
        super::self_signed_certificate(dir, "localhost");
        let certificate = dir.join("fullchain.pem");
        let chain = CertificateDer::pem_file_iter(&certificate)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("privkey.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let replies: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, hit) = (Arc::clone(&replies), Arc::clone(&hits));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, served, hit) =
                        (acceptor.clone(), Arc::clone(&served), Arc::clone(&hit));
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let Some(path) = request_path(&mut tls).await else {
                            return;
                        };
                        hit.fetch_add(1, Ordering::SeqCst);
                        let reply = served.lock().unwrap().get(&path).cloned();
                        let reply = reply.unwrap_or(Reply {
                            status: 404,
                            headers: Vec::new(),
                            body: Vec::new(),
                            delay: Duration::ZERO,
                        });
                        tokio::time::sleep(reply.delay).await;
                        let mut head = format!(
                            "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                            reply.status,
                            reply.body.len()
                        );
                        for (name, value) in &reply.headers {
                            head.push_str(&format!("{name}: {value}\r\n"));
                        }
                        head.push_str("\r\n");
                        let _ = tls.write_all(head.as_bytes()).await;
                        let _ = tls.write_all(&reply.body).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
        });
        Self {
            origin: format!("https://127.0.0.1:{port}"),
            port,
            certificate,
            replies,
            hits,
        }
    }

    /// Has `path` answer with `reply` from now on.
    pub fn serve(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.into(), reply);
    }

    /// How many requests reached the server.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The path of the request read from `stream`, once its head has arrived.
async fn request_path(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace().nth(1).map(str::to_string)
}
