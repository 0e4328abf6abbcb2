use crate::auth::AuthError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Also what a non-member gets: no existence oracle.
    #[error("workspace not found")]
    NotFound,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("the name must be 1 to 100 characters")]
    InvalidName,
    #[error("the email address is not valid")]
    InvalidEmail,
    #[error("that role cannot be given here")]
    InvalidRole,
    #[error("a workspace must keep an owner")]
    LastOwner,
    #[error("this workspace was exported 3 times in the last hour; try again later")]
    ExportLimit { retry_after_secs: u64 },
    #[error("the name typed does not match the workspace")]
    ConfirmationMismatch,
    #[error("you are the only owner of a workspace; close it or add an owner first")]
    SoleOwner,
    #[error("that person is already a member")]
    AlreadyMember,
    #[error("this invitation is invalid, used or expired")]
    InviteInvalid,
    #[error("this invitation was sent to another email address")]
    InviteForSomeoneElse,
    #[error(
        "a masking rule needs a term of 1 to 200 characters, and an alias of 1 to 100 for an alias rule"
    )]
    InvalidRule,
    #[error("the collection has no field of that name")]
    UnknownField,
    #[error("there is no collection of that name")]
    UnknownCollection,
    #[error("the query took too long and was stopped")]
    TooSlow,
    /// Several records show the same id (two addresses both shown `[EMAIL_1]`).
    #[error("several records have that id as shown")]
    AmbiguousId,
    /// The shown index was still not current after the writer rebuilt it; not expected, as
    /// every change of rules rebuilds it before it commits.
    #[error("the records as shown are being rebuilt")]
    ShownIndexBehind,
    #[error("the record is not valid")]
    InvalidRecord(#[from] crate::workspace::records::RecordError),
    #[error("this workspace has the most masking rules allowed")]
    TooManyRules,
    #[error("the masking rules could not be applied")]
    Privacy(#[from] crate::privacy::PrivacyError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the export could not be built")]
    Export(#[from] serde_json::Error),
    #[error("more than 200000 audit rows match; export a shorter time range")]
    ExportTooLarge,
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for WorkspaceError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
