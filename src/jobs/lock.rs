//! One run of a job at a time, across processes: an exclusive `flock` on a lock file per
//! job in the data dir. The kernel drops the lock when its holder exits, however it exits,
//! so a crashed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{JobError, JobName};
use crate::store::DataDir;

/// Held for as long as a run lasts; dropping it releases the lock.
#[derive(Debug)]
pub struct JobLock {
    _file: Flock<File>,
}

impl JobLock {
    /// Takes the job's lock without waiting: `AlreadyRunning` when another run holds it.
    pub fn try_acquire(layout: &DataDir, job: JobName) -> Result<Self, JobError> {
        layout.create_locks_dir()?;
        let path = layout.locks_dir().join(format!("{job}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| lock_error(&path, source))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(Self { _file: file }),
            Err((_, Errno::EWOULDBLOCK)) => Err(JobError::AlreadyRunning(job)),
            Err((_, errno)) => Err(lock_error(&path, errno.into())),
        }
    }
}

fn lock_error(path: &std::path::Path, source: std::io::Error) -> JobError {
    JobError::Lock {
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_run_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataDir::new(dir.path().join("data"));
        layout.create().unwrap();
        let held = JobLock::try_acquire(&layout, JobName::UsageSweep).unwrap();
        assert!(matches!(
            JobLock::try_acquire(&layout, JobName::UsageSweep),
            Err(JobError::AlreadyRunning(JobName::UsageSweep))
        ));
        let other = JobLock::try_acquire(&layout, JobName::ClosurePurge)
            .expect("each job has its own lock");
        drop(held);
        JobLock::try_acquire(&layout, JobName::UsageSweep).expect("free once released");
        drop(other);

        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(layout.locks_dir()), 0o700);
        assert_eq!(mode(layout.locks_dir().join("usage-sweep.lock")), 0o600);
    }
}
