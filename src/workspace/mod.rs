//! Workspaces: creation, members and roles, invitations.

mod error;
mod export;
mod model;
pub mod policy;
pub mod records;
mod repo;
mod service;
pub mod usage;

pub use error::WorkspaceError;
pub use model::{Action, Invitation, Member, Role, Workspace, WorkspaceName};
pub use repo::PendingInvite;
pub use service::{
    AUDIT_PAGE_SIZE, AggregateSpec, AuditPage, CollectionPage, CollectionSummary, ExportFormat,
    Paged, Preview, QuerySpec, USAGE_DAYS, UsageReport, WorkspaceService, authorize,
};
