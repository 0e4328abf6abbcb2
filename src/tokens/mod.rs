//! Personal tokens: how a person's scripts reach one workspace's REST API. A token acts for
//! the person who made it and never beyond their current role there.

mod error;
mod model;
mod repo;
mod service;

/// What the scheduled jobs delete: revoked tokens.
pub mod retention {
    pub use super::repo::delete_revoked;
}

pub use error::TokenError;
pub use model::{Access, PersonalToken, TOKEN_PREFIX, TokenId};
pub use service::{TokenGrant, TokenService};
