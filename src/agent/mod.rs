//! Paired desktop agents. The wire format is shared; the server side (pairing, agent
//! tokens, the sync pipeline) builds with the `server` feature and the reference agent's
//! client with the `agent` feature.

pub mod wire;

#[cfg(feature = "agent")]
pub mod client;

#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
mod model;
#[cfg(feature = "server")]
mod repo;
#[cfg(feature = "server")]
mod service;
#[cfg(feature = "server")]
mod sync;

/// What the scheduled jobs delete: spent pairing codes and revoked agents' secrets.
#[cfg(feature = "server")]
pub mod retention {
    pub use super::repo::{delete_revoked_agents_secrets, delete_spent_pairing_codes};
}

#[cfg(feature = "server")]
pub use error::AgentError;
#[cfg(feature = "server")]
pub use model::{AgentId, AgentView, DeviceName, PendingPairing, RevokeReason};
#[cfg(feature = "server")]
pub use service::{AgentService, AgentSettings, AuthenticatedAgent};
