//! Workspaces: creation, members and roles, invitations.

mod error;
mod export;
mod model;
pub mod policy;
pub mod records;
mod repo;
mod service;
pub mod shown;
pub mod usage;
mod usage_buffer;

/// What the scheduled jobs delete: spent invitations, workspaces past their closure hold,
/// and what a departing account leaves behind.
pub mod retention {
    pub use super::repo::{
        closed_workspaces_due, delete_spent_invites, forget_departing_user, solely_owned,
        workspace_closure_due,
    };
}

/// What `strongbox restore --drill-account` needs to make the drill's account a member of a
/// restored workspace (see `backup::drill`).
pub mod provisioning {
    pub use super::repo::add_member;
}

pub use error::WorkspaceError;
pub use model::{Action, Invitation, Member, Role, Workspace, WorkspaceName};
pub use repo::PendingInvite;
pub use service::{
    AUDIT_PAGE_SIZE, AggregateSpec, AuditPage, CLOSURE_HOLD_SECS, CollectionPage,
    CollectionSummary, ExportFormat, MAX_PAGE, Paged, Preview, QuerySpec, Shown, USAGE_DAYS,
    UsageReport, WorkspaceService, authorize,
};
