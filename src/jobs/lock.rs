//! One run of a job at a time, across processes: an exclusive lock on a lock file per job in
//! the data dir (see `store::DataDirLock`).

use super::{JobError, JobName};
use crate::store::{DataDir, DataDirLock};

/// Held for as long as a run lasts; dropping it releases the lock.
#[derive(Debug)]
pub struct JobLock {
    _lock: DataDirLock,
}

impl JobLock {
    /// Takes the job's lock without waiting: `AlreadyRunning` when another run holds it.
    pub fn try_acquire(layout: &DataDir, job: JobName) -> Result<Self, JobError> {
        match DataDirLock::try_acquire(layout, job.as_str())? {
            Some(lock) => Ok(Self { _lock: lock }),
            None => Err(JobError::AlreadyRunning(job)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

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
