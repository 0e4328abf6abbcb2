//! Start-up: preparing a data dir, loading the keys, opening the store, running the server.
//! Every check that can refuse start-up runs before anything in the data dir is written.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::crypto::{KeyError, KeyRing, KeySource, MasterKey};
use crate::http::{self, AppState};
use crate::jobs::{self, JobContext, JobSettings};
use crate::store::{DataDir, InstallInfo, InstallState, OpenMode, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("data directory {0} is not initialised: run `strongbox init` first")]
    NotInitialised(String),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the HTTP server stopped with an error")]
    Server(#[source] io::Error),
    #[error("the email settings cannot be used")]
    Mail(#[from] crate::mail::MailError),
    #[error("the {0} settings cannot be used")]
    Settings(&'static str),
    #[error("the scheduled jobs cannot start")]
    Jobs(#[source] jobs::JobError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyInitialised,
}

/// An opened install: the store and where its master key came from.
pub struct Opened {
    pub store: Store,
    pub key_source: KeySource,
}

/// Creates the data dir (0700), the master key (0600, unless one is supplied), the install
/// file and the control database. On an install that exists it only verifies it opens.
pub fn init(config: &Config) -> Result<InitOutcome, StartupError> {
    let layout = DataDir::new(&config.data_dir);
    layout.check_permissions()?;
    if layout.state() != InstallState::Empty {
        open(config)?;
        return Ok(InitOutcome::AlreadyInitialised);
    }
    let source = key_source(config);
    // A supplied key is checked before anything is written.
    let supplied = match MasterKey::load(source.path()) {
        Ok(key) => Some(key),
        Err(KeyError::Missing { .. }) if matches!(source, KeySource::DataDir(_)) => None,
        Err(e) => return Err(e.into()),
    };
    layout.create()?;
    let master = match supplied {
        Some(key) => key,
        None => MasterKey::create(source.path())?,
    };
    let install = InstallInfo::generate();
    install.create(&layout.install_file())?;
    let keys = KeyRing::new(master, install.salt);
    Store::open(
        layout,
        keys,
        &install,
        (&config.storage).into(),
        OpenMode::Create,
    )?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        key_source = source.describe(),
        "initialised data directory"
    );
    Ok(InitOutcome::Created)
}

/// Opens an initialised install after checking the data dir and key file permissions.
pub fn open(config: &Config) -> Result<Opened, StartupError> {
    let layout = DataDir::new(&config.data_dir);
    layout.check_permissions()?;
    match layout.state() {
        InstallState::Ready => {}
        InstallState::Empty => {
            let dir = config.data_dir.display().to_string();
            return Err(StartupError::NotInitialised(dir));
        }
        InstallState::NoInstallFile => {
            let missing = crate::store::INSTALL_FILE;
            return Err(StoreError::IncompleteInstall { missing }.into());
        }
        InstallState::NoControlDb => {
            let path = layout.control_db();
            return Err(StoreError::MissingControlDb { path }.into());
        }
    }
    let install = InstallInfo::load(&layout.install_file())?;
    let key_source = key_source(config);
    let master = MasterKey::load(key_source.path())?;
    let keys = KeyRing::new(master, install.salt);
    let settings = (&config.storage).into();
    let store = Store::open(layout, keys, &install, settings, OpenMode::Existing)?;
    Ok(Opened { store, key_source })
}

/// Initialises an empty data dir if needed, then serves HTTP, with the scheduled jobs
/// beside it, until SIGINT or SIGTERM. A job in flight is asked to stop and awaited.
pub fn serve(config: Config) -> Result<(), StartupError> {
    if DataDir::new(&config.data_dir).state() == InstallState::Empty {
        init(&config)?;
    }
    let opened = open(&config)?;
    let listener = TcpListener::bind(config.listen).map_err(|source| StartupError::Bind {
        addr: config.listen,
        source,
    })?;
    let local = listener.local_addr().map_err(StartupError::Server)?;
    tracing::info!(
        listen = %local,
        public_url = %config.public_url,
        key_source = opened.key_source.describe(),
        master_key_fingerprint = %opened.store.master_key_fingerprint(),
        "strongbox is listening"
    );
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Arc::new(opened.store);
    let job_context = JobContext::new(
        Arc::clone(&store),
        clock.clone(),
        JobSettings::from(&config),
    );
    let scheduler =
        jobs::Scheduler::start(job_context, &config.jobs).map_err(StartupError::Jobs)?;
    let state = AppState::new(Arc::new(config), store, clock)?;
    let served = http::run(listener, state).map_err(StartupError::Server);
    scheduler.stop();
    served
}

fn key_source(config: &Config) -> KeySource {
    KeySource::resolve(config.master_key_file.as_deref(), &config.data_dir)
}
