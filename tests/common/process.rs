//! A real `strongbox serve` process, for the tests about the binary rather than the app.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_strongbox");

/// A `strongbox serve` process on a data dir and port of its own; killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Where the process listens: `http://127.0.0.1:PORT`.
    pub origin: String,
    /// Its standard error: the log.
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts the server and waits until it answers; returns the first-run setup link if
    /// it printed one.
    pub fn start(data: &Path, port: u16, env: &[(&str, &str)]) -> (Self, Option<String>) {
        let origin = format!("http://127.0.0.1:{port}");
        let log = data.with_extension(format!("{port}.log"));
        let mut command = Command::new(SERVER);
        for (key, _) in std::env::vars() {
            if key.starts_with("STRONGBOX_") {
                command.env_remove(key);
            }
        }
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = command
            .arg("serve")
            .env("STRONGBOX_DATA_DIR", data)
            .env("STRONGBOX_LISTEN", format!("127.0.0.1:{port}"))
            .env("STRONGBOX_PUBLIC_URL", &origin)
            .env("STRONGBOX_RATE_LIMITS__GENERAL__PER_MINUTE", "100000")
            .env("STRONGBOX_RATE_LIMITS__GENERAL__BURST", "100000")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn strongbox");
        // The setup link comes on standard output before the server listens.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let link = line
                    .split_whitespace()
                    .find(|word| word.starts_with("http://") || word.starts_with("https://"));
                if let Some(link) = link {
                    let _ = tx.send(link.to_string());
                }
            }
        });
        let server = Self { child, origin, log };
        server.wait_until_ready();
        let link = rx.recv_timeout(Duration::from_millis(200)).ok();
        (server, link)
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/healthz", self.origin);
        while Instant::now() < deadline {
            if get_status(&url).is_ok_and(|status| status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "the server did not start; log: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// A real process kill: no shutdown, no flushing, mid-whatever it was doing.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("server log, last lines first:\n{}", tail.join("\n"));
        }
    }
}

/// The status of a plain blocking GET: the readiness poll runs outside any async runtime.
pub fn get_status(url: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("host/path");
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok());
    Ok(status.unwrap_or(0))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
