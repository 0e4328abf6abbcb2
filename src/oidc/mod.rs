//! Sign-in through OpenID Connect providers: Strongbox as the relying party.

pub mod flow;
pub mod id_token;
pub mod provider;
mod repo;
mod service;

pub use repo::delete_expired_logins;
pub use service::{Callback, Completed, OidcError, OidcService, ProviderChoice, Purpose};
