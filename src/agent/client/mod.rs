//! The reference desktop agent: pairs once, then syncs a folder of JSON and CSV files into
//! its workspace, masking every record on the device with the workspace's policy first.
//! Built with only the `agent` feature, so it carries no server dependencies and builds
//! for Windows.

pub mod api;
pub mod files;
pub mod home;
pub mod state;
pub mod sync;

pub use api::{ApiClient, ClientError};
pub use home::{AgentHome, Pairing};
pub use sync::{SyncReport, sync_folder};

/// Reported to the server on pairing and in heartbeats.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
