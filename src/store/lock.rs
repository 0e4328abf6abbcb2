//! Exclusive `flock`s on lock files in the data dir's locks dir. The kernel drops a lock when
//! its holder exits, however it exits, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{DataDir, StoreError};

/// Held by `strongbox serve` for its lifetime and by `strongbox keys rotate` while it runs,
/// so a rotation never runs beside a server.
pub const SERVER_LOCK: &str = "server";

/// Held until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: Flock<File>,
}

impl DataDirLock {
    /// Takes `<locks dir>/<name>.lock` without waiting; `None` when someone else holds it.
    pub fn try_acquire(layout: &DataDir, name: &str) -> Result<Option<Self>, StoreError> {
        layout.create_locks_dir()?;
        let path = layout.locks_dir().join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(Some(Self { _file: file })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(StoreError::io(&path)(errno.into())),
        }
    }
}
