//! The audit tables' SQL, the same for the system log and every workspace's log.

use chrono::{NaiveDate, NaiveTime};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::chain::{Hash, RowFields};

/// A row as stored, with its links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    pub fields: RowFields,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The signed end of a chain.
pub struct Head {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub mac: Vec<u8>,
}

/// A sweep's record of what it removed.
pub struct Anchor {
    pub through_seq: i64,
    pub last_hash: Vec<u8>,
    pub removed: i64,
    pub swept_at: i64,
    pub mac: Vec<u8>,
}

/// Which rows a listing wants; every part is optional. Matched in SQL with bound
/// parameters only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub actor_kind: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    /// Inclusive lower bound on `at`.
    pub since: Option<i64>,
    /// Exclusive upper bound on `at`.
    pub until: Option<i64>,
}

impl Filter {
    /// Limits the filter to whole UTC days, `to` included.
    pub fn within_days(self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Self {
        let start_of = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc().timestamp();
        Self {
            since: from.map(start_of),
            until: to.and_then(|day| day.succ_opt()).map(start_of),
            ..self
        }
    }
}

const COLUMNS: &str = "seq, at, actor_kind, actor_id, action, target, ip, user_agent, \
                       request_id, details, prev_hash, hash";

const FILTERED: &str = "(?1 IS NULL OR actor_kind = ?1) AND (?2 IS NULL OR actor_id = ?2) \
                        AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR at >= ?4) \
                        AND (?5 IS NULL OR at < ?5)";

fn stored_row(row: &Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        fields: RowFields {
            seq: row.get(0)?,
            at: row.get(1)?,
            actor_kind: row.get(2)?,
            actor_id: row.get(3)?,
            action: row.get(4)?,
            target: row.get(5)?,
            ip: row.get(6)?,
            user_agent: row.get(7)?,
            request_id: row.get(8)?,
            details: row.get(9)?,
        },
        prev_hash: row.get(10)?,
        hash: row.get(11)?,
    })
}

pub fn head(conn: &Connection) -> rusqlite::Result<Option<Head>> {
    conn.query_row(
        "SELECT seq, hash, mac FROM audit_head WHERE id = 1",
        [],
        |row| {
            Ok(Head {
                seq: row.get(0)?,
                hash: row.get(1)?,
                mac: row.get(2)?,
            })
        },
    )
    .optional()
}

pub fn insert(
    conn: &Connection,
    row: &RowFields,
    prev: &Hash,
    hash: &Hash,
) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
        params![
            row.seq,
            row.at,
            row.actor_kind,
            row.actor_id,
            row.action,
            row.target,
            row.ip,
            row.user_agent,
            row.request_id,
            row.details,
            prev.as_slice(),
            hash.as_slice(),
        ],
    )?;
    Ok(())
}

pub fn set_head(conn: &Connection, seq: i64, hash: &Hash, mac: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
        params![seq, hash.as_slice(), mac],
    )?;
    Ok(())
}

/// Every row of the chain in order, handed to `visit` one at a time; stops when it says so.
pub fn each_row(
    conn: &Connection,
    filter: &Filter,
    mut visit: impl FnMut(StoredRow) -> bool,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {FILTERED} ORDER BY seq"
    ))?;
    let mut rows = stmt.query(filter_params(filter))?;
    while let Some(row) = rows.next()? {
        if !visit(stored_row(row)?) {
            break;
        }
    }
    Ok(())
}

/// Up to `limit` rows matching `filter`, newest first, older than `before` when given.
pub fn page(
    conn: &Connection,
    filter: &Filter,
    before: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Vec<StoredRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {FILTERED} AND (?6 IS NULL OR seq < ?6)
         ORDER BY seq DESC LIMIT ?7"
    ))?;
    let mut bound = filter_params(filter).to_vec();
    bound.extend([&before as &dyn ToSql, &limit]);
    let rows = stmt.query_map(bound.as_slice(), stored_row)?;
    rows.collect()
}

fn filter_params(filter: &Filter) -> [&dyn ToSql; 5] {
    [
        &filter.actor_kind,
        &filter.actor_id,
        &filter.action,
        &filter.since,
        &filter.until,
    ]
}

pub fn anchors(conn: &Connection) -> rusqlite::Result<Vec<Anchor>> {
    let mut stmt = conn.prepare(
        "SELECT through_seq, last_hash, removed, swept_at, mac FROM audit_anchors
         ORDER BY through_seq",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(Anchor {
            through_seq: row.get(0)?,
            last_hash: row.get(1)?,
            removed: row.get(2)?,
            swept_at: row.get(3)?,
            mac: row.get(4)?,
        })
    })?;
    rows.collect()
}

/// The longest run of rows from the start of the chain that are all older than `cutoff`:
/// its last seq and hash, and how many rows it holds. Rows are removed only from the
/// start, so the chain that stays is whole.
pub fn expired_prefix(
    conn: &Connection,
    cutoff: i64,
) -> rusqlite::Result<Option<(i64, Vec<u8>, i64)>> {
    let first_kept: Option<i64> = conn.query_row(
        "SELECT min(seq) FROM audit_log WHERE at >= ?1",
        [cutoff],
        |row| row.get(0),
    )?;
    let (last, count): (Option<i64>, i64) = conn.query_row(
        "SELECT max(seq), count(*) FROM audit_log WHERE (?1 IS NULL OR seq < ?1)",
        [first_kept],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let Some(last) = last else {
        return Ok(None);
    };
    let hash = conn.query_row("SELECT hash FROM audit_log WHERE seq = ?1", [last], |row| {
        row.get(0)
    })?;
    Ok(Some((last, hash, count)))
}

/// Whether the control database (`conn`) holds any account: once one is created, the
/// system log holds its `account.created` row, so an empty system log is a wiped one.
pub fn install_has_accounts(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |row| row.get(0))
}

pub fn insert_anchor(conn: &Connection, anchor: &Anchor) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_anchors (through_seq, last_hash, removed, swept_at, mac)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            anchor.through_seq,
            anchor.last_hash,
            anchor.removed,
            anchor.swept_at,
            anchor.mac
        ],
    )?;
    Ok(())
}

/// The guard against changing anchors, exactly as the audit migration creates it. A key
/// rotation drops it to sign the anchors again and creates it from this, in one transaction.
pub const ANCHORS_APPEND_ONLY: &str =
    "CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors cannot be changed');
END";

/// Replaces an anchor's MAC; the guard refuses this unless a key rotation has lifted it.
pub fn set_anchor_mac(conn: &Connection, through_seq: i64, mac: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE audit_anchors SET mac = ?2 WHERE through_seq = ?1",
        params![through_seq, mac],
    )?;
    Ok(())
}

/// Removes the rows an anchor now covers; the delete trigger refuses any other.
pub fn delete_through(conn: &Connection, through_seq: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM audit_log WHERE seq <= ?1", [through_seq])
}
