//! `backup`: the nightly backup (see `crate::backup`), as a job.

use super::{Ended, JobContext, JobError, Summary};
use crate::backup::{self, BackupError, BackupReport};

pub(super) fn run(ctx: &JobContext) -> Result<Ended, JobError> {
    let should_stop = || ctx.stop.is_requested();
    let settings = &ctx.settings.backup;
    match backup::run(
        &ctx.store,
        &ctx.audit,
        settings,
        ctx.clock.now(),
        &should_stop,
    ) {
        Ok(report) => Ok(Ended::Finished(summary(&report))),
        Err(BackupError::Stopped) => Ok(Ended::Stopped(Summary::default())),
        Err(e) => Err(e.into()),
    }
}

fn summary(report: &BackupReport) -> Summary {
    let bytes = usize::try_from(report.bytes).unwrap_or(usize::MAX);
    Summary::default()
        .with("files", report.files)
        .with("bytes", bytes)
        .with("mb_per_s", report.mb_per_s().round() as usize)
        .with("offsite", usize::from(report.offsite))
        .with("pruned", report.pruned)
}
