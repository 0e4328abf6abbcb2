use std::io;
use std::path::PathBuf;

use crate::crypto::KeyError;
use crate::store::StoreError;

/// What can go wrong with a backup. Messages name the backup and the file, never key
/// material or content.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no backup recipients are configured: add age public keys to [backup] recipients")]
    NoRecipients,
    #[error("a backup id looks like 20261123T031500Z-1a2b3c")]
    BadId,
    #[error("backup {0} was not found")]
    NotFound(String),
    #[error("the manifest of backup {0} cannot be read")]
    BadManifest(String),
    #[error(
        "the manifest of backup {0} does not match its MAC: it was changed, or the master key is not the one the backup was made with (name that one with --master-key)"
    )]
    ManifestMac(String),
    #[error("{file} of backup {id} is missing")]
    FileMissing { id: String, file: String },
    #[error(
        "{file} of backup {id} does not match the manifest's size and SHA-256: it was changed or damaged"
    )]
    FileChanged { id: String, file: String },
    #[error(
        "the age identity cannot decrypt backup {0}: it matches none of the backup's recipients"
    )]
    WrongIdentity(String),
    #[error("{file} of backup {id} cannot be decrypted: it is damaged")]
    Undecryptable { id: String, file: String },
    #[error("{file} of backup {id} fails its check after decryption")]
    BadCopy {
        id: String,
        file: String,
        #[source]
        source: StoreError,
    },
    #[error("the age identity file {0} holds no usable identity")]
    BadIdentityFile(PathBuf),
    #[error("{0} is not empty: restore into an empty directory, or pass --force to move it aside")]
    TargetNotEmpty(PathBuf),
    #[error("the backup holds no workspace for the restore drill to work in")]
    NoWorkspace,
    #[error("the backup was stopped before it finished; nothing was kept")]
    Stopped,
    #[error("the off-site target failed")]
    Offsite(#[source] object_store::Error),
    #[error("the off-site target's worker failed")]
    OffsiteWorker,
    #[error("filesystem error at {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the master key cannot be used")]
    Key(#[from] KeyError),
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl BackupError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

impl From<object_store::Error> for BackupError {
    fn from(e: object_store::Error) -> Self {
        Self::Offsite(e)
    }
}
