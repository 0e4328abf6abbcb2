//! Workspace flows. Every one starts by resolving the caller's membership of the workspace
//! itself: a non-member gets `NotFound`, never a hint that the workspace exists.

use std::sync::Arc;

use rusqlite::{Connection, Transaction};
use url::Url;
use zeroize::Zeroizing;

mod activity;
mod as_shown;
mod data;
mod personal_data;

pub use activity::{AUDIT_PAGE_SIZE, AuditPage, ExportFormat, USAGE_DAYS, UsageReport};
pub use as_shown::{AggregateSpec, QuerySpec, Shown};
pub use data::{CollectionPage, CollectionSummary, MAX_PAGE, Paged, Preview};

use super::error::WorkspaceError;
use super::model::{Action, Invitation, Member, Role, Workspace, WorkspaceName};
use super::records::RecordRules;
use super::usage_buffer::UsageBuffer;
use super::{export, records, repo};
use crate::audit::{Action as Audited, Actor, AuditLog, Chain, Entry};
use crate::auth::{AuthService, Device, Email, NewSession, User, UserId};
use crate::clock::SharedClock;
use crate::crypto::token::{self, SecretHash};
use crate::ids::WorkspaceId;
use crate::mail::{Email as Message, Mailer};
use crate::store::{BlockingPool, Store};

pub const INVITE_PREFIX: &str = "sbx_invite_";
pub const INVITE_TTL_SECS: i64 = 7 * 24 * 60 * 60;
pub const MAX_EXPORTS_PER_HOUR: i64 = 3;
/// A closed workspace or account is kept this long, so its owner can change their mind.
pub const CLOSURE_HOLD_SECS: i64 = 30 * 24 * 60 * 60;

#[derive(Clone)]
pub struct WorkspaceService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    pool: BlockingPool,
    clock: SharedClock,
    mailer: Arc<Mailer>,
    public_url: Url,
    records: RecordRules,
    audit: AuditLog,
    usage: UsageBuffer,
}

type Result<T> = std::result::Result<T, WorkspaceError>;

