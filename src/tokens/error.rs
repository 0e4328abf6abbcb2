use crate::store::StoreError;
use crate::workspace::WorkspaceError;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Unknown, malformed, revoked, or its person no longer in the workspace.
    #[error("the token is not valid")]
    Unauthorized,
    #[error("the token name must be 1 to 100 characters")]
    InvalidName,
    #[error("the access must be read or read_write")]
    InvalidAccess,
    #[error("token not found")]
    NotFound,
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for TokenError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
