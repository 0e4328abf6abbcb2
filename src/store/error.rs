use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "data directory {path} is accessible by group or others (mode {mode:04o}); it must be 0700: chmod 700 {path}"
    )]
    UnsafeDataDir { path: PathBuf, mode: u32 },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "database {path} does not open with the derived key (wrong master key, or not a Strongbox database)"
    )]
    WrongKey { path: PathBuf },
    #[error("database {path} has schema version {found}; this binary knows up to {supported}")]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("install file {path} is invalid: {reason}")]
    InvalidInstallFile { path: PathBuf, reason: String },
    #[error(
        "the data directory has a control database but no {missing}; refusing to create a new one"
    )]
    IncompleteInstall { missing: &'static str },
    #[error("{path} already exists")]
    FileExists { path: PathBuf },
    #[error("database {path} did not switch to WAL journaling")]
    NoWal { path: PathBuf },
    #[error("the control database {path} is missing; refusing to create an empty one")]
    MissingControlDb { path: PathBuf },
    #[error(
        "database {path} is open in another process (a running server or command); stop it and try again"
    )]
    InUse { path: PathBuf },
    #[error("a key rotation is running on this data directory; try again when it has finished")]
    RotationRunning,
    #[error("database {path} does not open with its new key after rekeying")]
    RekeyNotApplied { path: PathBuf },
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error("the caller's part of the registration failed")]
    RegistrationRefused,
    #[error("workspace already exists")]
    WorkspaceExists,
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("filesystem error at {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("database worker stopped before finishing its job")]
    WorkerLost,
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
