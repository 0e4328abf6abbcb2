//! The agent domain's SQL: pairing codes, agents and refresh secrets in the control
//! database; sync batches and the records they change in the workspace's database.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Agent, AgentId, DeviceName, PendingPairing};
use super::sync::{ParsedChange, ParsedOp};
use super::wire::SyncResult;
use crate::auth::UserId;
use crate::crypto::token::SecretHash;
use crate::ids::{MembershipId, WorkspaceId};
use crate::store::columns::{parsed, secret_hash};
use crate::workspace::records;
use crate::workspace::shown::ShownWriter;

pub struct NewPairing<'a> {
    pub hash: &'a SecretHash,
    pub workspace: WorkspaceId,
    pub device_name: &'a DeviceName,
    pub created_by: UserId,
    /// The issuer's membership, which the code and the agent it becomes belong to.
    pub membership: MembershipId,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert_pairing_code(conn: &Connection, p: &NewPairing<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pairing_codes
             (code_hash, workspace_id, device_name, created_by, membership_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            p.hash.as_bytes(),
            p.workspace.to_string(),
            p.device_name.as_str(),
            p.created_by.to_string(),
            p.membership,
            p.now,
            p.expires_at
        ],
    )?;
    Ok(())
}

pub fn pending_pairings(
    conn: &Connection,
    workspace: WorkspaceId,
    now: i64,
) -> rusqlite::Result<Vec<PendingPairing>> {
    let mut stmt = conn.prepare(
        "SELECT code_hash, device_name, created_at, expires_at FROM pairing_codes
         WHERE workspace_id = ?1 AND used_at IS NULL AND expires_at > ?2
           AND membership_id IS NOT NULL
         ORDER BY created_at",
    )?;
    let rows = stmt.query_map(params![workspace.to_string(), now], |row| {
        Ok(PendingPairing {
            hash: secret_hash(row, 0)?,
            device_name: row.get(1)?,
            created_at: row.get(2)?,
            expires_at: row.get(3)?,
        })
    })?;
    rows.collect()
}

/// Withdraws an unused code; `false` if the workspace has no such code.
pub fn withdraw_pairing(
    conn: &Connection,
    workspace: WorkspaceId,
    hash: &SecretHash,
) -> rusqlite::Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM pairing_codes WHERE code_hash = ?1 AND workspace_id = ?2 AND used_at IS NULL",
        params![hash.as_bytes(), workspace.to_string()],
    )?;
    Ok(deleted == 1)
}

/// Marks a usable code used and returns what it was issued for; `None` if the code is
/// unknown, used or expired. Single use holds because the update and the check are one
/// statement.
pub fn claim_pairing_code(
    conn: &Connection,
    hash: &SecretHash,
    agent: AgentId,
    now: i64,
) -> rusqlite::Result<Option<ClaimedCode>> {
    conn.query_row(
        "UPDATE pairing_codes SET used_at = ?2, agent_id = ?3
         WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2
         RETURNING workspace_id, device_name, created_by, membership_id",
        params![hash.as_bytes(), now, agent.to_string()],
        |row| {
            Ok(ClaimedCode {
                workspace: parsed(row, 0)?,
                device_name: row.get(1)?,
                issued_by: parsed(row, 2)?,
                membership: row.get(3)?,
            })
        },
    )
    .optional()
}

/// What a pairing code was issued for, and by whom.
pub struct ClaimedCode {
    pub workspace: WorkspaceId,
    pub device_name: String,
    pub issued_by: UserId,
    /// The membership it was issued in; `None` once that membership ended.
    pub membership: Option<MembershipId>,
}

/// Stores a newly paired agent, with the person who issued its code and the membership
/// they issued it in: the agent works only while that membership lasts.
pub fn insert_agent(
    conn: &Connection,
    agent: &Agent,
    paired_by: UserId,
    membership: MembershipId,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO agents
             (id, workspace_id, name, paired_at, paired_by, membership_id, last_seen_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            agent.id.to_string(),
            agent.workspace.to_string(),
            agent.name,
            agent.paired_at,
            paired_by.to_string(),
            membership,
            agent.last_seen_at,
            agent.version
        ],
    )?;
    Ok(())
}

