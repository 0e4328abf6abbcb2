//! Grants as the dashboard shows them: each member sees their own, those who manage members
//! see everyone's; revoking one ends its tokens at once.

use super::{OAuthService, Result};
use crate::audit::{Action as Audited, Actor};
use crate::auth::UserId;
use crate::ids::WorkspaceId;
use crate::oauth::error::OAuthError;
use crate::oauth::model::Grant;
use crate::oauth::repo;
use crate::workspace::{Action, authorize};

/// A grant as listed, with its person's email.
pub struct GrantView {
    pub grant: Grant,
    pub email: String,
}

/// The AI clients page: the grants the person may see and, for those who manage members,
/// how many registered clients were never granted anything (install-wide; registering
/// needs no account, so the figure says nothing about any workspace).
pub struct GrantsOverview {
    pub grants: Vec<GrantView>,
    pub unused_clients: Option<i64>,
}

impl OAuthService {
    pub async fn grants(&self, user: UserId, workspace: WorkspaceId) -> Result<GrantsOverview> {
        self.run(move |inner| {
            inner.read(|c| {
                let ws = authorize(c, workspace, user, Action::View)
                    .map_err(|_| OAuthError::NotFound)?;
                let everyone = ws.role.may(Action::ManageMembers);
                let grants = repo::grants_of(c, workspace)?
                    .into_iter()
                    .filter(|(g, _)| everyone || g.user == user)
                    .map(|(grant, email)| GrantView { grant, email })
                    .collect();
                let unused_clients = match everyone {
                    true => Some(repo::count_unused_clients(c)?),
                    false => None,
                };
                Ok(GrantsOverview {
                    grants,
                    unused_clients,
                })
            })
        })
        .await
    }

    pub async fn revoke_grant(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        id: String,
    ) -> Result<()> {
        self.run(move |inner| {
            let now = inner.clock.now();
            let grant = inner.write(|tx| {
                let ws = authorize(tx, workspace, user, Action::View).map_err(|_| OAuthError::NotFound)?;
                let grant = repo::grant(tx, &id)?
                    .filter(|g| g.workspace == workspace && g.revoked_at.is_none())
                    .ok_or(OAuthError::NotFound)?;
                if grant.user != user && !ws.role.may(Action::ManageMembers) {
                    return Err(OAuthError::NotFound);
                }
                repo::revoke_grant(tx, &id, now)?;
                tracing::info!(workspace = %workspace, client = %grant.client, "oauth grant revoked");
                Ok(grant)
            })?;
            inner.audit_grant(Actor::user(user), Audited::OAuthGrantRevoked, &grant);
            Ok(())
        })
        .await
    }
}
