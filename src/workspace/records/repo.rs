//! The records SQL: upserts, tombstones and reads, full-text search and field summaries,
//! on a workspace's database.

use std::sync::Arc;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::privacy::Masker;

use super::{
    Aggregate, CollectionName, FieldSummary, Filter, Group, Hit, Op, Record, RecordData, RecordId,
    SNIPPET_CLOSE, SNIPPET_OPEN,
};

/// Inserts or replaces a record; the version goes up by one on every change. Returns the
/// new version.
pub fn upsert(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
    data: &RecordData,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.query_row(
        "INSERT INTO records (collection, id, data, version, updated_at, deleted)
         VALUES (?1, ?2, ?3, 1, ?4, 0)
         ON CONFLICT (collection, id) DO UPDATE
            SET data = excluded.data, version = records.version + 1,
                updated_at = excluded.updated_at, deleted = 0
         RETURNING version",
        params![collection.as_str(), id.as_str(), data.to_json(), now],
        |row| row.get(0),
    )
}

/// Marks a record deleted (a tombstone, so the deletion syncs); `false` if there was no
/// live record.
pub fn tombstone(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE records SET deleted = 1, data = '{}', version = version + 1, updated_at = ?3
         WHERE collection = ?1 AND id = ?2 AND deleted = 0",
        params![collection.as_str(), id.as_str(), now],
    )?;
    Ok(changed == 1)
}

pub fn get(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
) -> rusqlite::Result<Option<Record>> {
    conn.query_row(
        "SELECT collection, id, data, version, updated_at, deleted FROM records
         WHERE collection = ?1 AND id = ?2",
        params![collection.as_str(), id.as_str()],
        record_row,
    )
    .optional()
}

fn record_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let data: String = row.get(2)?;
    Ok(Record {
        collection: row.get(0)?,
        id: row.get(1)?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        version: row.get(3)?,
        updated_at: row.get(4)?,
        deleted: row.get(5)?,
    })
}

/// One page of a collection's live records, by id.
pub fn page(
    conn: &Connection,
    collection: &CollectionName,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare(
        "SELECT collection, id, data, version, updated_at, deleted FROM records
         WHERE collection = ?1 AND deleted = 0 ORDER BY id LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![collection.as_str(), limit, offset], record_row)?;
    rows.collect()
}

/// Every live record, collection by collection (for exports).
pub fn all_live(conn: &Connection) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare(
        "SELECT collection, id, data, version, updated_at, deleted FROM records
         WHERE deleted = 0 ORDER BY collection, id",
    )?;
    let rows = stmt.query_map([], record_row)?;
    rows.collect()
}

