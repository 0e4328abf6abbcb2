use crate::store::StoreError;
use crate::workspace::WorkspaceError;

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("the request is not a JSON-RPC 2.0 request")]
    InvalidRequest,
    #[error("requests after initialize need the Mcp-Session-Id header")]
    MissingSession,
    /// Unknown, ended, expired, or begun by another credential: the client starts anew.
    #[error("the session is not known; initialize a new one")]
    UnknownSession,
    #[error("the workspace could not be read")]
    Workspace(#[from] WorkspaceError),
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for McpError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
