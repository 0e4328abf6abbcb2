//! Strongbox: a self-hosted workspace server whose every workspace is its own
//! SQLCipher-encrypted database.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod http;
pub mod ids;
pub mod mail;
pub mod privacy;
pub mod store;
pub mod telemetry;
pub mod workspace;