impl WorkspaceService {
    pub fn new(
        store: Arc<Store>,
        pool: BlockingPool,
        clock: SharedClock,
        mailer: Arc<Mailer>,
        public_url: Url,
        records: RecordRules,
        audit: AuditLog,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                clock,
                mailer,
                public_url,
                usage: UsageBuffer::new(Arc::clone(&store)),
                store,
                records,
                audit,
            }),
        }
    }

    /// What records written here must satisfy.
    pub fn record_rules(&self) -> &RecordRules {
        &self.inner.records
    }

    /// Where people reach the dashboard, for links and instructions on pages.
    pub fn public_url(&self) -> &Url {
        &self.inner.public_url
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        self.inner.pool.run(move || job(&inner)).await
    }

    pub async fn list(&self, user: UserId) -> Result<Vec<Workspace>> {
        self.run(move |inner| inner.read(|c| repo::workspaces_of(c, user)))
            .await
    }

    /// Creates a workspace with its encrypted database; the creator is its owner.
    pub async fn create(&self, user: UserId, name: String) -> Result<WorkspaceId> {
        let name = WorkspaceName::parse(&name).ok_or(WorkspaceError::InvalidName)?;
        self.run(move |inner| {
            let id = WorkspaceId::new_random();
            let now = inner.clock.now();
            let register = |tx: &Transaction<'_>| {
                repo::set_name(tx, id, name.as_str())?;
                repo::add_member(tx, id, user, Role::Owner, now)?;
                Ok::<_, WorkspaceError>(())
            };
            // The log's first row is written with the database: a workspace's log is never
            // empty, so `audit verify` can call an empty one wiped.
            let first_row = |tx: &Transaction<'_>| {
                let entry = Entry::new(Actor::user(user), Audited::WorkspaceCreated);
                Ok(inner.audit.append(tx, Chain::Workspace(id), entry)?)
            };
            inner.store.create_workspace_with(id, register, first_row)?;
            tracing::info!(workspace = %id, "workspace created");
            Ok(id)
        })
        .await
    }

    /// The workspace as the caller sees it, if they are a member.
    pub async fn get(&self, user: UserId, id: WorkspaceId) -> Result<Workspace> {
        self.run(move |inner| {
            inner
                .read(|c| repo::workspace_for(c, id, user))?
                .ok_or(WorkspaceError::NotFound)
        })
        .await
    }

    pub async fn rename(&self, user: UserId, id: WorkspaceId, name: String) -> Result<()> {
        let name = WorkspaceName::parse(&name).ok_or(WorkspaceError::InvalidName);
        self.run(move |inner| {
            inner.write(|tx| {
                authorize(tx, id, user, Action::Rename)?;
                Ok(repo::set_name(tx, id, name?.as_str())?)
            })?;
            inner.audit_after(id, Entry::new(Actor::user(user), Audited::WorkspaceRenamed));
            Ok(())
        })
        .await
    }

    pub async fn members(&self, user: UserId, id: WorkspaceId) -> Result<Vec<Member>> {
        self.run(move |inner| {
            inner.read_checked(|c| {
                authorize(c, id, user, Action::View)?;
                Ok(repo::members(c, id)?)
            })
        })
        .await
    }

    /// Emails a single-use invitation, valid for seven days, for one address and role.
    pub async fn invite(
        &self,
        user: UserId,
        id: WorkspaceId,
        email: String,
        role: String,
    ) -> Result<()> {
        let email = Email::parse(&email).ok_or(WorkspaceError::InvalidEmail);
        let role = role
            .parse::<Role>()
            .ok()
            .filter(|r| *r < Role::Owner)
            .ok_or(WorkspaceError::InvalidRole);
        self.run(move |inner| {
            let now = inner.clock.now();
            let issued = token::issue(INVITE_PREFIX);
            let name = inner.write(|tx| {
                let workspace = authorize(tx, id, user, Action::ManageMembers)?;
                let (email, role) = (email?, role?);
                if !workspace.role.may_change(Role::Viewer, role) {
                    return Err(WorkspaceError::Forbidden);
                }
                let invite = repo::NewInvite {
                    hash: &issued.hash,
                    workspace: id,
                    email: &email,
                    role,
                    invited_by: user,
                    now,
                    expires_at: now + INVITE_TTL_SECS,
                };
                repo::insert_invite(tx, &invite)?;
                Ok((workspace.name, email, role))
            })?;
            let entry = Entry::new(Actor::user(user), Audited::MemberInvited)
                .detail("email", name.1.as_str())
                .detail("role", name.2.as_str());
            inner.audit_after(id, entry);
            inner.send_invite(&issued.text, &name.0, &name.1, name.2);
            Ok(())
        })
        .await
    }

    pub async fn change_role(
        &self,
        user: UserId,
        id: WorkspaceId,
        target: UserId,
        role: String,
    ) -> Result<()> {
        let role = role
            .parse::<Role>()
            .map_err(|_| WorkspaceError::InvalidRole);
        self.run(move |inner| {
            let roles = inner.write(|tx| {
                let acting = authorize(tx, id, user, Action::ManageMembers)?;
                let role = role?;
                let current = repo::role_of(tx, id, target)?.ok_or(WorkspaceError::NotFound)?;
                if !acting.role.may_change(current, role) {
                    return Err(WorkspaceError::Forbidden);
                }
                repo::set_role(tx, id, target, role)?;
                keep_an_owner(tx, id)?;
                Ok((current, role))
            })?;
            let (from, to) = roles;
            let entry = Entry::new(Actor::user(user), Audited::MemberRoleChanged)
                .target("user", target)
                .detail("from", from.as_str())
                .detail("to", to.as_str());
            inner.audit_after(id, entry);
            Ok(())
        })
        .await
    }

    pub async fn remove_member(&self, user: UserId, id: WorkspaceId, target: UserId) -> Result<()> {
        self.run(move |inner| {
            let role = inner.write(|tx| {
                let acting = authorize(tx, id, user, Action::ManageMembers)?;
                let current = repo::role_of(tx, id, target)?.ok_or(WorkspaceError::NotFound)?;
                if !acting.role.may_change(current, Role::Viewer) {
                    return Err(WorkspaceError::Forbidden);
                }
                repo::remove_member(tx, id, target)?;
                keep_an_owner(tx, id)?;
                Ok(current)
            })?;
            let entry = Entry::new(Actor::user(user), Audited::MemberRemoved)
                .target("user", target)
                .detail("role", role.as_str());
            inner.audit_after(id, entry);
            Ok(())
        })
        .await
    }

    /// Leaves a workspace; the last owner cannot.
    pub async fn leave(&self, user: UserId, id: WorkspaceId) -> Result<()> {
        self.run(move |inner| {
            inner.write(|tx| {
                authorize(tx, id, user, Action::View)?;
                repo::remove_member(tx, id, user)?;
                keep_an_owner(tx, id)
            })?;
            inner.audit_after(id, Entry::new(Actor::user(user), Audited::MemberLeft));
            Ok(())
        })
        .await
    }

    /// The invitation a link stands for, if it is still usable.
    pub async fn invitation(&self, link: String) -> Result<Option<Invitation>> {
        if !token::well_formed(INVITE_PREFIX, &link) {
            return Ok(None);
        }
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.read(|c| repo::invitation(c, &SecretHash::of(&link), now))
        })
        .await
    }

    /// Joins the invited workspace; the signed-in account must own the invited address.
    pub async fn accept_invite(&self, user: User, link: String) -> Result<WorkspaceId> {
        if !token::well_formed(INVITE_PREFIX, &link) {
            return Err(WorkspaceError::InviteInvalid);
        }
        self.run(move |inner| {
            let now = inner.clock.now();
            let hash = SecretHash::of(&link);
            let joined = inner.write(|tx| claim_invite(tx, &hash, &user, now))?;
            inner.audit_joined(user.id, joined);
            Ok(joined.0)
        })
        .await
    }

    /// Sign-up by invitation: creates the invited address's account, joins the workspace
    /// and signs in, all in one transaction.
    pub async fn sign_up_with_invite(
        &self,
        auth: &AuthService,
        link: String,
        password: Zeroizing<String>,
        device: Device,
    ) -> Result<(NewSession, WorkspaceId)> {
        let invite = self
            .invitation(link.clone())
            .await?
            .ok_or(WorkspaceError::InviteInvalid)?;
        let now = self.inner.clock.now();
        let hash = SecretHash::of(&link);
        let (session, joined) = auth
            .create_invited_account(invite.email, password, device, move |tx, user| {
                claim_invite(tx, &hash, user, now)
            })
            .await?;
        let user = session.user.id;
        self.run(move |inner| {
            inner.audit_joined(user, joined);
            Ok(())
        })
        .await?;
        Ok((session, joined.0))
    }
}

