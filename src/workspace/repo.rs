//! The SQL of workspaces, memberships and invitations (control database).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Invitation, Member, Role, Workspace};
use crate::auth::{Email, UserId};
use crate::crypto::token::SecretHash;
use crate::ids::WorkspaceId;
use crate::store::columns::{parsed, secret_hash};

type Result<T> = rusqlite::Result<T>;

fn workspace_row(row: &Row<'_>) -> Result<Workspace> {
    Ok(Workspace {
        id: parsed(row, 0)?,
        name: row.get(1)?,
        role: parsed(row, 2)?,
        closes_at: row.get(3)?,
        membership: row.get(4)?,
        member_since: row.get(5)?,
    })
}

const WORKSPACE_COLUMNS: &str = "w.id, w.name, m.role, w.closes_at, m.id, m.created_at";

/// The workspace as `user` sees it, or nothing when they are not a member.
pub fn workspace_for(
    conn: &Connection,
    id: WorkspaceId,
    user: UserId,
) -> Result<Option<Workspace>> {
    let sql = format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w
         JOIN memberships m ON m.workspace_id = w.id AND m.user_id = ?2
         WHERE w.id = ?1"
    );
    // Every authorised request asks this: the statement is prepared once per connection.
    conn.prepare_cached(&sql)?
        .query_row(params![id.to_string(), user.to_string()], workspace_row)
        .optional()
}

pub fn workspaces_of(conn: &Connection, user: UserId) -> Result<Vec<Workspace>> {
    let sql = format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w
         JOIN memberships m ON m.workspace_id = w.id
         WHERE m.user_id = ?1 ORDER BY w.name COLLATE NOCASE, w.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([user.to_string()], workspace_row)?;
    rows.collect()
}

pub fn set_name(conn: &Connection, id: WorkspaceId, name: &str) -> Result<()> {
    conn.execute(
        "UPDATE workspaces SET name = ?2 WHERE id = ?1",
        params![id.to_string(), name],
    )?;
    Ok(())
}

/// Begins a membership, with a new id; `false` when the person is a member already.
pub fn add_member(
    conn: &Connection,
    id: WorkspaceId,
    user: UserId,
    role: Role,
    now: i64,
) -> Result<bool> {
    let added = conn.execute(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workspace_id, user_id) DO NOTHING",
        params![id.to_string(), user.to_string(), role.as_str(), now],
    )?;
    Ok(added == 1)
}

pub fn members(conn: &Connection, id: WorkspaceId) -> Result<Vec<Member>> {
    let mut stmt = conn.prepare(
        "SELECT m.user_id, u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id = ?1 ORDER BY u.email",
    )?;
    let rows = stmt.query_map([id.to_string()], |row| {
        Ok(Member {
            user_id: parsed(row, 0)?,
            email: parsed(row, 1)?,
            role: parsed(row, 2)?,
        })
    })?;
    rows.collect()
}

pub fn role_of(conn: &Connection, id: WorkspaceId, user: UserId) -> Result<Option<Role>> {
    conn.query_row(
        "SELECT role FROM memberships WHERE workspace_id = ?1 AND user_id = ?2",
        params![id.to_string(), user.to_string()],
        |row| parsed(row, 0),
    )
    .optional()
}

pub fn owner_count(conn: &Connection, id: WorkspaceId) -> Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM memberships WHERE workspace_id = ?1 AND role = 'owner'",
        [id.to_string()],
        |row| row.get(0),
    )
}

pub fn set_role(conn: &Connection, id: WorkspaceId, user: UserId, role: Role) -> Result<()> {
    conn.execute(
        "UPDATE memberships SET role = ?3 WHERE workspace_id = ?1 AND user_id = ?2",
        params![id.to_string(), user.to_string(), role.as_str()],
    )?;
    Ok(())
}

/// Ends the person's membership. Its id is retired with it: every credential made in it is
/// refused from now on, whatever membership the person has later.
pub fn remove_member(conn: &Connection, id: WorkspaceId, user: UserId) -> Result<()> {
    conn.execute(
        "DELETE FROM memberships WHERE workspace_id = ?1 AND user_id = ?2",
        params![id.to_string(), user.to_string()],
    )?;
    Ok(())
}

pub struct NewInvite<'a> {
    pub hash: &'a SecretHash,
    pub workspace: WorkspaceId,
    pub email: &'a Email,
    pub role: Role,
    pub invited_by: UserId,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert_invite(conn: &Connection, invite: &NewInvite<'_>) -> Result<()> {
    conn.execute(
        "INSERT INTO invites (hash, workspace_id, email, role, invited_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            invite.hash.as_bytes(),
            invite.workspace.to_string(),
            invite.email.as_str(),
            invite.role.as_str(),
            invite.invited_by.to_string(),
            invite.now,
            invite.expires_at
        ],
    )?;
    Ok(())
}

fn invitation_row(row: &Row<'_>) -> Result<Invitation> {
    Ok(Invitation {
        workspace: parsed(row, 0)?,
        workspace_name: row.get(1)?,
        email: parsed(row, 2)?,
        role: parsed(row, 3)?,
    })
}

