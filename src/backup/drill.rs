//! The restore drill's account. `strongbox restore --drill-account FILE` adds it to the copy
//! it has just restored, and nothing else ever makes one: an admin of the restored
//! workspace that holds the most records, with a random password, so the drill can sign in
//! and work through the dashboard and the APIs as a person would.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::BackupError;
use crate::audit::{Action, Actor, AuditLog, Chain, Entry};
use crate::auth::{Email, User, UserId, provisioning::insert_user};
use crate::crypto::{password::hash_password, random_bytes, token};
use crate::ids::WorkspaceId;
use crate::store::{Store, StoreError};
use crate::workspace::{Role, provisioning::add_member, records};

/// The account, and what the restored workspace it belongs to holds.
pub struct DrillAccount {
    pub email: String,
    pub password: Zeroizing<String>,
    pub workspace: WorkspaceId,
    /// Live records per collection, as restored: what the drill expects the API to report.
    pub collections: BTreeMap<String, i64>,
}

/// Adds the account, audited as made by the system for a restore drill.
pub(super) fn add_account(
    store: &Store,
    audit: &AuditLog,
    now: i64,
) -> Result<DrillAccount, BackupError> {
    let (workspace, collections) = busiest_workspace(store)?;
    let address = format!(
        "drill-{}@restore-drill.invalid",
        hex::encode(*random_bytes::<4>())
    );
    let password = token::issue("drill-").text;
    let user = User {
        id: UserId::new_random(),
        email: Email::parse(&address).expect("the drill address is well formed"),
        password_hash: hash_password(&password),
        has_password: true,
        email_verified: true,
        mfa_enabled: false,
        closes_at: None,
    };
    store.control().write(|tx| {
        insert_user(tx, &user, now)?;
        add_member(tx, workspace, user.id, Role::Admin, now)?;
        let created = Entry::new(Actor::system(), Action::AccountCreated)
            .target("user", user.id)
            .detail("method", "restore_drill");
        audit.append(tx, Chain::System, created)?;
        Ok::<_, StoreError>(())
    })?;
    let joined = Entry::new(Actor::user(user.id), Action::MemberJoined).detail("role", "admin");
    audit.record(Chain::Workspace(workspace), joined)?;
    Ok(DrillAccount {
        email: address,
        password,
        workspace,
        collections,
    })
}

/// The workspace with the most live records, with its collections' counts.
fn busiest_workspace(store: &Store) -> Result<(WorkspaceId, BTreeMap<String, i64>), BackupError> {
    let mut busiest: Option<(WorkspaceId, BTreeMap<String, i64>, i64)> = None;
    for key in store.workspace_keys()? {
        let counts: BTreeMap<String, i64> = store
            .workspace(key.workspace)?
            .read(|conn| Ok::<_, StoreError>(records::collections(conn)?.into_iter().collect()))?;
        let total = counts.values().sum();
        if busiest.as_ref().is_none_or(|(_, _, most)| total > *most) {
            busiest = Some((key.workspace, counts, total));
        }
    }
    busiest
        .map(|(id, counts, _)| (id, counts))
        .ok_or(BackupError::NoWorkspace)
}
