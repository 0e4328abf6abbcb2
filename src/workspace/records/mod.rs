//! Records: JSON objects in named collections inside a workspace's database, with their
//! full-text index (kept in step by the schema's triggers) and per-collection field
//! summaries, for members. AI clients read the shown index instead (`workspace::shown`),
//! which every write here keeps in step. Sizes and shapes are checked against explicit
//! limits before anything is written; the SQL is in `repo`.

mod repo;

pub use repo::{
    all_live, collections, field_summary, get, interrupted, match_expression, page, search,
    tombstone, upsert,
};

use regex::Regex;

use crate::agent::wire::{field_count, record_id_ok};
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
        record_id_ok(raw)
            .then(|| Self(raw.to_string()))
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
        if field_count(&map) > limits.max_fields {
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

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub collection: String,
    pub id: String,
    pub data: Value,
    pub version: i64,
    pub updated_at: i64,
    pub deleted: bool,
}

/// A top-level field of a collection: its name, the JSON type seen, and in how many
/// records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSummary {
    pub name: String,
    pub kind: String,
    pub count: i64,
}

/// One search hit, with a snippet whose matches are wrapped in `open`/`close` markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub collection: String,
    pub id: String,
    pub snippet: String,
}

/// A comparison a query may make on a field; each maps to one fixed piece of SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    /// Text contains, ignoring case.
    Contains,
}

impl std::str::FromStr for Op {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "contains" => Self::Contains,
            _ => return Err(()),
        })
    }
}

/// A filter on one top-level field. The field must be one the collection has (callers
/// check it against the field summary), so no name reaches SQL that was not already there.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    pub value: Value,
}

/// Aggregate functions over one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl std::str::FromStr for Aggregate {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            _ => return Err(()),
        })
    }
}

/// One group of an aggregate: its key (null without grouping) and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub key: Value,
    pub value: Value,
}

pub const SNIPPET_OPEN: &str = "\u{2}";
pub const SNIPPET_CLOSE: &str = "\u{3}";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: RecordLimits = RecordLimits {
        max_record_bytes: 1024,
        max_fields: 10,
    };

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
