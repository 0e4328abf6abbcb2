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
    AggregateSpec, CollectionPage, CollectionSummary, Paged, Preview, QuerySpec, WorkspaceService,
    authorize,
};
