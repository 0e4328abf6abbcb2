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
use crate::keys::{self, KeysError, NewMasterKey, Rotated};
use crate::store::{
    DataDir, DataDirLock, InstallInfo, InstallState, KEYS_LOCK, OpenMode, SERVER_LOCK, Store,
    StoreError, StoreSettings,
};

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
    #[error("data directory {0} is in use by another `strongbox serve`")]
    InUse(String),
    #[error(
        "data directory {0} is in use by a server, a job or another command: stop them first; nothing was changed"
    )]
    DataDirBusy(String),
    #[error("a key rotation is unfinished: run `strongbox keys rotate` to finish it")]
    RotationUnfinished,
    #[error(
        "a rotation to a new master key (fingerprint {0}) is unfinished: run `strongbox keys rotate --new-master-key FILE` naming that key to finish it"
    )]
    MasterKeyRotationUnfinished(String),
    #[error(transparent)]
    Keys(#[from] KeysError),
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
/// An unfinished key rotation is refused: only `keys rotate` knows which keys to use.
pub fn open(config: &Config) -> Result<Opened, StartupError> {
    let layout = initialised_layout(config)?;
    let (install, key_source, keys) = load_keys(config, &layout)?;
    if let Some(rotation) = install.rotation {
        return Err(match rotation.master_key_fingerprint {
            Some(fingerprint) => StartupError::MasterKeyRotationUnfinished(fingerprint),
            None => StartupError::RotationUnfinished,
        });
    }
    let settings = (&config.storage).into();
    let store = Store::open(layout, keys, &install, settings, OpenMode::Existing)?;
    Ok(Opened { store, key_source })
}

/// Runs `strongbox keys rotate` (see `keys`) holding the keys lock exclusively, so never
/// beside a server, a job or another command with the store open. The lock is taken
/// before the install file is read, so what is read stays true.
pub fn rotate_keys(config: &Config, new_master: NewMasterKey) -> Result<Rotated, StartupError> {
    let layout = initialised_layout(config)?;
    let dir = config.data_dir.display().to_string();
    let _lock =
        DataDirLock::try_acquire(&layout, KEYS_LOCK)?.ok_or(StartupError::DataDirBusy(dir))?;
    let (info, source, keys) = load_keys(config, &layout)?;
    let install = keys::Install {
        layout,
        info,
        source,
        keys,
        settings: StoreSettings::from(&config.storage).connections,
        clock: Arc::new(SystemClock),
    };
    Ok(keys::rotate(install, new_master)?)
}

/// The data dir, once its permissions are checked and it holds a whole install.
fn initialised_layout(config: &Config) -> Result<DataDir, StartupError> {
    let layout = DataDir::new(&config.data_dir);
    layout.check_permissions()?;
    match layout.state() {
        InstallState::Ready => Ok(layout),
        InstallState::Empty => {
            let dir = config.data_dir.display().to_string();
            Err(StartupError::NotInitialised(dir))
        }
        InstallState::NoInstallFile => {
            let missing = crate::store::INSTALL_FILE;
            Err(StoreError::IncompleteInstall { missing }.into())
        }
        InstallState::NoControlDb => {
            let path = layout.control_db();
            Err(StoreError::MissingControlDb { path }.into())
        }
    }
}

/// The install file, and the keys derived from the master key where the server reads it.
fn load_keys(
    config: &Config,
    layout: &DataDir,
) -> Result<(InstallInfo, KeySource, KeyRing), StartupError> {
    let install = InstallInfo::load(&layout.install_file())?;
    let key_source = key_source(config);
    let master = MasterKey::load(key_source.path())?;
    let keys = KeyRing::new(master, install.salt);
    Ok((install, key_source, keys))
}

/// Initialises an empty data dir if needed, then serves HTTP, with the scheduled jobs
/// beside it, until SIGINT or SIGTERM. A job in flight is asked to stop and awaited.
pub fn serve(config: Config) -> Result<(), StartupError> {
    if DataDir::new(&config.data_dir).state() == InstallState::Empty {
        init(&config)?;
    }
    let opened = open(&config)?;
    // Taken once the install has opened, so a start-up that refuses writes nothing; held
    // until the process ends, so a second server never shares this data dir.
    let layout = opened.store.layout();
    let _lock = DataDirLock::try_acquire(layout, SERVER_LOCK)?
        .ok_or_else(|| StartupError::InUse(config.data_dir.display().to_string()))?;
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
