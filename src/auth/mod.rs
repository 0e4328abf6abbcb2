//! People: accounts, passwords, sessions and one-time email links.

mod error;
mod identity_repo;
mod mfa;
mod model;
pub mod password_policy;
mod providers;
mod repo;
mod service;
mod throttle;
pub mod totp;

pub use error::AuthError;
pub use identity_repo::LinkedIdentity;
pub use mfa::Enrolment;
pub use model::{Email, LinkPurpose, Session, SessionStage, User, UserId};
pub use providers::ProviderIdentity;
/// What the scheduled jobs delete: ended sessions, spent links, accounts past their hold.
pub mod retention {
    pub use super::repo::{
        account_closure_due, closed_accounts_due, delete_account, delete_ended_sessions,
        delete_spent_links,
    };
}

/// What `strongbox restore --drill-account` needs to add the drill's account to a restored
/// copy (see `backup::drill`).
pub mod provisioning {
    pub use super::repo::insert_user;
}

pub use service::{
    AuthService, AuthSettings, Authenticated, Device, NewSession, SECOND_FACTOR_WINDOW_SECS,
    SESSION_PREFIX,
};
