//! The shown index's SQL: keeping `shown_records` and `shown_fts` in step, and the reads
//! MCP makes of them (search, one record by its shown id, typed queries, aggregates and
//! field summaries), all on values as shown.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{ShownHit, ShownRecord, Written, counts_from_json, show, tag, text_of};
use crate::privacy::{Masker, MaskingRule};
use crate::workspace::error::WorkspaceError;
use crate::workspace::policy;
use crate::workspace::records::{Aggregate, FieldSummary, Filter, Group, Op, match_expression};

const TAG_KEY: &str = "shown_version";

/// Writes shown rows in one transaction on a workspace's writer, under the workspace's
/// current rules. Every record write takes one (`records::upsert`), so none can skip the
/// index.
pub struct ShownWriter {
    masker: Masker,
}

impl ShownWriter {
    /// Brings the index in step with the workspace's current rules and masking version
    /// (rebuilding it if it was built under others), then writes under them. Call it
    /// inside the write transaction, after any change to the rules.
    pub fn open(conn: &Connection) -> Result<Self, WorkspaceError> {
        let rules = policy::load(conn)?.rules;
        let writer = Self {
            masker: Masker::new(rules.clone())?,
        };
        let current = tag(&rules);
        if stored_tag(conn)?.as_deref() != Some(current.as_str()) {
            writer.rebuild(conn, &current)?;
        }
        Ok(writer)
    }

    /// Empties the index and shows every live record again, tagged `current`.
    fn rebuild(&self, conn: &Connection, current: &str) -> rusqlite::Result<()> {
        let started = std::time::Instant::now();
        conn.execute_batch(
            "INSERT INTO shown_fts (shown_fts) VALUES ('delete-all');
             DELETE FROM shown_records;",
        )?;
        let mut stmt = conn.prepare(
            "SELECT rowid, collection, id, data, version, updated_at FROM records
             WHERE deleted = 0",
        )?;
        let mut rows = stmt.query([])?;
        let mut count = 0_u64;
        while let Some(row) = rows.next()? {
            let data: String = row.get(3)?;
            let data = serde_json::from_str(&data).unwrap_or(Value::Null);
            let (collection, id): (String, String) = (row.get(1)?, row.get(2)?);
            let written = Written {
                rowid: row.get(0)?,
                collection: &collection,
                id: &id,
                data: &data,
                version: row.get(4)?,
                updated_at: row.get(5)?,
            };
            self.put(conn, &written)?;
            count += 1;
        }
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![TAG_KEY, current],
        )?;
        tracing::info!(
            records = count,
            ms = started.elapsed().as_millis() as u64,
            "shown index rebuilt"
        );
        Ok(())
    }

    /// Writes the shown row of a record just written live (its old row, if any, went with
    /// the write: see the schema's triggers).
    pub fn put(&self, conn: &Connection, written: &Written<'_>) -> rusqlite::Result<()> {
        let shown = show(&self.masker, written.collection, written.id, written.data);
        let masked = serde_json::to_string(&shown.masked).unwrap_or_else(|_| "{}".into());
        conn.prepare_cached(
            "INSERT INTO shown_records (record, collection, id, data, masked, version, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            written.rowid,
            shown.collection,
            shown.id,
            shown.data.to_string(),
            masked,
            written.version,
            written.updated_at
        ])?;
        conn.prepare_cached("INSERT INTO shown_fts (rowid, text) VALUES (?1, ?2)")?
            .execute(params![written.rowid, shown.text])?;
        Ok(())
    }
}

fn stored_tag(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([TAG_KEY], |row| row.get(0))
        .optional()
}

/// Whether the index was built under `rules` and this binary's masking version. A read
/// that finds it not must not use it.
pub fn is_current(conn: &Connection, rules: &[MaskingRule]) -> rusqlite::Result<bool> {
    Ok(stored_tag(conn)?.as_deref() == Some(tag(rules).as_str()))
}

