//! Strongbox: a self-hosted workspace server whose every workspace is its own
//! SQLCipher-encrypted database, and the reference desktop agent that syncs into it.
//!
//! The `server` feature builds the server; the `agent` feature builds the agent client.
//! What both share (the privacy engine and the agent API's wire types) builds with either.

pub mod agent;
pub mod privacy;

#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod audit;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod backup;
#[cfg(feature = "server")]
pub mod clock;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod crypto;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod ids;
#[cfg(feature = "server")]
pub mod jobs;
#[cfg(feature = "server")]
pub mod keys;
#[cfg(feature = "server")]
pub mod mail;
#[cfg(feature = "server")]
pub mod mcp;
#[cfg(feature = "server")]
pub mod oauth;
#[cfg(feature = "server")]
pub mod oidc;
#[cfg(feature = "server")]
pub mod private_file;
#[cfg(feature = "server")]
pub mod request_meta;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "server")]
pub mod text;
#[cfg(feature = "server")]
pub mod tokens;
#[cfg(feature = "server")]
pub mod workspace;
