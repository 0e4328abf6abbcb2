use std::io;

use super::{JobName, Summary};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Another run of the job holds its lock, in this process or another.
    #[error("{0} is already running")]
    AlreadyRunning(JobName),
    /// Some units of work (workspaces, accounts) failed; the rest were done. Each failure
    /// was logged with its cause; the next run tries them again.
    #[error("{failed} item(s) could not be processed")]
    Incomplete { failed: usize, summary: Summary },
    #[error("the job scheduler cannot run")]
    Scheduler(#[source] tokio_cron_scheduler::JobSchedulerError),
    #[error("the job scheduler's thread cannot start")]
    SchedulerThread(#[source] io::Error),
    /// The clock reads a time the calendar cannot count back from.
    #[error("the clock is out of range")]
    ClockOutOfRange,
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl JobError {
    /// What a failed run records: what got done, if anything, and the error's category.
    pub fn summary(&self) -> String {
        match self {
            Self::Incomplete { failed, summary } => format!("{summary} failed={failed}"),
            other => format!("error: {other}"),
        }
    }
}

impl From<rusqlite::Error> for JobError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