/// A usable invitation (unaccepted, unexpired, workspace not closing).
pub fn invitation(conn: &Connection, hash: &SecretHash, now: i64) -> Result<Option<Invitation>> {
    conn.query_row(
        "SELECT i.workspace_id, w.name, i.email, i.role FROM invites i
         JOIN workspaces w ON w.id = i.workspace_id
         WHERE i.hash = ?1 AND i.accepted_at IS NULL AND i.expires_at > ?2 AND w.closes_at IS NULL",
        params![hash.as_bytes(), now],
        invitation_row,
    )
    .optional()
}

/// Marks an invitation used; only the first caller gets `true`.
pub fn mark_invite_accepted(conn: &Connection, hash: &SecretHash, now: i64) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE invites SET accepted_at = ?2 WHERE hash = ?1 AND accepted_at IS NULL AND expires_at > ?2",
        params![hash.as_bytes(), now],
    )?;
    Ok(changed == 1)
}

/// How many exports the workspace had since `since`, and when the oldest of them was.
pub fn exports_since(conn: &Connection, id: WorkspaceId, since: i64) -> Result<(i64, Option<i64>)> {
    conn.query_row(
        "SELECT count(*), min(created_at) FROM exports WHERE workspace_id = ?1 AND created_at > ?2",
        params![id.to_string(), since],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

/// Records an export; returns its row, for `forget_export`.
pub fn record_export(conn: &Connection, id: WorkspaceId, user: UserId, now: i64) -> Result<i64> {
    conn.execute(
        "INSERT INTO exports (workspace_id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![id.to_string(), user.to_string(), now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Takes back an export recorded by `record_export` that could not be built.
pub fn forget_export(conn: &Connection, row: i64) -> Result<()> {
    conn.execute("DELETE FROM exports WHERE rowid = ?1", [row])?;
    Ok(())
}

pub fn set_closes_at(conn: &Connection, id: WorkspaceId, closes_at: Option<i64>) -> Result<()> {
    conn.execute(
        "UPDATE workspaces SET closes_at = ?2 WHERE id = ?1",
        params![id.to_string(), closes_at],
    )?;
    Ok(())
}

/// Workspaces where `user` is the only owner and which are not already closing.
pub fn solely_owned(conn: &Connection, user: UserId) -> Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.user_id = ?1 AND m.role = 'owner' AND w.closes_at IS NULL
           AND (SELECT count(*) FROM memberships o
                WHERE o.workspace_id = m.workspace_id AND o.role = 'owner') = 1",
        [user.to_string()],
        |row| row.get(0),
    )
}

/// An invitation not yet accepted or expired, as the members page lists it.
pub struct PendingInvite {
    pub hash: SecretHash,
    pub email: String,
    pub role: Role,
    pub expires_at: i64,
}

pub fn pending_invites(conn: &Connection, id: WorkspaceId, now: i64) -> Result<Vec<PendingInvite>> {
    let mut stmt = conn.prepare(
        "SELECT hash, email, role, expires_at FROM invites
         WHERE workspace_id = ?1 AND accepted_at IS NULL AND expires_at > ?2
         ORDER BY created_at",
    )?;
    let rows = stmt.query_map(params![id.to_string(), now], |row| {
        Ok(PendingInvite {
            hash: secret_hash(row, 0)?,
            email: row.get(1)?,
            role: parsed(row, 2)?,
            expires_at: row.get(3)?,
        })
    })?;
    rows.collect()
}

/// Withdraws an invitation of this workspace; `false` when there was none to withdraw.
pub fn revoke_invite(conn: &Connection, id: WorkspaceId, hash: &SecretHash) -> Result<bool> {
    let removed = conn.execute(
        "DELETE FROM invites WHERE workspace_id = ?1 AND hash = ?2 AND accepted_at IS NULL",
        params![id.to_string(), hash.as_bytes()],
    )?;
    Ok(removed == 1)
}

/// Deletes invitations that can no longer be taken up: accepted or expired.
pub fn delete_spent_invites(conn: &Connection, now: i64) -> Result<usize> {
    conn.execute(
        "DELETE FROM invites WHERE accepted_at IS NOT NULL OR expires_at <= ?1",
        [now],
    )
}

/// Workspaces whose closure hold has passed, oldest deadline first.
pub fn closed_workspaces_due(conn: &Connection, now: i64) -> Result<Vec<WorkspaceId>> {
    let mut stmt = conn.prepare(
        "SELECT id FROM workspaces WHERE closes_at IS NOT NULL AND closes_at <= ?1
         ORDER BY closes_at, id",
    )?;
    let rows = stmt.query_map([now], |row| parsed(row, 0))?;
    rows.collect()
}

/// Whether the workspace's closure hold has passed, read inside the deleting transaction
/// so a closure cancelled meanwhile is seen.
pub fn workspace_closure_due(conn: &Connection, id: WorkspaceId, now: i64) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM workspaces WHERE id = ?1 AND closes_at IS NOT NULL AND closes_at <= ?2",
        params![id.to_string(), now],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n == 1)
}

/// Deletes the rows that name a person without cascading when their account goes: the
/// invitations they sent (a departed inviter vouches for no one) and their export records.
pub fn forget_departing_user(conn: &Connection, user: UserId) -> Result<()> {
    conn.execute(
        "DELETE FROM invites WHERE invited_by = ?1",
        [user.to_string()],
    )?;
    conn.execute("DELETE FROM exports WHERE user_id = ?1", [user.to_string()])?;
    Ok(())
}