/// The last column says whether the membership the agent was paired in has ended: no
/// membership of that id is left in the agent's workspace.
const AGENT_COLUMNS: &str =
    "id, workspace_id, name, paired_at, last_seen_at, version, revoked_at, revoked_reason,
     NOT EXISTS (SELECT 1 FROM memberships m
                 WHERE m.id = agents.membership_id AND m.workspace_id = agents.workspace_id)";

fn agent_row(row: &Row<'_>) -> rusqlite::Result<Agent> {
    let revoked_at: Option<i64> = row.get(6)?;
    let reason: Option<String> = row.get(7)?;
    Ok(Agent {
        id: parsed(row, 0)?,
        workspace: parsed(row, 1)?,
        name: row.get(2)?,
        paired_at: row.get(3)?,
        last_seen_at: row.get(4)?,
        version: row.get(5)?,
        revoked: match (revoked_at, reason) {
            (Some(at), Some(_)) => Some((at, parsed(row, 7)?)),
            _ => None,
        },
        membership_ended: row.get(8)?,
    })
}

pub fn agent(conn: &Connection, id: AgentId) -> rusqlite::Result<Option<Agent>> {
    conn.query_row(
        &format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1"),
        [id.to_string()],
        agent_row,
    )
    .optional()
}

pub fn agents_of(conn: &Connection, workspace: WorkspaceId) -> rusqlite::Result<Vec<Agent>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE workspace_id = ?1 ORDER BY paired_at, id"
    ))?;
    let rows = stmt.query_map([workspace.to_string()], agent_row)?;
    rows.collect()
}

/// Revokes an agent that is still active; `false` if it already was revoked.
pub fn revoke(
    conn: &Connection,
    id: AgentId,
    reason: super::RevokeReason,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE agents SET revoked_at = ?2, revoked_reason = ?3
         WHERE id = ?1 AND revoked_at IS NULL",
        params![id.to_string(), now, reason.as_str()],
    )?;
    Ok(changed == 1)
}

/// Records that the agent was heard from, and the version it reports if it sent one.
pub fn touch(
    conn: &Connection,
    id: AgentId,
    now: i64,
    version: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE agents SET last_seen_at = ?2, version = coalesce(?3, version) WHERE id = ?1",
        params![id.to_string(), now, version],
    )?;
    Ok(())
}

pub fn insert_refresh_secret(
    conn: &Connection,
    hash: &SecretHash,
    agent: AgentId,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO agent_refresh_secrets (secret_hash, agent_id, issued_at) VALUES (?1, ?2, ?3)",
        params![hash.as_bytes(), agent.to_string(), now],
    )?;
    Ok(())
}

/// What a presented refresh secret turned out to be.
pub enum RefreshSecret {
    Unknown,
    /// Unused until now.
    Fresh(AgentId),
    /// Used before, at `used_at`; `successor_unused` when the secret that replaced it has
    /// not been used yet (the agent may simply have lost the answer).
    Used {
        agent: AgentId,
        used_at: i64,
        successor_unused: bool,
    },
}

