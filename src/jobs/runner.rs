//! Running one job now: take its lock, run its body, log and record how it went.

use std::time::Instant;

use super::lock::JobLock;
use super::{Ended, JobContext, JobError, JobName, JobRun, Outcome, repo};
use crate::store::Store;
use crate::telemetry::error_chain;

/// Runs `job` now and records the run. Blocking: call it on a blocking thread.
///
/// Returns `AlreadyRunning` at once, recording nothing, when another run of the job holds
/// its lock. A body that fails is not an error here: the run is logged, recorded with the
/// outcome `failed`, and returned; the next scheduled run tries again.
pub fn run(job: JobName, ctx: &JobContext) -> Result<JobRun, JobError> {
    let _lock = JobLock::try_acquire(ctx.store.layout(), job)?;
    tracing::info!(job = %job, "job started");
    let started_at = ctx.clock.now();
    let timer = Instant::now();
    let result = (job.spec().body)(ctx);
    let duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (outcome, summary) = match &result {
        Ok(Ended::Finished(summary)) => (Outcome::Ok, summary.to_string()),
        Ok(Ended::Stopped(summary)) => (Outcome::Stopped, summary.to_string()),
        Err(error) => (Outcome::Failed, error.summary()),
    };
    let run = JobRun {
        job,
        started_at,
        finished_at: ctx.clock.now(),
        duration_ms,
        outcome,
        summary,
    };
    match &result {
        Err(error) => tracing::error!(
            job = %job,
            duration_ms,
            summary = %run.summary,
            error = %error_chain(error),
            "job failed; it runs again at its next scheduled time"
        ),
        Ok(_) => tracing::info!(
            job = %job,
            outcome = %outcome,
            duration_ms,
            summary = %run.summary,
            "job finished"
        ),
    }
    ctx.store
        .control()
        .write(|tx| Ok::<_, JobError>(repo::record_run(tx, &run)?))?;
    Ok(run)
}

/// The job's newest recorded run, if it ever ran.
pub fn last_run(store: &Store, job: JobName) -> Result<Option<JobRun>, JobError> {
    store.control().read(|c| Ok(repo::last_run(c, job)?))
}
