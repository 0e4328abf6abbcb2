use crate::privacy::PrivacyError;
use crate::store::StoreError;
use crate::workspace::WorkspaceError;
use crate::workspace::records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Every credential problem looks the same from outside: unknown, used or expired code,
    /// bad or expired token, revoked agent.
    #[error("the agent credentials are not valid")]
    Unauthorized,
    #[error("the device name must be 1 to 100 characters")]
    InvalidDeviceName,
    #[error("the agent version is not valid")]
    InvalidVersion,
    #[error("the idempotency key must be 8 to 100 letters, digits, _ or -")]
    InvalidIdempotencyKey,
    #[error("the redaction signal is not valid")]
    InvalidRedactionSignal,
    #[error("the batch has more changes than allowed")]
    TooManyChanges,
    #[error("a change in the batch is not valid")]
    InvalidChange(#[source] RecordError),
    #[error("this workspace requires batches redacted on the device")]
    RedactionRequired,
    #[error("the masking policy changed; fetch it again and redact the batch anew")]
    PolicyChanged,
    #[error("this idempotency key was already used for a different batch")]
    IdempotencyKeyReused,
    #[error("agent not found")]
    NotFound,
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("the masking rules could not be applied")]
    Privacy(#[from] PrivacyError),
    #[error("storage error")]
    Store(#[from] StoreError),
    #[error("a batch or its result could not be written or read as JSON")]
    Json(#[from] serde_json::Error),
}

impl From<rusqlite::Error> for AgentError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
