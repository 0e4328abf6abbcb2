//! `closure-purge`: deletes workspaces and accounts whose 30-day closure hold has passed.
//!
//! A workspace goes in two steps (see `Store::delete_workspace_with`): its control rows and
//! a deletion marker in one commit, then its directory. A run interrupted between the two
//! is finished by the next run, which first removes every directory still marked. Each
//! deadline is read again inside the deleting transaction, so a closure cancelled after
//! the list was read is kept.

use super::{Ended, JobContext, JobError, Summary};
use crate::audit::{Action, Actor, Chain, Entry};
use crate::auth::{self, UserId};
use crate::ids::WorkspaceId;
use crate::telemetry::error_chain;
use crate::workspace;

/// What one purge deleted (each also in the system audit log); the job's recorded summary
/// keeps only the counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Workspaces deleted: control rows gone, directory removed.
    pub workspaces: Vec<WorkspaceId>,
    /// Accounts deleted, with everything that was theirs alone.
    pub accounts: Vec<UserId>,
    /// Accounts past their hold but kept: still the only owner of a workspace that is not
    /// closing, which would be left with no one to manage it.
    pub accounts_held: Vec<UserId>,
    /// Directories of workspaces deleted by an earlier, interrupted run, removed now.
    pub directories_finished: usize,
    /// Workspaces or accounts that failed (each logged); the next run tries them again.
    pub failed: usize,
    /// A stop was requested before everything due was done.
    pub stopped: bool,
}

impl PurgeReport {
    pub fn summary(&self) -> Summary {
        Summary::default()
            .with("workspaces", self.workspaces.len())
            .with("accounts", self.accounts.len())
            .with("accounts_held", self.accounts_held.len())
            .with("directories_finished", self.directories_finished)
    }
}

pub(super) fn run(ctx: &JobContext) -> Result<Ended, JobError> {
    let report = purge(ctx)?;
    let summary = report.summary();
    match (report.failed, report.stopped) {
        (0, false) => Ok(Ended::Finished(summary)),
        (0, true) => Ok(Ended::Stopped(summary)),
        (failed, _) => Err(JobError::Incomplete { failed, summary }),
    }
}

/// Deletes every workspace, then every account, whose closure hold has passed by the
/// context's clock, checking for a stop request between them.
pub fn purge(ctx: &JobContext) -> Result<PurgeReport, JobError> {
    let now = ctx.clock.now();
    let mut report = PurgeReport {
        directories_finished: ctx.store.finish_workspace_deletions()?,
        ..PurgeReport::default()
    };
    let due = ctx
        .store
        .control()
        .read(|c| Ok::<_, JobError>(workspace::retention::closed_workspaces_due(c, now)?))?;
    for id in due {
        if ctx.stop.is_requested() {
            report.stopped = true;
            return Ok(report);
        }
        match purge_workspace(ctx, id, now) {
            Ok(true) => report.workspaces.push(id),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(workspace = %id, error = %error_chain(&e), "workspace purge failed");
                report.failed += 1;
            }
        }
    }
    let due = ctx
        .store
        .control()
        .read(|c| Ok::<_, JobError>(auth::retention::closed_accounts_due(c, now)?))?;
    for user in due {
        if ctx.stop.is_requested() {
            report.stopped = true;
            return Ok(report);
        }
        match purge_account(ctx, user, now) {
            Ok(AccountPurge::Deleted) => report.accounts.push(user),
            Ok(AccountPurge::Held) => {
                tracing::warn!(
                    user = %user,
                    "account closure held: it is the only owner of a workspace that is not closing"
                );
                report.accounts_held.push(user);
            }
            Ok(AccountPurge::NotDue) => {}
            Err(e) => {
                tracing::error!(user = %user, error = %error_chain(&e), "account purge failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// `false` when the closure was cancelled (or the workspace is gone) since it was listed.
/// The workspace's own log goes with it; the system log keeps the purge, in the
/// transaction that removes its control rows.
fn purge_workspace(ctx: &JobContext, id: WorkspaceId, now: i64) -> Result<bool, JobError> {
    ctx.store.delete_workspace_with(id, |tx| {
        if !workspace::retention::workspace_closure_due(tx, id, now)? {
            return Ok::<_, JobError>(false);
        }
        let entry = Entry::new(Actor::system(), Action::WorkspacePurged).target("workspace", id);
        ctx.audit.append(tx, Chain::System, entry)?;
        Ok(true)
    })
}

enum AccountPurge {
    Deleted,
    Held,
    /// Cancelled, or already gone, since it was listed.
    NotDue,
}

fn purge_account(ctx: &JobContext, user: UserId, now: i64) -> Result<AccountPurge, JobError> {
    ctx.store.control().write(|tx| {
        if !auth::retention::account_closure_due(tx, user, now)? {
            return Ok(AccountPurge::NotDue);
        }
        if workspace::retention::solely_owned(tx, user)? > 0 {
            return Ok(AccountPurge::Held);
        }
        workspace::retention::forget_departing_user(tx, user)?;
        auth::retention::delete_account(tx, user)?;
        let entry = Entry::new(Actor::system(), Action::AccountPurged).target("user", user);
        ctx.audit.append(tx, Chain::System, entry)?;
        Ok(AccountPurge::Deleted)
    })
}