pub fn refresh_secret(conn: &Connection, hash: &SecretHash) -> rusqlite::Result<RefreshSecret> {
    let found: Option<(AgentId, Option<i64>, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT agent_id, used_at, replaced_by FROM agent_refresh_secrets WHERE secret_hash = ?1",
            [hash.as_bytes()],
            |row| Ok((parsed(row, 0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((agent, used_at, replaced_by)) = found else {
        return Ok(RefreshSecret::Unknown);
    };
    let Some(used_at) = used_at else {
        return Ok(RefreshSecret::Fresh(agent));
    };
    let successor_unused = match replaced_by {
        None => false,
        Some(successor) => conn
            .query_row(
                "SELECT used_at IS NULL FROM agent_refresh_secrets WHERE secret_hash = ?1",
                [successor],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(false),
    };
    Ok(RefreshSecret::Used {
        agent,
        used_at,
        successor_unused,
    })
}

/// Marks `presented` used and replaced by `next`, retiring any successor it had before.
pub fn rotate_refresh_secret(
    conn: &Connection,
    presented: &SecretHash,
    next: &SecretHash,
    agent: AgentId,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE agent_refresh_secrets SET used_at = ?2
         WHERE secret_hash = (SELECT replaced_by FROM agent_refresh_secrets WHERE secret_hash = ?1)
           AND used_at IS NULL",
        params![presented.as_bytes(), now],
    )?;
    conn.execute(
        "UPDATE agent_refresh_secrets SET used_at = coalesce(used_at, ?2), replaced_by = ?3
         WHERE secret_hash = ?1",
        params![presented.as_bytes(), now, next.as_bytes()],
    )?;
    insert_refresh_secret(conn, next, agent, now)
}

// The workspace database: sync batches.

/// The stored answer to an earlier batch under this key, with the hash it was sent with.
pub fn stored_batch(
    conn: &Connection,
    agent: AgentId,
    key: &str,
) -> rusqlite::Result<Option<([u8; 32], String)>> {
    conn.query_row(
        "SELECT request_hash, result FROM sync_batches WHERE agent_id = ?1 AND idempotency_key = ?2",
        params![agent.to_string(), key],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()
}

pub struct BatchRecord<'a> {
    pub agent: AgentId,
    pub key: &'a str,
    pub request_hash: &'a [u8; 32],
    pub result: &'a SyncResult,
    pub now: i64,
}

/// Applies every change, keeping the shown index in step through `shown`; returns how
/// many records were written and how many live ones became tombstones (deleting what is
/// already gone changes nothing).
pub fn apply_changes(
    conn: &Connection,
    shown: &ShownWriter,
    changes: &[ParsedChange],
    now: i64,
) -> rusqlite::Result<(usize, usize)> {
    let (mut upserted, mut deleted) = (0, 0);
    for change in changes {
        match &change.op {
            ParsedOp::Upsert(data) => {
                records::upsert(conn, shown, &change.collection, &change.id, data, now)?;
                upserted += 1;
            }
            ParsedOp::Delete => {
                deleted += usize::from(records::tombstone(
                    conn,
                    &change.collection,
                    &change.id,
                    now,
                )?);
            }
        }
    }
    Ok((upserted, deleted))
}

/// Stores a batch's result under its idempotency key, in the transaction that applied it.
pub fn store_batch(conn: &Connection, batch: &BatchRecord<'_>) -> Result<(), super::AgentError> {
    conn.execute(
        "INSERT INTO sync_batches (agent_id, idempotency_key, request_hash, result, records, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            batch.agent.to_string(),
            batch.key,
            &batch.request_hash[..],
            serde_json::to_string(batch.result)?,
            (batch.result.upserted + batch.result.deleted) as i64,
            batch.now
        ],
    )?;
    Ok(())
}

/// Per agent, over every batch it sent: the changes accepted, and the values masked (on
/// the device as it reported, plus what the server's backstop caught).
pub fn sync_totals(conn: &Connection) -> rusqlite::Result<Vec<(String, (i64, i64))>> {
    let mut stmt = conn.prepare(
        "SELECT agent_id, sum(records),
                sum((SELECT coalesce(sum(value), 0) FROM json_each(result, '$.redacted_on_device'))
                  + (SELECT coalesce(sum(value), 0) FROM json_each(result, '$.backstop')))
         FROM sync_batches GROUP BY agent_id",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?;
    rows.collect()
}

/// Deletes pairing codes that can no longer be claimed: used, expired, or issued in a
/// membership that ended. A spent code presented again simply fails; nothing watches for it.
pub fn delete_spent_pairing_codes(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM pairing_codes
         WHERE used_at IS NOT NULL OR expires_at <= ?1 OR membership_id IS NULL",
        [now],
    )
}

/// Deletes the refresh secrets of revoked agents. Reuse detection needs an agent's used
/// secrets only while the agent can still be revoked; a revoked one stays revoked, and its
/// secrets, used or not, are refused either way.
pub fn delete_revoked_agents_secrets(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM agent_refresh_secrets
         WHERE agent_id IN (SELECT id FROM agents WHERE revoked_at IS NOT NULL)",
        [],
    )
}
