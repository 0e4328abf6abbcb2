//! Records: JSON objects in named collections inside a workspace's database, with their
//! full-text index (kept in step by the schema's triggers) and per-collection field
//! summaries. Sizes and shapes are checked against explicit limits before anything is
//! written.

use regex::Regex;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

/// Limits on what a record may be; from the config.
#[derive(Clone, Copy, Debug)]
pub struct RecordLimits {
    pub max_record_bytes: usize,
    pub max_fields: usize,
}

/// What a record written into a workspace must satisfy: the limits, and the configured
/// pattern for collection names.
#[derive(Clone, Debug)]
pub struct RecordRules {
    pub limits: RecordLimits,
    collection_pattern: Regex,
}

impl RecordRules {
    /// `None` if the pattern does not compile (the config check refuses such a pattern
    /// before start-up).
    pub fn new(limits: RecordLimits, collection_pattern: &str) -> Option<Self> {
        let collection_pattern = Regex::new(&format!("^(?:{collection_pattern})$")).ok()?;
        Some(Self {
            limits,
            collection_pattern,
        })
    }

    pub fn from_config(config: &crate::config::Records) -> Option<Self> {
        let limits = RecordLimits {
            max_record_bytes: config.max_record_bytes,
            max_fields: config.max_fields,
        };
        Self::new(limits, &config.collection_name_pattern)
    }

    /// A collection name a new record may use: the shape every name has, and the pattern.
    pub fn collection(&self, raw: &str) -> Result<CollectionName, RecordError> {
        let name = CollectionName::parse(raw)?;
        match self.collection_pattern.is_match(raw) {
            true => Ok(name),
            false => Err(RecordError::CollectionName),
        }
    }

    /// The pattern a new collection's name must match, anchored.
    pub fn collection_pattern(&self) -> &str {
        self.collection_pattern.as_str()
    }

    pub fn data(&self, value: Value) -> Result<RecordData, RecordError> {
        RecordData::new(value, self.limits)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the collection name is not allowed here")]
    CollectionName,
    #[error("a record id is 1 to 200 visible characters")]
    RecordId,
    #[error("a record must be a JSON object")]
    NotAnObject,
    #[error("the record is larger than allowed")]
    TooLarge,
    #[error("the record has more fields than allowed")]
    TooManyFields,
}

/// A collection's name: 1 to 64 characters of ASCII letters, digits, `_` and `-`, starting
/// with a letter or digit, so it is safe in paths, URLs and logs. Writes also check the
/// configured pattern (`RecordRules::collection`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    pub fn parse(raw: &str) -> Result<Self, RecordError> {
        let mut chars = raw.chars();
        let ok = (1..=64).contains(&raw.len())
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        ok.then(|| Self(raw.to_string()))
            .ok_or(RecordError::CollectionName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A record's id within its collection, as the source system names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordId(String);

impl RecordId {
    pub fn parse(raw: &str) -> Result<Self, RecordError> {
        let ok = (1..=200).contains(&raw.chars().count()) && !raw.chars().any(char::is_control);
        ok.then(|| Self(raw.to_string()))
            .ok_or(RecordError::RecordId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A record's content, checked against the limits.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordData(Map<String, Value>);

impl RecordData {
    pub fn new(value: Value, limits: RecordLimits) -> Result<Self, RecordError> {
        let Value::Object(map) = value else {
            return Err(RecordError::NotAnObject);
        };
        if count_fields(&map) > limits.max_fields {
            return Err(RecordError::TooManyFields);
        }
        let data = Self(map);
        if data.to_json().len() > limits.max_record_bytes {
            return Err(RecordError::TooLarge);
        }
        Ok(data)
    }

    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// Fields at every depth, so nesting does not dodge the limit.
fn count_fields(map: &Map<String, Value>) -> usize {
    map.values()
        .map(|value| match value {
            Value::Object(inner) => 1 + count_fields(inner),
            _ => 1,
        })
        .sum()
}

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub collection: String,
    pub id: String,
    pub data: Value,
    pub version: i64,
    pub updated_at: i64,
    pub deleted: bool,
}

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

/// A top-level field of a collection: its name, the JSON type seen, and in how many
/// records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSummary {
    pub name: String,
    pub kind: String,
    pub count: i64,
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

/// One search hit, with a snippet whose matches are wrapped in `open`/`close` markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub collection: String,
    pub id: String,
    pub snippet: String,
}

pub const SNIPPET_OPEN: &str = "\u{2}";
pub const SNIPPET_CLOSE: &str = "\u{3}";

/// Full-text search over live records. The query is treated as words, never as FTS
/// syntax, so any input is safe and cannot fail to parse.
pub fn search(
    conn: &Connection,
    query: &str,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<Hit>> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\""))
        .collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT collection, id, snippet(records_fts, 2, ?2, ?3, '…', 12) FROM records_fts
         WHERE records_fts MATCH ?1 ORDER BY rank LIMIT ?4 OFFSET ?5",
    )?;
    let rows = stmt.query_map(
        params![words.join(" "), SNIPPET_OPEN, SNIPPET_CLOSE, limit, offset],
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
    fn limits_and_names_are_enforced() {
        let rules = RecordRules::new(LIMITS, "[a-z][a-z0-9_]{0,63}").unwrap();
        assert!(rules.collection("invoices_2026").is_ok());
        for bad in [
            "",
            "with space",
            "semi;colon",
            "../up",
            "_x",
            &"x".repeat(65),
        ] {
            assert_eq!(
                CollectionName::parse(bad),
                Err(RecordError::CollectionName),
                "{bad:?}"
            );
        }
        // The configured pattern narrows what writes may use; reads take any safe name.
        for narrower in ["Invoices", "2026", "a-b"] {
            assert!(CollectionName::parse(narrower).is_ok(), "{narrower:?}");
            assert_eq!(
                rules.collection(narrower),
                Err(RecordError::CollectionName),
                "{narrower:?}"
            );
        }
        assert!(RecordRules::new(LIMITS, "(unclosed").is_none());
        assert_eq!(RecordId::parse("line\nbreak"), Err(RecordError::RecordId));
        assert_eq!(
            RecordData::new(json!([1, 2]), LIMITS),
            Err(RecordError::NotAnObject)
        );
        let wide: Map<String, Value> = (0..11).map(|n| (format!("f{n}"), json!(n))).collect();
        assert_eq!(
            RecordData::new(Value::Object(wide), LIMITS),
            Err(RecordError::TooManyFields)
        );
        let deep =
            json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": 1}}}}}}}}}}});
        assert_eq!(
            RecordData::new(deep, LIMITS),
            Err(RecordError::TooManyFields),
            "nesting counts"
        );
        assert_eq!(
            RecordData::new(json!({"big": "x".repeat(2000)}), LIMITS),
            Err(RecordError::TooLarge)
        );
    }
}
