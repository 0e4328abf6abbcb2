//! Personal-token flows: made and revoked in the dashboard, checked on every API request.
//! A token is worth no more than its person's current role in its workspace.

use std::sync::Arc;

use rusqlite::{Connection, Transaction};
use zeroize::Zeroizing;

use super::error::TokenError;
use super::model::{Access, MAX_NAME_CHARS, PersonalToken, TOKEN_PREFIX, TokenId, parse_token};
use super::repo;
use crate::audit::{Action as Audited, Actor, AuditLog, Chain, Entry};
use crate::auth::UserId;
use crate::clock::SharedClock;
use crate::crypto::token::{self, SecretHash};
use crate::ids::WorkspaceId;
use crate::store::{BlockingPool, Store};
use crate::workspace::{Action, WorkspaceError, authorize};

/// What a verified token may do right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub token: TokenId,
    pub workspace: WorkspaceId,
    pub user: UserId,
    /// Write only if the token allows it and the person's role still does.
    pub can_write: bool,
}

#[derive(Clone)]
pub struct TokenService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    pool: BlockingPool,
    clock: SharedClock,
    audit: AuditLog,
}

type Result<T> = std::result::Result<T, TokenError>;

impl TokenService {
    pub fn new(store: Arc<Store>, pool: BlockingPool, clock: SharedClock, audit: AuditLog) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                pool,
                clock,
                audit,
            }),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        self.inner.pool.run(move || job(&inner)).await
    }

    /// Makes a token; its text is returned once and only its hash is kept. A read-write
    /// token needs a role that may write records.
    pub async fn create(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        name: String,
        access: String,
    ) -> Result<(Zeroizing<String>, PersonalToken)> {
        let name = crate::text::label(&name, MAX_NAME_CHARS)
            .ok_or(TokenError::InvalidName)?
            .to_string();
        let access: Access = access.parse().map_err(|_| TokenError::InvalidAccess)?;
        self.run(move |inner| {
            let id = TokenId::new_random();
            let issued = token::issue(&format!("{TOKEN_PREFIX}{id}_"));
            let token = inner.write(|tx| {
                let needed = match access {
                    Access::Read => Action::View,
                    Access::ReadWrite => Action::WriteRecords,
                };
                let ws = authorize(tx, workspace, user, needed)?;
                let token = PersonalToken {
                    id,
                    workspace,
                    user,
                    membership: Some(ws.membership),
                    user_email: String::new(),
                    name,
                    access,
                    created_at: inner.clock.now(),
                    last_used_at: None,
                    revoked_at: None,
                };
                repo::insert(tx, &token, &issued.hash)?;
                tracing::info!(workspace = %ws.id, token = %token.id, "personal token created");
                Ok(token)
            })?;
            let entry = Entry::new(Actor::user(user), Audited::TokenCreated)
                .target("token", &token.id)
                .detail("access", token.access.as_str());
            inner.audit.record_after(Chain::Workspace(workspace), entry);
            Ok((issued.text, token))
        })
        .await
    }

    /// The tokens someone may see: their own, or everyone's for those who manage members.
    pub async fn list(&self, user: UserId, workspace: WorkspaceId) -> Result<Vec<PersonalToken>> {
        self.run(move |inner| {
            inner.read(|c| {
                let ws = authorize(c, workspace, user, Action::View)?;
                let all = repo::of_workspace(c, workspace)?;
                Ok(match ws.role.may(Action::ManageMembers) {
                    true => all,
                    false => all.into_iter().filter(|t| t.user == user).collect(),
                })
            })
        })
        .await
    }

    /// Revokes one of the person's own tokens, or anyone's for those who manage members.
    pub async fn revoke(&self, user: UserId, workspace: WorkspaceId, id: TokenId) -> Result<()> {
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.write(|tx| {
                let ws = authorize(tx, workspace, user, Action::View)?;
                let (token, _) = repo::by_id(tx, &id)?
                    .filter(|(t, _)| t.workspace == workspace && t.revoked_at.is_none())
                    .ok_or(TokenError::NotFound)?;
                if token.user != user && !ws.role.may(Action::ManageMembers) {
                    return Err(TokenError::NotFound);
                }
                repo::revoke(tx, &id, now)?;
                tracing::info!(workspace = %workspace, token = %id, "personal token revoked");
                Ok(())
            })?;
            let entry = Entry::new(Actor::user(user), Audited::TokenRevoked).target("token", &id);
            inner.audit.record_after(Chain::Workspace(workspace), entry);
            Ok(())
        })
        .await
    }

    /// Checks a presented token: its shape, its hash (in constant time), that it is not
    /// revoked, and that its person is still a member; notes the use.
    pub async fn authenticate(&self, text: String) -> Result<TokenGrant> {
        let id = parse_token(&text).ok_or(TokenError::Unauthorized)?;
        let presented = SecretHash::of(&text);
        self.run(move |inner| {
            let (token, stored) = inner
                .read(|c| Ok(repo::by_id(c, &id)?))?
                .ok_or(TokenError::Unauthorized)?;
            if !stored.matches(&presented) || token.revoked_at.is_some() {
                return Err(TokenError::Unauthorized);
            }
            // Its person must still be a member, in the membership the token was made in:
            // being removed or leaving ends that membership, and joining again begins
            // another, which does not revive the token.
            let ws = inner
                .read(|c| Ok(authorize(c, token.workspace, token.user, Action::View)?))
                .map_err(|e| match e {
                    TokenError::Workspace(WorkspaceError::NotFound | WorkspaceError::Forbidden) => {
                        TokenError::Unauthorized
                    }
                    other => other,
                })?;
            if token.membership != Some(ws.membership) {
                return Err(TokenError::Unauthorized);
            }
            let now = inner.clock.now();
            // Most requests skip the write: the last use is noted at most once a minute.
            if token.last_used_at.is_none_or(|at| at < now - 60) {
                inner.write(|tx| Ok(repo::touch(tx, &id, now)?))?;
            }
            Ok(TokenGrant {
                token: id,
                workspace: token.workspace,
                user: token.user,
                can_write: token.access == Access::ReadWrite && ws.role.may(Action::WriteRecords),
            })
        })
        .await
    }
}

impl Inner {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.store.control().read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.store.control().write(f)
    }
}
