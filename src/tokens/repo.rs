//! The personal-token SQL, in the control database.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{PersonalToken, TokenId};
use crate::crypto::token::SecretHash;
use crate::ids::WorkspaceId;
use crate::store::columns::{parsed, secret_hash};

pub fn insert(conn: &Connection, token: &PersonalToken, hash: &SecretHash) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO personal_tokens
             (id, secret_hash, workspace_id, user_id, membership_id, name, access, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            token.id.as_str(),
            hash.as_bytes(),
            token.workspace.to_string(),
            token.user.to_string(),
            token.membership,
            token.name,
            token.access.as_str(),
            token.created_at
        ],
    )?;
    Ok(())
}

const COLUMNS: &str = "t.id, t.workspace_id, t.user_id, u.email, t.name, t.access, t.created_at,
     t.last_used_at, t.revoked_at, t.membership_id";

fn token_row(row: &Row<'_>) -> rusqlite::Result<PersonalToken> {
    Ok(PersonalToken {
        id: parsed(row, 0)?,
        workspace: parsed(row, 1)?,
        user: parsed(row, 2)?,
        user_email: row.get(3)?,
        name: row.get(4)?,
        access: parsed(row, 5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
        revoked_at: row.get(8)?,
        membership: row.get(9)?,
    })
}

/// A token with its stored hash, for checking a presented one.
pub fn by_id(
    conn: &Connection,
    id: &TokenId,
) -> rusqlite::Result<Option<(PersonalToken, SecretHash)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, t.secret_hash FROM personal_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.id = ?1"
    ))?
    .query_row([id.as_str()], |row| {
        Ok((token_row(row)?, secret_hash(row, 10)?))
    })
    .optional()
}

/// The workspace's tokens not revoked, newest first.
pub fn of_workspace(
    conn: &Connection,
    workspace: WorkspaceId,
) -> rusqlite::Result<Vec<PersonalToken>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM personal_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.workspace_id = ?1 AND t.revoked_at IS NULL AND t.membership_id IS NOT NULL
         ORDER BY t.created_at DESC, t.id"
    ))?;
    let rows = stmt.query_map([workspace.to_string()], token_row)?;
    rows.collect()
}

pub fn revoke(conn: &Connection, id: &TokenId, now: i64) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE personal_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id.as_str(), now],
    )?;
    Ok(changed == 1)
}

/// Notes the use; at most one write a minute per token.
pub fn touch(conn: &Connection, id: &TokenId, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE personal_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - 60)",
        params![id.as_str(), now],
    )?;
    Ok(())
}

/// Deletes revoked tokens and those whose membership ended: they are listed nowhere and
/// refused either way.
pub fn delete_revoked(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM personal_tokens WHERE revoked_at IS NOT NULL OR membership_id IS NULL",
        [],
    )
}
