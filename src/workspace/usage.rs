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
    conn.prepare_cached(
        "INSERT INTO usage (at, actor, user_id, operation, outcome, items, masked, duration_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        at,
        usage.actor,
        usage.user.to_string(),
        usage.operation,
        usage.outcome.as_str(),
        i64::try_from(usage.items).unwrap_or(i64::MAX),
        masked,
        duration_us
    ])?;
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

/// One day's calls, as the usage chart and table show them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayTotals {
    /// Unix seconds at 00:00 UTC.
    pub day: i64,
    pub calls: i64,
    pub refused: i64,
    pub items: i64,
    pub masked: i64,
    pub duration_us: i64,
}

/// One operation's calls over the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationTotals {
    pub operation: String,
    pub calls: i64,
    pub refused: i64,
    pub items: i64,
    pub masked: i64,
    pub duration_us: i64,
}

const DAY_SECS: i64 = 86_400;

/// Totals per UTC day for the calls since `since`, oldest day first; days without calls
/// are absent.
pub fn per_day(conn: &Connection, since: i64) -> rusqlite::Result<Vec<DayTotals>> {
    let mut statement = conn.prepare(
        "SELECT at / ?2 * ?2 AS day, count(*), sum(outcome = 'refused'), sum(items),
                sum((SELECT coalesce(sum(value), 0) FROM json_each(masked))), sum(duration_us)
         FROM usage WHERE at >= ?1 GROUP BY day ORDER BY day",
    )?;
    statement
        .query_map(params![since, DAY_SECS], |row| {
            Ok(DayTotals {
                day: row.get(0)?,
                calls: row.get(1)?,
                refused: row.get(2)?,
                items: row.get(3)?,
                masked: row.get(4)?,
                duration_us: row.get(5)?,
            })
        })?
        .collect()
}

/// Totals per operation for the calls since `since`, most called first.
pub fn per_operation(conn: &Connection, since: i64) -> rusqlite::Result<Vec<OperationTotals>> {
    let mut statement = conn.prepare(
        "SELECT operation, count(*) AS calls, sum(outcome = 'refused'), sum(items),
                sum((SELECT coalesce(sum(value), 0) FROM json_each(masked))), sum(duration_us)
         FROM usage WHERE at >= ?1 GROUP BY operation ORDER BY calls DESC, operation",
    )?;
    statement
        .query_map([since], |row| {
            Ok(OperationTotals {
                operation: row.get(0)?,
                calls: row.get(1)?,
                refused: row.get(2)?,
                items: row.get(3)?,
                masked: row.get(4)?,
                duration_us: row.get(5)?,
            })
        })?
        .collect()
}

/// Values masked per category since `since`, most first.
pub fn masked_by_category(conn: &Connection, since: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut statement = conn.prepare(
        "SELECT m.key, sum(m.value) AS total FROM usage, json_each(usage.masked) AS m
         WHERE usage.at >= ?1 GROUP BY m.key ORDER BY total DESC, m.key",
    )?;
    statement
        .query_map([since], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserId;

    fn call(operation: &'static str, outcome: Outcome, masked: &[(&'static str, usize)]) -> Usage {
        Usage {
            actor: "token:t1".into(),
            user: UserId::new_random(),
            operation,
            outcome,
            items: 3,
            masked: masked.iter().copied().collect(),
            duration: Duration::from_micros(500),
        }
    }

    #[test]
    fn totals_add_up_per_day_operation_and_category() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate_workspace_for_tests(&mut conn);
        let day = 20_000 * DAY_SECS;
        insert(
            &conn,
            &call("search", Outcome::Ok, &[("EMAIL", 2)]),
            day + 10,
        )
        .unwrap();
        insert(&conn, &call("search", Outcome::Refused, &[]), day + 20).unwrap();
        let masked = [("EMAIL", 1), ("PHONE", 4)];
        insert(&conn, &call("query", Outcome::Ok, &masked), day + DAY_SECS).unwrap();
        insert(&conn, &call("query", Outcome::Ok, &[]), day - 1).unwrap();

        let days = per_day(&conn, day).unwrap();
        assert_eq!(
            days,
            vec![
                DayTotals {
                    day,
                    calls: 2,
                    refused: 1,
                    items: 6,
                    masked: 2,
                    duration_us: 1000
                },
                DayTotals {
                    day: day + DAY_SECS,
                    calls: 1,
                    refused: 0,
                    items: 3,
                    masked: 5,
                    duration_us: 500
                },
            ]
        );
        let ops = per_operation(&conn, day).unwrap();
        assert_eq!(ops[0].operation, "search");
        assert_eq!((ops[0].calls, ops[0].refused), (2, 1));
        assert_eq!((ops[1].operation.as_str(), ops[1].masked), ("query", 5));
        assert_eq!(
            masked_by_category(&conn, day).unwrap(),
            vec![("PHONE".to_string(), 4), ("EMAIL".to_string(), 3)]
        );
    }
}
