//! Exclusive `flock`s on lock files in the data dir's locks dir. The kernel drops a lock when
//! its holder exits, however it exits, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{DataDir, StoreError};

/// Held by `strongbox serve` for its lifetime, so two servers never share a data dir.
pub const SERVER_LOCK: &str = "server";

/// Held shared by every open `Store` and exclusively by `strongbox keys rotate`, so a
/// rotation never runs beside a server, a job or any other command using the keys.
pub const KEYS_LOCK: &str = "keys";

/// Held until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: Flock<File>,
}

impl DataDirLock {
    /// Takes `<locks dir>/<name>.lock` without waiting; `None` when someone else holds it.
    pub fn try_acquire(layout: &DataDir, name: &str) -> Result<Option<Self>, StoreError> {
        Self::try_lock(layout, name, FlockArg::LockExclusiveNonblock)
    }

    /// Shares the lock with other shared holders; `None` when it is held exclusively.
    pub fn try_acquire_shared(layout: &DataDir, name: &str) -> Result<Option<Self>, StoreError> {
        Self::try_lock(layout, name, FlockArg::LockSharedNonblock)
    }

    fn try_lock(layout: &DataDir, name: &str, how: FlockArg) -> Result<Option<Self>, StoreError> {
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
        match Flock::lock(file, how) {
            Ok(file) => Ok(Some(Self { _file: file })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(StoreError::io(&path)(errno.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_exclude_an_exclusive_one_and_the_other_way_round() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataDir::new(dir.path().join("data"));
        layout.create().unwrap();
        let shared = |name| DataDirLock::try_acquire_shared(&layout, name).unwrap();
        let exclusive = |name| DataDirLock::try_acquire(&layout, name).unwrap();

        let first = shared(KEYS_LOCK).expect("free");
        let second = shared(KEYS_LOCK).expect("shared holders share");
        assert!(exclusive(KEYS_LOCK).is_none(), "refused while shared");
        assert!(
            exclusive(SERVER_LOCK).is_some(),
            "each name is its own lock"
        );
        drop((first, second));

        let rotation = exclusive(KEYS_LOCK).expect("free once released");
        assert!(
            shared(KEYS_LOCK).is_none(),
            "refused while held exclusively"
        );
        drop(rotation);
        assert!(shared(KEYS_LOCK).is_some());
    }
}