fn json_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Value> {
    let stored: String = row.get(index)?;
    Ok(serde_json::from_str(&stored).unwrap_or(Value::Null))
}

fn masked_column(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<BTreeMap<&'static str, usize>> {
    let stored: String = row.get(index)?;
    Ok(counts_from_json(&stored))
}

/// Full-text search over the records as shown, best match first: hits
/// `offset..offset + limit`.
pub fn search(
    conn: &Connection,
    query: &str,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<ShownHit>> {
    let Some(words) = match_expression(query) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT s.collection, s.id, s.data, s.masked
         FROM (SELECT rowid, rank FROM shown_fts WHERE shown_fts MATCH ?1
               ORDER BY rank LIMIT ?2 OFFSET ?3) AS f
         JOIN shown_records s ON s.record = f.rowid
         ORDER BY f.rank",
    )?;
    let rows = stmt.query_map(params![words, limit, offset], |row| {
        Ok(ShownHit {
            collection: row.get(0)?,
            id: row.get(1)?,
            text: text_of(&json_column(row, 2)?),
            masked: masked_column(row, 3)?,
        })
    })?;
    rows.collect()
}

const RECORD_COLUMNS: &str = "collection, id, data, version, updated_at, masked";

fn shown_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ShownRecord> {
    Ok(ShownRecord {
        collection: row.get(0)?,
        id: row.get(1)?,
        data: json_column(row, 2)?,
        version: row.get(3)?,
        updated_at: row.get(4)?,
        masked: masked_column(row, 5)?,
    })
}

/// The records shown under `collection` with `id`, oldest first: at most `limit`. More
/// than one record can show the same id (two addresses both shown `[EMAIL_1]`).
pub fn get(
    conn: &Connection,
    collection: &str,
    id: &str,
    limit: u32,
) -> rusqlite::Result<Vec<ShownRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM shown_records WHERE collection = ?1 AND id = ?2
         ORDER BY record LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![collection, id, limit], shown_row)?;
    rows.collect()
}

/// Collections as shown, with their record counts.
pub fn collections(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT collection, count(*) FROM shown_records GROUP BY collection ORDER BY collection",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// Whether any record is shown under `collection`.
pub fn has_collection(conn: &Connection, collection: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM shown_records WHERE collection = ?1)")?
        .query_row([collection], |row| row.get(0))
}

