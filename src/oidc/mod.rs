//! Sign-in through OpenID Connect providers: Strongbox as the relying party.

pub mod flow;
pub mod id_token;
pub mod provider;
pub mod repo;
