use crate::audit::{Broken, Chain};
use crate::crypto::KeyError;
use crate::ids::WorkspaceId;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A storage error while moving one workspace's database, which it names.
    #[error("workspace {workspace}")]
    Workspace {
        workspace: WorkspaceId,
        #[source]
        source: StoreError,
    },
    #[error("the new master key is the one in use; a rotation needs a different key")]
    SameMasterKey,
    #[error(
        "the audit log of {chain} is broken at {broken}; the rotation stopped before changing that database: investigate with `strongbox audit verify` (see the runbook) first"
    )]
    BrokenChain { chain: Chain, broken: Broken },
    #[error(
        "an unfinished rotation moves this install to the master key with fingerprint {fingerprint}: finish it with `strongbox keys rotate --new-master-key FILE` naming that key"
    )]
    NeedsNewMasterKey { fingerprint: String },
    #[error(
        "an unfinished rotation keeps the master key: finish it with `strongbox keys rotate` first, then rotate to a new master key"
    )]
    KeepsMasterKey,
}

impl KeysError {
    /// Names the workspace a storage error happened in; other errors name what they are
    /// about already.
    pub(super) fn in_workspace(self, workspace: WorkspaceId) -> Self {
        match self {
            Self::Store(source) => Self::Workspace { workspace, source },
            other => other,
        }
    }
}
