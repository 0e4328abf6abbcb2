//! `usage-sweep`: deletes AI usage rows older than the 90 days the product promises, in
//! every workspace's database.

use super::{Ended, JobContext, JobError, Summary};
use crate::ids::WorkspaceId;
use crate::store::StoreError;
use crate::workspace::usage;

pub(super) fn run(ctx: &JobContext) -> Result<Ended, JobError> {
    let cutoff = ctx.clock.now() - usage::RETENTION_SECS;
    let (mut swept, mut rows, mut failed) = (0, 0, 0);
    let summary = |swept, rows| {
        Summary::default()
            .with("workspaces", swept)
            .with("usage_rows", rows)
    };
    for key in ctx.store.workspace_keys()? {
        if ctx.stop.is_requested() {
            return Ok(Ended::Stopped(summary(swept, rows)));
        }
        match sweep(ctx, key.workspace, cutoff) {
            Ok(deleted) => {
                swept += 1;
                rows += deleted;
            }
            // Purged since the list was read: nothing left to sweep.
            Err(JobError::Store(StoreError::WorkspaceNotFound)) => {}
            Err(e) => {
                tracing::error!(
                    workspace = %key.workspace,
                    error = %crate::telemetry::error_chain(&e),
                    "usage sweep of a workspace failed"
                );
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

fn sweep(ctx: &JobContext, id: WorkspaceId, cutoff: i64) -> Result<usize, JobError> {
    let db = ctx.store.workspace(id)?;
    db.write(|tx| Ok(usage::delete_before(tx, cutoff)?))
}