/// A shown collection's top-level fields as shown: name, JSON type, how many records.
pub fn field_summary(conn: &Connection, collection: &str) -> rusqlite::Result<Vec<FieldSummary>> {
    let mut stmt = conn.prepare(
        "SELECT f.key, f.type, count(*) FROM shown_records r, json_each(r.data) f
         WHERE r.collection = ?1
         GROUP BY f.key, f.type ORDER BY f.key, count(*) DESC, f.type",
    )?;
    let rows = stmt.query_map([collection], |row| {
        Ok(FieldSummary {
            name: row.get(0)?,
            kind: row.get(1)?,
            count: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// The JSON path of a top-level field, bound as a parameter, never spliced into SQL.
fn field_path(field: &str) -> String {
    format!("$.\"{}\"", field.replace('"', "\\\""))
}

/// A filter value as SQLite compares it: numbers as numbers, text as text, booleans as
/// 1 and 0 (as `json_extract` returns them).
fn sql_value(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Sql::Text(s.clone()),
        _ => Sql::Null,
    }
}

fn sql_to_json(value: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as Sql;
    match value {
        Sql::Null | Sql::Blob(_) => Value::Null,
        Sql::Integer(i) => Value::from(i),
        Sql::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Sql::Text(t) => Value::String(t),
    }
}

/// Bound parameters and the SQL for fields' shown values, numbered from 1.
#[derive(Default)]
struct Params {
    values: Vec<rusqlite::types::Value>,
}

impl Params {
    /// Binds `value`; returns its placeholder.
    fn bind(&mut self, value: rusqlite::types::Value) -> String {
        self.values.push(value);
        format!("?{}", self.values.len())
    }

    fn text(&mut self, text: &str) -> String {
        self.bind(rusqlite::types::Value::Text(text.to_string()))
    }

    /// `field`'s shown value: `json_extract(data, path)`.
    fn field(&mut self, field: &str) -> String {
        let path = self.text(&field_path(field));
        format!("json_extract(data, {path})")
    }

    /// `AND` conditions for the filters.
    fn filters(&mut self, filters: &[Filter]) -> String {
        let mut sql = String::new();
        for filter in filters {
            let shown = self.field(&filter.field);
            let value = self.bind(sql_value(&filter.value));
            let condition = match filter.op {
                Op::Eq => format!("{shown} = {value}"),
                Op::Ne => format!("{shown} IS NOT {value}"),
                Op::Lt => format!("{shown} < {value}"),
                Op::Lte => format!("{shown} <= {value}"),
                Op::Gt => format!("{shown} > {value}"),
                Op::Gte => format!("{shown} >= {value}"),
                Op::Contains => format!("instr(lower({shown}), lower({value})) > 0"),
            };
            sql.push_str(" AND ");
            sql.push_str(&condition);
        }
        sql
    }
}

/// Records shown under `collection` matching every filter, sorted by a field if asked,
/// then by shown id and age: `offset..offset + limit`. Field names are as shown and must
/// be ones the collection has (the caller checks them against `field_summary`).
pub fn query(
    conn: &Connection,
    collection: &str,
    filters: &[Filter],
    sort: Option<(&str, bool)>,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<ShownRecord>> {
    let mut params = Params::default();
    let collection = params.text(collection);
    let conditions = params.filters(filters);
    let order = match sort {
        Some((field, descending)) => {
            let direction = if descending { "DESC" } else { "ASC" };
            format!("{} {direction}, id, record", params.field(field))
        }
        None => "id, record".to_string(),
    };
    let limit = params.bind(rusqlite::types::Value::Integer(limit.into()));
    let offset = params.bind(rusqlite::types::Value::Integer(offset.into()));
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM shown_records
         WHERE collection = {collection}{conditions}
         ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.values), shown_row)?;
    rows.collect()
}

/// An aggregate over the records shown under `collection` matching the filters, by group
/// if a field is given; at most `max_groups` groups, by key. Field names as in `query`.
pub fn aggregate(
    conn: &Connection,
    collection: &str,
    function: Aggregate,
    field: Option<&str>,
    group_by: Option<&str>,
    filters: &[Filter],
    max_groups: u32,
) -> rusqlite::Result<Vec<Group>> {
    let mut params = Params::default();
    let collection = params.text(collection);
    let key = match group_by {
        Some(group) => params.field(group),
        None => "NULL".to_string(),
    };
    let function = match (function, field) {
        (Aggregate::Count, None) => "count(*)".to_string(),
        (function, Some(field)) => {
            let name = match function {
                Aggregate::Count => "count",
                Aggregate::Sum => "total",
                Aggregate::Avg => "avg",
                Aggregate::Min => "min",
                Aggregate::Max => "max",
            };
            format!("{name}({})", params.field(field))
        }
        // Only a count may go without a field; the caller checks.
        (_, None) => return Ok(Vec::new()),
    };
    let conditions = params.filters(filters);
    let max_groups = params.bind(rusqlite::types::Value::Integer(max_groups.into()));
    let sql = format!(
        "SELECT {key} AS key, {function}
         FROM shown_records WHERE collection = {collection}{conditions}
         GROUP BY key ORDER BY key LIMIT {max_groups}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.values), |row| {
        Ok(Group {
            key: sql_to_json(row.get(0)?),
            value: sql_to_json(row.get(1)?),
        })
    })?;
    rows.collect()
}
