//! The MCP server: Streamable HTTP at `/mcp` with JSON responses, in sessions bound to the
//! credential that began them (through 2025-11-25) or statelessly (2026-07-28), and
//! read-only tools over one workspace whose every result passes through the workspace's
//! masking rules.

mod cursor;
pub mod envelope;
mod error;
mod protocol;
mod repo;
mod snippet;
mod tools;

/// What the scheduled jobs delete: sessions past their idle or absolute limit.
pub mod retention {
    pub use super::repo::delete_ended_sessions;
}

pub use cursor::Cursors;
pub use error::McpError;
pub use protocol::{McpReply, McpService};

use crate::auth::UserId;
use crate::ids::WorkspaceId;

/// Who is calling: the workspace and person a credential stands for, and the credential
/// itself (`grant:<id>` or `token:<id>`), which sessions are bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub workspace: WorkspaceId,
    pub user: UserId,
    pub credential: String,
}
