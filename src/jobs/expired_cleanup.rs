//! `expired-cleanup`: deletes control-database rows that can never be used again, and OAuth
//! clients registered long ago that were never granted anything. Rows a
//! replay or reuse check still needs stay as long as what they protect: used OAuth codes
//! and refresh tokens until their grant ends, used agent refresh secrets until their
//! agent is revoked.

use super::{Ended, JobContext, JobError, Summary};
use crate::{agent, auth, mcp, oauth, oidc, tokens, workspace};

/// Each category is its own short transaction, so the control database's writer is never
/// held for the whole cleanup.
pub(super) fn run(ctx: &JobContext) -> Result<Ended, JobError> {
    let now = ctx.clock.now();
    let idle = ctx.settings.session_idle_timeout_secs;
    let absolute = ctx.settings.session_absolute_timeout_secs;
    let control = ctx.store.control();
    let mut summary = Summary::default();
    let mut delete = |category, rows: Result<usize, JobError>| -> Result<(), JobError> {
        summary.add(category, rows?);
        Ok(())
    };
    delete(
        "sessions",
        control.write(|tx| {
            Ok(auth::retention::delete_ended_sessions(
                tx, now, idle, absolute,
            )?)
        }),
    )?;
    delete(
        "links",
        control.write(|tx| Ok(auth::retention::delete_spent_links(tx, now)?)),
    )?;
    delete(
        "invites",
        control.write(|tx| Ok(workspace::retention::delete_spent_invites(tx, now)?)),
    )?;
    delete(
        "pairing_codes",
        control.write(|tx| Ok(agent::retention::delete_spent_pairing_codes(tx, now)?)),
    )?;
    delete(
        "agent_secrets",
        control.write(|tx| Ok(agent::retention::delete_revoked_agents_secrets(tx)?)),
    )?;
    delete(
        "oauth_codes",
        control.write(|tx| Ok(oauth::retention::delete_expired_codes(tx, now)?)),
    )?;
    delete(
        "access_tokens",
        control.write(|tx| Ok(oauth::retention::delete_expired_access_tokens(tx, now)?)),
    )?;
    delete(
        "grants",
        control.write(|tx| Ok(oauth::retention::delete_ended_grants(tx, now)?)),
    )?;
    let unused_client_age = ctx.settings.unused_oauth_client_secs;
    delete(
        "unused_oauth_clients",
        control.write(|tx| {
            Ok(oauth::retention::delete_unused_clients(
                tx,
                now,
                unused_client_age,
            )?)
        }),
    )?;
    delete(
        "mcp_sessions",
        control.write(|tx| Ok(mcp::retention::delete_ended_sessions(tx, now)?)),
    )?;
    delete(
        "provider_logins",
        control.write(|tx| Ok(oidc::delete_expired_logins(tx, now)?)),
    )?;
    delete(
        "personal_tokens",
        control.write(|tx| Ok(tokens::retention::delete_revoked(tx)?)),
    )?;
    Ok(Ended::Finished(summary))
}