/// Collections with their live record counts.
pub fn collections(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT collection, count(*) FROM records WHERE deleted = 0
         GROUP BY collection ORDER BY collection",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

pub fn field_summary(
    conn: &Connection,
    collection: &CollectionName,
) -> rusqlite::Result<Vec<FieldSummary>> {
    let mut stmt = conn.prepare(
        "SELECT f.key, f.type, count(*) FROM records r, json_each(r.data) f
         WHERE r.collection = ?1 AND r.deleted = 0
         GROUP BY f.key, f.type ORDER BY f.key, count(*) DESC, f.type",
    )?;
    let rows = stmt.query_map([collection.as_str()], |row| {
        Ok(FieldSummary {
            name: row.get(0)?,
            kind: row.get(1)?,
            count: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// Full-text search over live records, each hit with a snippet of its indexed text.
pub fn search(
    conn: &Connection,
    query: &str,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<Hit>> {
    let Some(words) = match_expression(query) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT collection, id, snippet(records_fts, 2, ?2, ?3, '…', 12) FROM records_fts
         WHERE records_fts MATCH ?1 ORDER BY rank LIMIT ?4 OFFSET ?5",
    )?;
    let rows = stmt.query_map(
        params![words, SNIPPET_OPEN, SNIPPET_CLOSE, limit, offset],
        |row| {
            Ok(Hit {
                collection: row.get(0)?,
                id: row.get(1)?,
                snippet: row.get(2)?,
            })
        },
    )?;
    rows.collect()
}

/// Full-text search over live records, best match first, each hit the whole record.
pub fn search_records(
    conn: &Connection,
    query: &str,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<Record>> {
    let Some(words) = match_expression(query) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT r.collection, r.id, r.data, r.version, r.updated_at, r.deleted
         FROM (SELECT rowid, rank FROM records_fts WHERE records_fts MATCH ?1
               ORDER BY rank LIMIT ?2 OFFSET ?3) AS f
         JOIN records r ON r.rowid = f.rowid
         ORDER BY f.rank",
    )?;
    let rows = stmt.query_map(params![words, limit, offset], record_row)?;
    rows.collect()
}

/// The FTS5 query for `query`: its words, each quoted, so input is never read as FTS
/// syntax and cannot fail to parse. `None` when it has no words.
fn match_expression(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Whether an error is a statement interrupted at its deadline (`Database::read_within`).
pub fn interrupted(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::OperationInterrupted
    )
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

/// The SQL function `sbx_shown(field, value)`: `value` as the masking rules show it when it
/// is the value of `field` (the value itself when they leave it unchanged).
const SHOWN: &str = "sbx_shown";

/// Keeps `sbx_shown` registered on a connection, with one workspace's rules, until dropped.
/// Queries and aggregates need it: they filter, sort, group and aggregate on values as the
/// caller is shown them, so no answer depends on a value the caller sees masked (a filter
/// `card contains "4"` cannot spell out a masked card number, nor `max` reveal its order),
/// and an alias the caller was shown matches where the term stands.
pub struct AsShown<'c> {
    conn: &'c Connection,
}

pub fn as_shown(conn: &Connection, masker: Arc<Masker>) -> rusqlite::Result<AsShown<'_>> {
    conn.create_scalar_function(
        SHOWN,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let field: String = ctx.get(0)?;
            let value: rusqlite::types::Value = ctx.get(1)?;
            // Masked as a record's field is, so number and date-of-birth rules apply.
            let as_field = serde_json::json!({ field.as_str(): sql_to_json(value.clone()) });
            let (masked, _) = masker.mask_json(&as_field);
            Ok(match masked == as_field {
                true => value,
                false => sql_value(&masked[field.as_str()]),
            })
        },
    )?;
    Ok(AsShown { conn })
}

impl Drop for AsShown<'_> {
    fn drop(&mut self) {
        // Pooled connections outlive the query; the rules must not.
        if let Err(e) = self.conn.remove_function(SHOWN, 2) {
            tracing::warn!(error = %e, "could not unregister sbx_shown");
        }
    }
}

/// Bound parameters and the SQL for fields' values as shown, numbered from `first`.
struct Params {
    values: Vec<rusqlite::types::Value>,
    first: usize,
}

impl Params {
    fn new(first: usize) -> Self {
        Self {
            values: Vec::new(),
            first,
        }
    }

    /// Binds `value`; returns its placeholder.
    fn bind(&mut self, value: rusqlite::types::Value) -> String {
        self.values.push(value);
        format!("?{}", self.first + self.values.len() - 1)
    }

    /// `field`'s value as shown: `sbx_shown(name, json_extract(data, path))`.
    fn shown(&mut self, field: &str) -> String {
        let name = self.bind(rusqlite::types::Value::Text(field.to_string()));
        let path = self.bind(rusqlite::types::Value::Text(field_path(field)));
        format!("{SHOWN}({name}, json_extract(data, {path}))")
    }

    /// `AND` conditions for the filters, on values as shown.
    fn filters(&mut self, filters: &[Filter]) -> String {
        let mut sql = String::new();
        for filter in filters {
            let shown = self.shown(&filter.field);
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

/// Live records of a collection matching every filter, sorted by a field if asked. Needs
/// `as_shown` on the connection.
pub fn query(
    conn: &Connection,
    collection: &CollectionName,
    filters: &[Filter],
    sort: Option<(&str, bool)>,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<Record>> {
    let mut params = Params::new(1);
    let collection = params.bind(rusqlite::types::Value::Text(
        collection.as_str().to_string(),
    ));
    let conditions = params.filters(filters);
    let order = match sort {
        Some((field, descending)) => {
            let direction = if descending { "DESC" } else { "ASC" };
            format!("{} {direction}, id", params.shown(field))
        }
        None => "id".to_string(),
    };
    let limit = params.bind(rusqlite::types::Value::Integer(limit.into()));
    let offset = params.bind(rusqlite::types::Value::Integer(offset.into()));
    let sql = format!(
        "SELECT collection, id, data, version, updated_at, deleted FROM records
         WHERE collection = {collection} AND deleted = 0{conditions}
         ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.values), record_row)?;
    rows.collect()
}

/// An aggregate over live records matching the filters, by group if a field is given;
/// at most `max_groups` groups, by key. Needs `as_shown` on the connection.
pub fn aggregate(
    conn: &Connection,
    collection: &CollectionName,
    function: Aggregate,
    field: Option<&str>,
    group_by: Option<&str>,
    filters: &[Filter],
    max_groups: u32,
) -> rusqlite::Result<Vec<Group>> {
    let mut params = Params::new(1);
    let collection = params.bind(rusqlite::types::Value::Text(
        collection.as_str().to_string(),
    ));
    let key = match group_by {
        Some(group) => params.shown(group),
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
            format!("{name}({})", params.shown(field))
        }
        // Only a count may go without a field; the caller checks.
        (_, None) => return Ok(Vec::new()),
    };
    let conditions = params.filters(filters);
    let max_groups = params.bind(rusqlite::types::Value::Integer(max_groups.into()));
    let sql = format!(
        "SELECT {key} AS key, {function}
         FROM records WHERE collection = {collection} AND deleted = 0{conditions}
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

fn sql_to_json(value: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as Sql;
    match value {
        Sql::Null | Sql::Blob(_) => Value::Null,
        Sql::Integer(i) => Value::from(i),
        Sql::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Sql::Text(t) => Value::String(t),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workspace::records::RecordLimits;

    const LIMITS: RecordLimits = RecordLimits {
        max_record_bytes: 1024,
        max_fields: 10,
    };

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate_workspace_for_tests(&mut conn);
        conn
    }

    fn put(conn: &Connection, collection: &str, id: &str, data: Value) -> i64 {
        let data = RecordData::new(data, LIMITS).unwrap();
        upsert(
            conn,
            &CollectionName::parse(collection).unwrap(),
            &RecordId::parse(id).unwrap(),
            &data,
            100,
        )
        .unwrap()
    }

    #[test]
    fn search_follows_inserts_updates_and_tombstones() {
        let conn = db();
        assert_eq!(
            put(
                &conn,
                "invoices",
                "1",
                json!({"customer": "Ada Lovelace", "total": 42})
            ),
            1
        );
        put(
            &conn,
            "invoices",
            "2",
            json!({"customer": "Charles Babbage", "notes": {"memo": "engine parts"}}),
        );
        let hits = search(&conn, "lovelace", 10, 0).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, "1");
        assert!(
            hits[0]
                .snippet
                .contains(&format!("{SNIPPET_OPEN}Lovelace{SNIPPET_CLOSE}")),
            "{:?}",
            hits[0]
        );
        assert_eq!(
            search(&conn, "engine", 10, 0).unwrap().len(),
            1,
            "nested values are indexed"
        );

        assert_eq!(
            put(&conn, "invoices", "1", json!({"customer": "Grace Hopper"})),
            2,
            "version goes up"
        );
        assert!(
            search(&conn, "lovelace", 10, 0).unwrap().is_empty(),
            "the old text left the index"
        );
        assert_eq!(search(&conn, "hopper", 10, 0).unwrap().len(), 1);

        let (invoices, one) = (
            CollectionName::parse("invoices").unwrap(),
            RecordId::parse("1").unwrap(),
        );
        assert!(tombstone(&conn, &invoices, &one, 200).unwrap());
        assert!(
            !tombstone(&conn, &invoices, &one, 201).unwrap(),
            "already deleted"
        );
        assert!(search(&conn, "hopper", 10, 0).unwrap().is_empty());
        let record = get(&conn, &invoices, &one).unwrap().unwrap();
        assert!(record.deleted);
        assert_eq!(record.version, 3);
        assert_eq!(
            collections(&conn).unwrap(),
            vec![("invoices".to_string(), 1)]
        );
    }

    #[test]
    fn search_input_is_words_not_syntax() {
        let conn = db();
        put(&conn, "notes", "a", json!({"text": "alpha beta"}));
        for hostile in [
            "\"",
            "alpha OR",
            "NEAR(",
            "*",
            "-beta",
            "a\"b",
            "' OR 1=1 --",
        ] {
            assert!(search(&conn, hostile, 10, 0).is_ok(), "{hostile}");
        }
        assert_eq!(
            search(&conn, "alpha OR", 10, 0).unwrap().len(),
            0,
            "OR is a word here"
        );
        assert_eq!(search(&conn, "beta!", 10, 0).unwrap().len(), 1);
    }

    #[test]
    fn paging_walks_the_results() {
        let conn = db();
        for n in 0..5 {
            put(
                &conn,
                "notes",
                &n.to_string(),
                json!({"text": format!("shared word {n}")}),
            );
        }
        let first = search(&conn, "shared", 2, 0).unwrap();
        let second = search(&conn, "shared", 2, 2).unwrap();
        let third = search(&conn, "shared", 2, 4).unwrap();
        assert_eq!((first.len(), second.len(), third.len()), (2, 2, 1));
        let mut ids: Vec<String> = first
            .iter()
            .chain(&second)
            .chain(&third)
            .map(|h| h.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn fields_are_summarised_per_collection() {
        let conn = db();
        put(&conn, "people", "1", json!({"name": "Ada", "age": 36}));
        put(
            &conn,
            "people",
            "2",
            json!({"name": "Alan", "age": "unknown"}),
        );
        let summary = field_summary(&conn, &CollectionName::parse("people").unwrap()).unwrap();
        let seen: Vec<(&str, &str, i64)> = summary
            .iter()
            .map(|f| (f.name.as_str(), f.kind.as_str(), f.count))
            .collect();
        assert_eq!(
            seen,
            [
                ("age", "integer", 1),
                ("age", "text", 1),
                ("name", "text", 2)
            ]
        );
    }

    #[test]
    fn queries_and_aggregates_filter_sort_and_group_with_bound_values() {
        let conn = db();
        put(
            &conn,
            "orders",
            "o1",
            json!({"status": "open", "total": 10, "city": "Pune"}),
        );
        put(
            &conn,
            "orders",
            "o2",
            json!({"status": "paid", "total": 25, "city": "Pune"}),
        );
        put(
            &conn,
            "orders",
            "o3",
            json!({"status": "open", "total": 5, "city": "Delhi"}),
        );
        let orders = CollectionName::parse("orders").unwrap();
        let _shown = as_shown(&conn, Arc::new(Masker::new(Vec::new()).unwrap())).unwrap();
        let open = Filter {
            field: "status".into(),
            op: Op::Eq,
            value: json!("open"),
        };
        let found = query(
            &conn,
            &orders,
            std::slice::from_ref(&open),
            Some(("total", true)),
            10,
            0,
        )
        .unwrap();
        let ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["o1", "o3"]);
        let big = Filter {
            field: "total".into(),
            op: Op::Gte,
            value: json!(10),
        };
        assert_eq!(query(&conn, &orders, &[big], None, 10, 0).unwrap().len(), 2);
        let sneaky = Filter {
            field: "status".into(),
            op: Op::Eq,
            value: json!("open' OR '1'='1"),
        };
        assert!(
            query(&conn, &orders, &[sneaky], None, 10, 0)
                .unwrap()
                .is_empty()
        );

        let sums = aggregate(
            &conn,
            &orders,
            Aggregate::Sum,
            Some("total"),
            Some("city"),
            &[],
            10,
        )
        .unwrap();
        assert_eq!(
            sums,
            vec![
                Group {
                    key: json!("Delhi"),
                    value: json!(5.0)
                },
                Group {
                    key: json!("Pune"),
                    value: json!(35.0)
                },
            ]
        );
        let count = aggregate(&conn, &orders, Aggregate::Count, None, None, &[open], 10).unwrap();
        assert_eq!(
            count,
            vec![Group {
                key: Value::Null,
                value: json!(2)
            }]
        );
    }

    #[test]
    fn filters_sorts_and_aggregates_see_values_as_shown() {
        let conn = db();
        put(
            &conn,
            "people",
            "p1",
            json!({"card": "4111 1111 1111 1111", "city": "Pune"}),
        );
        put(
            &conn,
            "people",
            "p2",
            json!({"card": "none on file", "city": "Acme Corp"}),
        );
        put(
            &conn,
            "people",
            "p3",
            json!({"card": "none on file", "city": "Pune"}),
        );
        let people = CollectionName::parse("people").unwrap();
        let rules = vec![crate::privacy::MaskingRule {
            term: "Acme Corp".into(),
            action: crate::privacy::RuleAction::Alias("Client A".into()),
        }];
        let shown = as_shown(&conn, Arc::new(Masker::new(rules).unwrap())).unwrap();
        let ids = |filters: &[Filter], sort: Option<(&str, bool)>| -> Vec<String> {
            query(&conn, &people, filters, sort, 10, 0)
                .unwrap()
                .into_iter()
                .map(|r| r.id.as_str().to_string())
                .collect()
        };
        let filter = |field: &str, op: Op, value: &str| Filter {
            field: field.into(),
            op,
            value: json!(value),
        };
        // Nothing about the masked number can be asked: right and wrong guesses, digits
        // and ranges all answer the same.
        assert!(ids(&[filter("card", Op::Contains, "4")], None).is_empty());
        let right = ids(&[filter("card", Op::Ne, "4111 1111 1111 1111")], None);
        let wrong = ids(&[filter("card", Op::Ne, "5555 5555 5555 4444")], None);
        assert_eq!(right, ["p1", "p2", "p3"]);
        assert_eq!(right, wrong);
        assert_eq!(
            ids(&[filter("card", Op::Gte, "4")], None),
            ids(&[filter("card", Op::Gte, "5")], None)
        );
        assert_eq!(ids(&[filter("card", Op::Eq, "[CARD_1]")], None), ["p1"]);
        // The alias matches where the term stands; the term itself does not.
        assert_eq!(ids(&[filter("city", Op::Eq, "Client A")], None), ["p2"]);
        assert!(ids(&[filter("city", Op::Contains, "Acme")], None).is_empty());
        assert_eq!(ids(&[], Some(("city", false))), ["p2", "p1", "p3"]);

        let by_card = aggregate(
            &conn,
            &people,
            Aggregate::Count,
            None,
            Some("card"),
            &[],
            10,
        )
        .unwrap();
        assert_eq!(
            by_card,
            vec![
                Group {
                    key: json!("[CARD_1]"),
                    value: json!(1)
                },
                Group {
                    key: json!("none on file"),
                    value: json!(2)
                }
            ]
        );
        let max = aggregate(&conn, &people, Aggregate::Max, Some("card"), None, &[], 10).unwrap();
        assert_eq!(max[0].value, json!("none on file"));
        drop(shown);
        // Without the rules registered, the query cannot run at all.
        assert!(query(&conn, &people, &[filter("card", Op::Eq, "x")], None, 10, 0).is_err());
    }
}
