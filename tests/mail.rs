//! Email over a real SMTP conversation: the transport speaks to a minimal SMTP peer on
//! loopback, and a relay that fails does not turn "forgot password" into an oracle.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use strongbox::config::{EmailTransport, Smtp, SmtpTls};

use crate::common::{OWNER_EMAIL, TestServer, WebClient};

/// Accepts SMTP sessions on loopback and keeps each message's DATA.
fn smtp_peer() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let _ = stream.write_all(b"220 peer ESMTP\r\n");
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let command = line.trim_end().to_ascii_uppercase();
                let reply: &[u8] = if command.starts_with("EHLO") {
                    b"250-peer\r\n250 8BITMIME\r\n"
                } else if command == "DATA" {
                    let _ = stream.write_all(b"354 go ahead\r\n");
                    let mut message = String::new();
                    loop {
                        let mut data = String::new();
                        if reader.read_line(&mut data).unwrap_or(0) == 0 || data == ".\r\n" {
                            break;
                        }
                        message.push_str(&data);
                    }
                    store.lock().unwrap().push(message);
                    b"250 queued\r\n"
                } else if command == "QUIT" {
                    let _ = stream.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                };
                let _ = stream.write_all(reply);
                line.clear();
            }
        }
    });
    (port, received)
}

fn smtp(port: u16) -> Smtp {
    Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
    }
}

#[tokio::test]
async fn links_are_delivered_over_smtp_when_configured() {
    let (port, received) = smtp_peer();
    let server = TestServer::start_with(|c| {
        c.email.transport = EmailTransport::Smtp;
        c.email.smtp = Some(smtp(port));
    });
    let link = server.auth.first_run_setup_link().await.unwrap().unwrap();
    crate::common::complete_setup(&server, &link).await;
    // Delivery happens on the mail thread; give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "the verification email went over SMTP");
    let message = messages[0].replace("=\r\n", "").replace("=3D", "=");
    assert!(message.contains(&format!("To: {OWNER_EMAIL}")));
    assert!(message.contains(&format!("{}/verify?token=sbx_verify_", server.origin())));
    assert!(
        !server.dir.config.outbox_dir().exists(),
        "nothing went to the file outbox"
    );
}

#[tokio::test]
async fn a_failing_relay_does_not_reveal_which_addresses_have_accounts() {
    // A port where nothing listens.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start_with(|c| {
        c.email.transport = EmailTransport::Smtp;
        c.email.smtp = Some(smtp(closed));
        c.accounts.signup = strongbox::config::SignupMode::Open;
    });
    let link = server.auth.first_run_setup_link().await.unwrap().unwrap();
    crate::common::complete_setup(&server, &link).await;
    let mut someone = WebClient::new(&server);
    let known = someone
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", OWNER_EMAIL)],
        )
        .await;
    let unknown = someone
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", "ghost@example.com")],
        )
        .await;
    assert_eq!(known.status, 200);
    assert_eq!(known.status, unknown.status);
}
