//! `usage-sweep`: deletes AI usage rows older than the 90 days the product promises, in
//! every workspace's database.

use super::each::{Labels, sweep_each};
use super::{Ended, JobContext, JobError};
use crate::ids::WorkspaceId;
use crate::workspace::usage;

pub(super) fn run(ctx: &JobContext) -> Result<Ended, JobError> {
    let cutoff = ctx.clock.now() - usage::RETENTION_SECS;
    let workspaces = ctx.store.workspace_keys()?.into_iter().map(|k| k.workspace);
    let labels = Labels {
        units: "workspaces",
        rows: "usage_rows",
    };
    sweep_each(ctx, workspaces, labels, |id| sweep(ctx, *id, cutoff))
}

fn sweep(ctx: &JobContext, id: WorkspaceId, cutoff: i64) -> Result<usize, JobError> {
    let db = ctx.store.workspace(id)?;
    db.write(|tx| Ok(usage::delete_before(tx, cutoff)?))
}