impl WorkspaceService {
    /// Builds the export archive as JSON in memory: at most three per workspace per hour,
    /// each recorded with who took it. The limit is checked first, in the transaction that
    /// records the export, so a refused export reads nothing; if building it then fails, its
    /// record is taken back and the hour's allowance is not used up.
    pub async fn export(&self, user: UserId, id: WorkspaceId) -> Result<(String, Vec<u8>)> {
        self.run(move |inner| {
            let now = inner.clock.now();
            let (workspace, recorded) = inner.write(|tx| {
                let workspace = authorize(tx, id, user, Action::Export)?;
                let (count, oldest) = repo::exports_since(tx, id, now - 3600)?;
                if count >= MAX_EXPORTS_PER_HOUR {
                    let wait = oldest.map_or(3600, |t| t + 3600 - now).max(1);
                    return Err(WorkspaceError::ExportLimit {
                        retry_after_secs: wait as u64,
                    });
                }
                Ok((workspace, repo::record_export(tx, id, user, now)?))
            })?;
            let built = inner.build_export(&workspace, now);
            let (json, record_count) = match built {
                Ok(built) => built,
                Err(e) => {
                    inner.write(|tx| Ok(repo::forget_export(tx, recorded)?))?;
                    return Err(e);
                }
            };
            let entry = Entry::new(Actor::user(user), Audited::DataExported)
                .detail("records", record_count)
                .detail("bytes", json.len());
            inner.audit_after(id, entry);
            tracing::info!(workspace = %id, bytes = json.len(), "workspace exported");
            Ok((workspace.name, json))
        })
        .await
    }

    /// Invitations still waiting to be accepted.
    pub async fn pending_invites(
        &self,
        user: UserId,
        id: WorkspaceId,
    ) -> Result<Vec<repo::PendingInvite>> {
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.read_checked(|c| {
                authorize(c, id, user, Action::ManageMembers)?;
                Ok(repo::pending_invites(c, id, now)?)
            })
        })
        .await
    }

    /// Withdraws an invitation; its link stops working.
    pub async fn revoke_invite(
        &self,
        user: UserId,
        id: WorkspaceId,
        invite: SecretHash,
    ) -> Result<()> {
        self.run(move |inner| {
            inner.write(|tx| {
                authorize(tx, id, user, Action::ManageMembers)?;
                if !repo::revoke_invite(tx, id, &invite)? {
                    return Err(WorkspaceError::NotFound);
                }
                Ok(())
            })?;
            inner.audit_after(
                id,
                Entry::new(Actor::user(user), Audited::InvitationRevoked),
            );
            Ok(())
        })
        .await
    }

    /// Schedules the workspace's deletion in 30 days; the owner types its name to confirm.
    pub async fn close(&self, user: UserId, id: WorkspaceId, confirm_name: String) -> Result<i64> {
        self.run(move |inner| {
            let now = inner.clock.now();
            let closes_at = inner.write(|tx| {
                let workspace = authorize(tx, id, user, Action::Close)?;
                if confirm_name.trim() != workspace.name {
                    return Err(WorkspaceError::ConfirmationMismatch);
                }
                let closes_at = workspace.closes_at.unwrap_or(now + CLOSURE_HOLD_SECS);
                repo::set_closes_at(tx, id, Some(closes_at))?;
                Ok(closes_at)
            })?;
            let entry = Entry::new(Actor::user(user), Audited::WorkspaceClosureRequested)
                .detail("closes_at", closes_at);
            inner.audit_after(id, entry);
            Ok(closes_at)
        })
        .await
    }

    /// Cancels a pending closure.
    pub async fn reopen(&self, user: UserId, id: WorkspaceId) -> Result<()> {
        self.run(move |inner| {
            inner.write(|tx| {
                authorize(tx, id, user, Action::Close)?;
                Ok(repo::set_closes_at(tx, id, None)?)
            })?;
            let entry = Entry::new(Actor::user(user), Audited::WorkspaceClosureCancelled);
            inner.audit_after(id, entry);
            Ok(())
        })
        .await
    }

    /// Closes an account, refused (in the same transaction) while it is the only owner of
    /// a workspace that is not closing: that workspace would be left without an owner.
    pub async fn close_account(
        &self,
        auth: &AuthService,
        user: User,
        password: Zeroizing<String>,
    ) -> Result<i64> {
        let id = user.id;
        auth.close_account(
            user,
            password,
            CLOSURE_HOLD_SECS,
            move |tx| match repo::solely_owned(tx, id)? {
                0 => Ok(()),
                _ => Err(WorkspaceError::SoleOwner),
            },
        )
        .await
    }
}

