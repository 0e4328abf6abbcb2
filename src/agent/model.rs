//! Agents, pairing codes and the small values they carry, in product words.

use std::str::FromStr;

use crate::crypto::token::SecretHash;
use crate::ids::WorkspaceId;

pub use crate::ids::AgentId;

pub const MAX_DEVICE_NAME_CHARS: usize = 100;

/// What a person calls the device an agent runs on: trimmed, 1–100 characters, no control
/// characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceName(String);

impl DeviceName {
    pub fn parse(raw: &str) -> Option<Self> {
        crate::text::label(raw, MAX_DEVICE_NAME_CHARS).map(|name| Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The version an agent reports: up to 64 characters of letters, digits and `.+-_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentVersion(String);

impl AgentVersion {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=crate::agent::wire::MAX_VERSION_CHARS).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'));
        ok.then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an agent stopped being trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeReason {
    /// Someone revoked it in the dashboard.
    Dashboard,
    /// A refresh secret was presented a second time: it was copied.
    RefreshReuse,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dashboard => "dashboard",
            Self::RefreshReuse => "refresh_reuse",
        }
    }
}

impl FromStr for RevokeReason {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "dashboard" => Ok(Self::Dashboard),
            "refresh_reuse" => Ok(Self::RefreshReuse),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub workspace: WorkspaceId,
    pub name: String,
    pub paired_at: i64,
    pub last_seen_at: Option<i64>,
    pub version: Option<String>,
    pub revoked: Option<(i64, RevokeReason)>,
    /// The membership its pairing code was issued in has ended (its person was removed,
    /// left, or their account was purged): the agent is refused from then on, as if
    /// revoked, whatever membership that person has later.
    pub membership_ended: bool,
}

impl Agent {
    /// Whether the agent may still use the API.
    pub fn is_active(&self) -> bool {
        self.revoked.is_none() && !self.membership_ended
    }
}

/// An agent as the dashboard lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    pub agent: Agent,
    /// Changes accepted from it, over every batch.
    pub records_synced: i64,
    /// Values masked in what it sent: on the device, plus the server's backstop.
    pub values_masked: i64,
}

/// A pairing code not used yet, named by its hash (the code itself is never kept).
#[derive(Clone, Debug)]
pub struct PendingPairing {
    pub hash: SecretHash,
    pub device_name: String,
    pub created_at: i64,
    pub expires_at: i64,
}
