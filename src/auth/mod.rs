//! People: accounts, passwords, sessions and one-time email links.

mod error;
mod mfa;
mod model;
pub mod password_policy;
mod repo;
mod service;
mod throttle;
pub mod totp;

pub use error::AuthError;
pub use mfa::Enrolment;
pub use model::{Email, LinkPurpose, Session, SessionStage, User, UserId};
pub use service::{
    AuthService, AuthSettings, Authenticated, Device, NewSession, SECOND_FACTOR_WINDOW_SECS,
    SESSION_PREFIX,
};
