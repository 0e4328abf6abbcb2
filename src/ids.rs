//! Typed identifiers, parsed at the edge so one kind cannot be passed for another.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UUID newtype: random when made, hyphenated lowercase when shown, parsed strictly.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Hyphenated lowercase: the only form used on disk and in key info strings.
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a workspace; also names its directory under `<data_dir>/workspaces/`.
    WorkspaceId
);

uuid_id!(
    /// Identifies a person's account.
    UserId
);

uuid_id!(
    /// Identifies a paired desktop agent.
    AgentId
);

/// Identifies one membership: a person's time in a workspace, from joining until they are
/// removed, leave or their account is purged. Personal tokens, OAuth grants, pairing codes
/// and agents name the membership they were made in and work only while it lasts. The
/// control database assigns it (`AUTOINCREMENT`), so a retired id is never given out
/// again: a person invited back gets a new membership, even within the same second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MembershipId(i64);

impl MembershipId {
    /// The id as the control database holds it; only the store's column conversions use
    /// these two, as no membership id ever crosses the HTTP edge.
    pub(crate) const fn from_stored(id: i64) -> Self {
        Self(id)
    }

    pub(crate) const fn stored(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_and_rejects_path_tricks() {
        let id = WorkspaceId::new_random();
        assert_eq!(id.to_string().parse::<WorkspaceId>().unwrap(), id);
        assert!("../control".parse::<WorkspaceId>().is_err());
        assert!("".parse::<WorkspaceId>().is_err());
    }
}