/// The caller's view of the workspace, refusing non-members (`NotFound`) and members whose
/// role does not allow `action` (`Forbidden`). Other domains acting on a workspace (agents,
/// tokens) call it too, inside their own transaction.
pub fn authorize(
    conn: &Connection,
    id: WorkspaceId,
    user: UserId,
    action: Action,
) -> Result<Workspace> {
    let workspace = repo::workspace_for(conn, id, user)?.ok_or(WorkspaceError::NotFound)?;
    if !workspace.role.may(action) {
        return Err(WorkspaceError::Forbidden);
    }
    Ok(workspace)
}

/// Takes up an invitation for `user`: it must be usable and addressed to them. Returns the
/// workspace joined and the role taken.
fn claim_invite(
    conn: &Connection,
    hash: &SecretHash,
    user: &User,
    now: i64,
) -> Result<(WorkspaceId, Role)> {
    let invite = repo::invitation(conn, hash, now)?.ok_or(WorkspaceError::InviteInvalid)?;
    if invite.email != user.email {
        return Err(WorkspaceError::InviteForSomeoneElse);
    }
    if !repo::mark_invite_accepted(conn, hash, now)? {
        return Err(WorkspaceError::InviteInvalid);
    }
    if !repo::add_member(conn, invite.workspace, user.id, invite.role, now)? {
        return Err(WorkspaceError::AlreadyMember);
    }
    Ok((invite.workspace, invite.role))
}

/// Run after any change of roles or members, inside the same transaction.
fn keep_an_owner(conn: &Connection, id: WorkspaceId) -> Result<()> {
    match repo::owner_count(conn, id)? {
        0 => Err(WorkspaceError::LastOwner),
        _ => Ok(()),
    }
}

impl Inner {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.store
            .control()
            .read(|c| f(c).map_err(WorkspaceError::from))
    }

    fn read_checked<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.store.control().read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.store.control().write(f)
    }

    /// The workspace's export archive as pretty JSON, and how many records it holds.
    fn build_export(&self, workspace: &Workspace, now: i64) -> Result<(Vec<u8>, usize)> {
        let db = self.store.workspace(workspace.id)?;
        let (settings, records) =
            db.read(|c| Ok::<_, WorkspaceError>((export::settings(c)?, records::all_live(c)?)))?;
        let members = self.read(|c| repo::members(c, workspace.id))?;
        let record_count = records.len();
        let archive = export::archive(workspace, members, settings, records, now);
        Ok((serde_json::to_vec_pretty(&archive)?, record_count))
    }

    /// Audits an event in the workspace's log once the control database has committed it.
    fn audit_after(&self, id: WorkspaceId, entry: Entry) {
        self.audit.record_after(Chain::Workspace(id), entry);
    }

    fn audit_joined(&self, user: UserId, (id, role): (WorkspaceId, Role)) {
        let entry =
            Entry::new(Actor::user(user), Audited::MemberJoined).detail("role", role.as_str());
        self.audit_after(id, entry);
    }

    fn send_invite(&self, link: &str, workspace: &str, email: &Email, role: Role) {
        let mut url = self.public_url.clone();
        url.set_path("invite");
        url.query_pairs_mut().append_pair("token", link);
        let body = format!(
            "You are invited to join the Strongbox workspace \"{workspace}\" as {}.\n\n\
             Open this link to accept:\n\n{url}\n\nIt works once and expires in 7 days.\n",
            role.as_str()
        );
        let subject = format!("Invitation to {workspace}");
        self.mailer.send(Message {
            to: email.to_string(),
            subject,
            body,
        });
    }
}
