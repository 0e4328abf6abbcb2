//! People: accounts, passwords, sessions and one-time email links.

mod error;
mod model;
pub mod password_policy;
mod repo;
mod service;

pub use error::AuthError;
pub use model::{Email, LinkPurpose, Session, SessionStage, User, UserId};
pub use service::{AuthService, AuthSettings, Authenticated, Device, NewSession, SESSION_PREFIX};
