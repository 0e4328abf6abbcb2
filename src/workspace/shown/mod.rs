//! The shown index: every live record of a workspace as an AI client is shown it, and a
//! full-text index over that. MCP answers come from here alone, so every hit, cursor,
//! count and group it gives, and the work behind it, is a function of the records as
//! shown, never of a value behind a mask: a right guess at a masked email and a wrong one
//! find the same nothing, in the same time. Members' own search keeps the raw index.
//!
//! A record's shown row is written by `records::upsert` in the transaction that writes the
//! record, and dropped by the schema's triggers whenever the record changes or goes, so
//! it is never stale. The index is tagged with the rules and `MASKING_VERSION` it was built
//! under; a change of rules rebuilds it in the same transaction, and a reader that finds
//! the tag out of date (a new binary with other detectors) has it rebuilt on the writer
//! before reading (`service::as_shown`).

mod repo;

pub use repo::{
    ShownWriter, aggregate, collections, field_summary, get, has_collection, is_current, query,
    search,
};

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::privacy::{MASKING_VERSION, Masker, MaskingRule, count_category};

/// A record as shown: collection, id and data masked; with what masking it replaced.
#[derive(Clone, Debug, PartialEq)]
pub struct ShownRecord {
    pub collection: String,
    pub id: String,
    pub data: Value,
    pub version: i64,
    pub updated_at: i64,
    /// Values masked to show it (its collection, id and data), per category.
    pub masked: BTreeMap<&'static str, usize>,
}

/// A search hit: the record's shown collection and id, its whole shown text (for a
/// snippet), and what masking it replaced.
#[derive(Clone, Debug, PartialEq)]
pub struct ShownHit {
    pub collection: String,
    pub id: String,
    pub text: String,
    pub masked: BTreeMap<&'static str, usize>,
}

/// A record just written live: what its shown row is made from.
pub struct Written<'a> {
    /// The record's rowid in `records`.
    pub rowid: i64,
    pub collection: &'a str,
    pub id: &'a str,
    pub data: &'a Value,
    pub version: i64,
    pub updated_at: i64,
}

/// Names the rules and masking version an index is built under.
pub fn tag(rules: &[MaskingRule]) -> String {
    let mut hash = Sha256::new();
    hash.update(MASKING_VERSION.to_le_bytes());
    crate::workspace::policy::hash_rules(&mut hash, rules);
    hex::encode(&hash.finalize()[..8])
}

/// What goes into a shown row: the record masked, the text indexed and the counts.
struct Shown {
    collection: String,
    id: String,
    data: Value,
    text: String,
    masked: BTreeMap<&'static str, usize>,
}

/// `collection`, `id` and `data` as `masker` shows them. The collection and the id are
/// masked each on their own, the data as one value (so `[EMAIL_1]` is the same address
/// wherever it stands in the record).
fn show(masker: &Masker, collection: &str, id: &str, data: &Value) -> Shown {
    let collection = masker.mask(collection);
    let id = masker.mask(id);
    let (data, mut masked) = masker.mask_json(data);
    for (category, n) in collection.counts.into_iter().chain(id.counts) {
        *masked.entry(category).or_default() += n;
    }
    Shown {
        collection: collection.text,
        id: id.text,
        text: text_of(&data),
        data,
        masked,
    }
}

/// A shown record's string and number values, in one text: what search matches and
/// snippets are cut from.
fn text_of(data: &Value) -> String {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut texts = Vec::new();
    collect(data, &mut texts);
    texts.join(" · ")
}

/// Counts as stored (`{"EMAIL": 2}`), read back; a name this binary does not know is left
/// out.
fn counts_from_json(stored: &str) -> BTreeMap<&'static str, usize> {
    let parsed: BTreeMap<String, usize> = serde_json::from_str(stored).unwrap_or_default();
    parsed
        .into_iter()
        .filter_map(|(name, n)| Some((count_category(&name)?, n)))
        .collect()
}

#[cfg(test)]
mod tests;
