//! The records SQL: upserts, tombstones and reads, full-text search and field summaries,
//! on a workspace's database.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{
    CollectionName, FieldSummary, Hit, Record, RecordData, RecordId, SNIPPET_CLOSE, SNIPPET_OPEN,
};
use crate::workspace::shown::{ShownWriter, Written};

/// Inserts or replaces a record; the version goes up by one on every change, and `shown`
/// writes the record's shown row in the same transaction. Returns the new version.
pub fn upsert(
    conn: &Connection,
    shown: &ShownWriter,
    collection: &CollectionName,
    id: &RecordId,
    data: &RecordData,
    now: i64,
) -> rusqlite::Result<i64> {
    let (rowid, version) = conn.query_row(
        "INSERT INTO records (collection, id, data, version, updated_at, deleted)
         VALUES (?1, ?2, ?3, 1, ?4, 0)
         ON CONFLICT (collection, id) DO UPDATE
            SET data = excluded.data, version = records.version + 1,
                updated_at = excluded.updated_at, deleted = 0
         RETURNING rowid, version",
        params![collection.as_str(), id.as_str(), data.to_json(), now],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let written = Written {
        rowid,
        collection: collection.as_str(),
        id: id.as_str(),
        data: &data.to_value(),
        version,
        updated_at: now,
    };
    shown.put(conn, &written)?;
    Ok(version)
}

/// Marks a record deleted (a tombstone, so the deletion syncs); `false` if there was no
/// live record. Its shown row goes with it (the schema's triggers).
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

/// The FTS5 query for `query`: its words, each quoted, so input is never read as FTS
/// syntax and cannot fail to parse. `None` when it has no words.
pub fn match_expression(query: &str) -> Option<String> {
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
            &ShownWriter::open(conn).unwrap(),
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
}
