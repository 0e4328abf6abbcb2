//! Outgoing email: one `.eml` file per message (0600) in the outbox directory by default,
//! or an SMTP relay with STARTTLS or TLS. Messages are queued and delivered by a mail
//! thread of their own, so no request waits on a relay (and how long a request takes says
//! nothing about whether it sent mail).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use secrecy::ExposeSecret;

use crate::config::{Config, EmailTransport, SmtpTls};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the email address cannot be used")]
    Address,
    #[error("the message could not be built")]
    Build(#[from] lettre::error::Error),
    #[error("the outbox could not be written")]
    Outbox(#[source] std::io::Error),
    #[error("the SMTP relay refused or failed")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the email settings are invalid")]
    Settings,
}

/// Messages waiting for the mail thread; beyond this, new ones are dropped and logged.
const QUEUE_LEN: usize = 1024;
/// A relay that does not answer within this is given up on for that message.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The sending side of the mail queue.
pub struct Mailer {
    queue: SyncSender<Email>,
}

/// Where queued messages go, owned by the mail thread.
struct Courier {
    from: Mailbox,
    transport: Delivery,
}

enum Delivery {
    Outbox(PathBuf),
    Smtp(Box<SmtpTransport>),
}

/// One plain-text message.
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Mailer {
    /// Checks the settings and starts the mail thread.
    pub fn start(config: &Config) -> Result<Self, MailError> {
        let courier = Courier::from_config(config)?;
        let (queue, waiting) = sync_channel::<Email>(QUEUE_LEN);
        std::thread::Builder::new()
            .name("mail".into())
            .spawn(move || {
                for email in waiting {
                    if let Err(e) = courier.deliver(email) {
                        tracing::error!(error = %crate::telemetry::error_chain(&e), "email not sent");
                    }
                }
            })
            .map_err(MailError::Outbox)?;
        Ok(Self { queue })
    }

    /// Queues a message for the mail thread. Never blocks; a full queue drops the message
    /// and says so in the log.
    pub fn send(&self, email: Email) {
        if self.queue.try_send(email).is_err() {
            tracing::error!("email not queued: the mail queue is full or stopped");
        }
    }
}

impl Courier {
    fn from_config(config: &Config) -> Result<Self, MailError> {
        let from: Mailbox = config.email.from.parse().map_err(|_| MailError::Settings)?;
        let transport = match (config.email.transport, &config.email.smtp) {
            (EmailTransport::File, _) => Delivery::Outbox(config.outbox_dir()),
            (EmailTransport::Smtp, Some(smtp)) => {
                let builder = match smtp.tls {
                    SmtpTls::Starttls => SmtpTransport::starttls_relay(&smtp.host)?,
                    SmtpTls::Tls => SmtpTransport::relay(&smtp.host)?,
                    SmtpTls::None => SmtpTransport::builder_dangerous(&smtp.host),
                };
                let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
                if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
                    let credentials =
                        Credentials::new(user.clone(), password.expose_secret().to_string());
                    builder = builder.credentials(credentials);
                }
                Delivery::Smtp(Box::new(builder.build()))
            }
            (EmailTransport::Smtp, None) => return Err(MailError::Settings),
        };
        Ok(Self { from, transport })
    }

    fn deliver(&self, email: Email) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(|_| MailError::Address)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(email.body)?;
        match &self.transport {
            Delivery::Outbox(dir) => write_to_outbox(dir, &message.formatted()),
            Delivery::Smtp(smtp) => smtp.send(&message).map(drop).map_err(MailError::from),
        }
    }
}

fn write_to_outbox(dir: &PathBuf, bytes: &[u8]) -> Result<(), MailError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(MailError::Outbox)?;
    let path = dir.join(format!("{}.eml", uuid::Uuid::new_v4()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(MailError::Outbox)?;
    file.write_all(bytes).map_err(MailError::Outbox)?;
    file.sync_all().map_err(MailError::Outbox)
}
