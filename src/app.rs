//! Start-up: preparing a data dir, loading the keys, opening the store, running the server.
//! Every check that can refuse start-up runs before anything in the data dir is written.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::config::Config;
use crate::crypto::{KeyError, KeyRing, KeySource, MasterKey};
use crate::http::{self, AppState};
use crate::store::{DataDir, InstallInfo, Store, StoreError};

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
/// file and the control database. Re-running it on an initialised dir only verifies it.
pub fn init(config: &Config) -> Result<InitOutcome, StartupError> {
    let layout = DataDir::new(&config.data_dir);
    layout.check_permissions()?;
    if layout.install_file().exists() {
        open(config)?;
        return Ok(InitOutcome::AlreadyInitialised);
    }
    if layout.control_db().exists() {
        return Err(missing_install_file());
    }
    let source = key_source(config);
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
    Store::open(
        layout,
        KeyRing::new(master, install.salt),
        &install,
        (&config.storage).into(),
    )?;
    tracing::info!(data_dir = %config.data_dir.display(), key_source = source.describe(), "initialised data directory");
    Ok(InitOutcome::Created)
}

/// Opens an initialised install after checking the data dir and key file permissions.
pub fn open(config: &Config) -> Result<Opened, StartupError> {
    let layout = DataDir::new(&config.data_dir);
    layout.check_permissions()?;
    let install_file = layout.install_file();
    if !install_file.exists() {
        if layout.control_db().exists() {
            return Err(missing_install_file());
        }
        return Err(StartupError::NotInitialised(
            config.data_dir.display().to_string(),
        ));
    }
    let install = InstallInfo::load(&install_file)?;
    let key_source = key_source(config);
    let master = MasterKey::load(key_source.path())?;
    let keys = KeyRing::new(master, install.salt);
    let store = Store::open(layout, keys, &install, (&config.storage).into())?;
    Ok(Opened { store, key_source })
}

/// Initialises an empty data dir if needed, then serves HTTP until stopped by a signal.
pub async fn serve(config: Config) -> Result<(), StartupError> {
    let layout = DataDir::new(&config.data_dir);
    layout.check_permissions()?;
    if !layout.install_file().exists() && !layout.control_db().exists() {
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
    let state = AppState::new(Arc::new(config), Arc::new(opened.store));
    let server = http::server(listener, state).map_err(StartupError::Server)?;
    server.await.map_err(StartupError::Server)
}

/// The salt is gone: generating a fresh one would make every database unreadable.
fn missing_install_file() -> StartupError {
    StoreError::IncompleteInstall {
        missing: crate::store::INSTALL_FILE,
    }
    .into()
}

fn key_source(config: &Config) -> KeySource {
    KeySource::resolve(config.master_key_file.as_deref(), &config.data_dir)
}
