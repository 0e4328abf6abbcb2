use super::password_policy::WeakPassword;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email and wrong password look exactly alike.
    #[error("the email or password is incorrect")]
    InvalidCredentials,
    #[error("verify your email address first; a new link is on its way")]
    EmailNotVerified,
    #[error("the email address is not valid")]
    InvalidEmail,
    #[error(transparent)]
    WeakPassword(#[from] WeakPassword),
    #[error("this link is invalid, used or expired")]
    LinkInvalid,
    #[error("that code is not valid")]
    InvalidCode,
    #[error("two-factor authentication is already on")]
    MfaAlreadyEnabled,
    #[error("two-factor authentication is not on")]
    MfaNotEnabled,
    #[error("an account with this email address exists; sign in to accept")]
    AccountExists,
    #[error("sign-up is by invitation only")]
    SignupClosed,
    #[error("the provider has not verified an email address for that account")]
    ProviderEmailUnverified,
    /// An unlinked provider identity whose address has an account: nothing is linked
    /// silently; the owner signs in and links it.
    #[error(
        "an account with this email address exists: sign in to it, then link this provider under Account"
    )]
    ProviderAccountExists,
    #[error("that account at the provider is linked to another Strongbox account")]
    IdentityLinkedElsewhere,
    #[error("another account at this provider is linked already; unlink it first")]
    ProviderAlreadyLinked,
    #[error(
        "this is the account's only way to sign in: set a password or link another provider first"
    )]
    LastSignInMethod,
    #[error("the session has ended; sign in again")]
    SessionEnded,
    #[error("too many attempts; try again later")]
    Throttled { retry_after_secs: u64 },
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
