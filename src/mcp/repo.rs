//! The MCP session SQL. A session is a 256-bit id handed out at initialize, stored hashed, bound to the
//! credential and workspace that began it, ended by DELETE, idleness or age.

use rusqlite::{Connection, OptionalExtension, params};

use super::Principal;
use crate::crypto::token::SecretHash;

pub const SESSION_PREFIX: &str = "sbx_mcp_";
pub const IDLE_SECS: i64 = 30 * 60;
pub const ABSOLUTE_SECS: i64 = 4 * 60 * 60;

pub fn insert(
    conn: &Connection,
    hash: &SecretHash,
    principal: &Principal,
    version: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO mcp_sessions (id_hash, credential, workspace_id, protocol_version, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            hash.as_bytes(),
            principal.credential,
            principal.workspace.to_string(),
            version,
            now
        ],
    )?;
    Ok(())
}

/// How stale `last_seen_at` may get before a request refreshes it: most requests then
/// write nothing, and the idle timeout is kept to within this.
const TOUCH_SECS: i64 = 60;

/// The session's protocol version if it is live and this principal's, noting the use.
pub fn resume(
    conn: &Connection,
    hash: &SecretHash,
    principal: &Principal,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    let live: Option<(String, i64)> = conn
        .query_row(
            "SELECT protocol_version, last_seen_at FROM mcp_sessions
             WHERE id_hash = ?1 AND credential = ?2 AND workspace_id = ?3
               AND last_seen_at > ?5 - ?4 AND created_at > ?5 - ?6",
            params![
                hash.as_bytes(),
                principal.credential,
                principal.workspace.to_string(),
                IDLE_SECS,
                now,
                ABSOLUTE_SECS
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((version, last_seen)) = live else {
        return Ok(None);
    };
    if last_seen <= now - TOUCH_SECS {
        conn.execute(
            "UPDATE mcp_sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
            params![hash.as_bytes(), now],
        )?;
    }
    Ok(Some(version))
}

/// Ends the session, if it is this principal's.
pub fn end(conn: &Connection, hash: &SecretHash, principal: &Principal) -> rusqlite::Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM mcp_sessions WHERE id_hash = ?1 AND credential = ?2",
        params![hash.as_bytes(), principal.credential],
    )?;
    Ok(deleted == 1)
}

/// Deletes sessions `resume` would no longer accept: idle or older than their limits.
pub fn delete_ended_sessions(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM mcp_sessions WHERE last_seen_at <= ?1 - ?2 OR created_at <= ?1 - ?3",
        params![now, IDLE_SECS, ABSOLUTE_SECS],
    )
}
