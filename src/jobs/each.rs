//! The loop the sweeps share: one unit of work (a workspace, a chain) at a time.

use std::fmt;

use super::{Ended, JobContext, JobError, Summary};
use crate::store::StoreError;
use crate::telemetry::error_chain;

/// The summary's two counts: units swept and rows removed (`workspaces`, `usage_rows`).
pub(super) struct Labels {
    pub units: &'static str,
    pub rows: &'static str,
}

/// Runs `sweep` on each unit in turn and adds up the rows it removed. It stops between
/// units when a stop is requested; skips a workspace purged since the list was read; and
/// logs a failing unit and goes on, so one bad database does not hold back the rest (the
/// run then ends `Incomplete`, and the next run tries again).
pub(super) fn sweep_each<U: fmt::Display>(
    ctx: &JobContext,
    units: impl IntoIterator<Item = U>,
    labels: Labels,
    mut sweep: impl FnMut(&U) -> Result<usize, JobError>,
) -> Result<Ended, JobError> {
    let (mut swept, mut rows, mut failed) = (0, 0, 0);
    let summary = |swept, rows| {
        Summary::default()
            .with(labels.units, swept)
            .with(labels.rows, rows)
    };
    for unit in units {
        if ctx.stop.is_requested() {
            return Ok(Ended::Stopped(summary(swept, rows)));
        }
        match sweep(&unit) {
            Ok(removed) => {
                swept += 1;
                rows += removed;
            }
            Err(JobError::Store(StoreError::WorkspaceNotFound)) => {}
            Err(e) => {
                tracing::error!(unit = %unit, error = %error_chain(&e), "sweep of one database failed");
                failed += 1;
            }
        }
    }
    match failed {
        0 => Ok(Ended::Finished(summary(swept, rows))),
        failed => Err(JobError::Incomplete {
            failed,
            summary: summary(swept, rows),
        }),
    }
}
