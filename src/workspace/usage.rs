//! Usage metadata: one row per AI client call, in the workspace's own database. What was
//! called, by whom, how much came back and how much of it was masked; never arguments or
//! results.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::auth::UserId;

/// How long usage rows are kept: the product promises 90 days, no more.
pub const RETENTION_SECS: i64 = 90 * 24 * 60 * 60;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with a result.
    Ok,
    /// Answered with a tool error (bad arguments, nothing found, too slow).
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
        }
    }
}

/// One call, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The credential that made the call (`grant:<id>` or `token:<id>`).
    pub actor: String,
    pub user: UserId,
    /// A tool's name or an MCP method: from the server's own list, never from input.
    pub operation: &'static str,
    pub outcome: Outcome,
    /// Records, hits, groups or collections returned.
    pub items: usize,
    /// Values masked, per category (`EMAIL`, `TERM_ALIAS`…).
    pub masked: BTreeMap<&'static str, usize>,
    pub duration: Duration,
}

/// A stored row, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    pub at: i64,
    pub actor: String,
    pub user: String,
    pub operation: String,
    pub outcome: String,
    pub items: i64,
    pub masked: BTreeMap<String, i64>,
    pub duration_us: i64,
}

pub fn insert(conn: &Connection, usage: &Usage, at: i64) -> rusqlite::Result<()> {
    let masked = serde_json::to_string(&usage.masked).expect("a map of counts serialises");
    let duration_us = i64::try_from(usage.duration.as_micros()).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO usage (at, actor, user_id, operation, outcome, items, masked, duration_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            at,
            usage.actor,
            usage.user.to_string(),
            usage.operation,
            usage.outcome.as_str(),
            i64::try_from(usage.items).unwrap_or(i64::MAX),
            masked,
            duration_us
        ],
    )?;
    Ok(())
}

/// Deletes the rows recorded before `cutoff`; returns how many went.
pub fn delete_before(conn: &Connection, cutoff: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM usage WHERE at < ?1", [cutoff])
}

/// The newest `limit` rows, newest first.
pub fn recent(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<UsageRow>> {
    let mut statement = conn.prepare(
        "SELECT at, actor, user_id, operation, outcome, items, masked, duration_us
         FROM usage ORDER BY id DESC LIMIT ?1",
    )?;
    statement
        .query_map([limit], |row| {
            let masked: String = row.get(6)?;
            Ok(UsageRow {
                at: row.get(0)?,
                actor: row.get(1)?,
                user: row.get(2)?,
                operation: row.get(3)?,
                outcome: row.get(4)?,
                items: row.get(5)?,
                masked: serde_json::from_str(&masked).unwrap_or_default(),
                duration_us: row.get(7)?,
            })
        })?
        .collect()
}
