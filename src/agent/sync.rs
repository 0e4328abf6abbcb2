//! The sync pipeline's pure steps: a batch is parsed into checked changes (every limit
//! applied before anything is written), hashed for idempotency, and passed through the
//! server's own privacy pass.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::error::AgentError;
use super::wire::{self, ChangeOp, SyncBatch};
use crate::privacy::Masker;
use crate::workspace::records::{CollectionName, RecordData, RecordId, RecordRules};

pub struct ParsedChange {
    pub collection: CollectionName,
    pub id: RecordId,
    pub op: ParsedOp,
}

pub enum ParsedOp {
    Upsert(RecordData),
    Delete,
}

pub struct DeviceRedaction {
    pub policy_version: String,
    pub counts: BTreeMap<String, usize>,
}

/// At most this many categories in a redaction signal, each named in `[A-Z_]`.
const MAX_SIGNAL_CATEGORIES: usize = 32;

/// A batch whose every part passed its checks.
pub struct ParsedBatch {
    pub idempotency_key: String,
    /// The redaction signal: the policy version applied and the device's counts.
    pub redaction: Option<DeviceRedaction>,
    pub changes: Vec<ParsedChange>,
    /// SHA-256 of the batch's content, so a key reused for other content is caught.
    pub request_hash: [u8; 32],
}

pub fn parse_batch(
    batch: SyncBatch,
    rules: &RecordRules,
    max_changes: usize,
) -> Result<ParsedBatch, AgentError> {
    let key_ok = wire::IDEMPOTENCY_KEY_CHARS.contains(&batch.idempotency_key.len())
        && batch
            .idempotency_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !key_ok {
        return Err(AgentError::InvalidIdempotencyKey);
    }
    if batch.changes.len() > max_changes {
        return Err(AgentError::TooManyChanges);
    }
    if let Some(signal) = &batch.redaction {
        let names_ok = signal.counts.keys().all(|k| {
            (1..=32).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        });
        if signal.counts.len() > MAX_SIGNAL_CATEGORIES
            || !names_ok
            || signal.policy_version.len() > 64
        {
            return Err(AgentError::InvalidRedactionSignal);
        }
    }
    // Serialised back, the parsed batch is canonical (object keys sorted), so the hash
    // does not depend on how the agent spaced or ordered its JSON.
    let request_hash: [u8; 32] = Sha256::digest(serde_json::to_vec(&batch)?).into();
    let changes = batch
        .changes
        .into_iter()
        .map(|change| {
            Ok(ParsedChange {
                collection: rules.collection(&change.collection)?,
                id: RecordId::parse(&change.id)?,
                op: match change.op {
                    ChangeOp::Upsert { data } => ParsedOp::Upsert(rules.data(data)?),
                    ChangeOp::Delete => ParsedOp::Delete,
                },
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(AgentError::InvalidChange)?;
    Ok(ParsedBatch {
        idempotency_key: batch.idempotency_key,
        redaction: batch.redaction.map(|r| DeviceRedaction {
            policy_version: r.policy_version,
            counts: r.counts,
        }),
        changes,
        request_hash,
    })
}

/// Runs the workspace's masking rules and detectors over every record as a backstop to the
/// agent's own pass, and counts per category what it still found.
pub fn backstop(
    changes: &mut [ParsedChange],
    masker: &Masker,
    rules: &RecordRules,
) -> Result<BTreeMap<String, usize>, AgentError> {
    let mut caught: BTreeMap<String, usize> = BTreeMap::new();
    for change in changes.iter_mut() {
        let ParsedOp::Upsert(data) = &change.op else {
            continue;
        };
        let (masked, counts) = masker.mask_json(&data.to_value());
        if counts.is_empty() {
            continue;
        }
        for (category, n) in counts {
            *caught.entry(category.to_string()).or_default() += n;
        }
        // Placeholders can be longer than what they replace: the limits are checked again.
        change.op = ParsedOp::Upsert(rules.data(masked).map_err(AgentError::InvalidChange)?);
    }
    Ok(caught)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::privacy::{MaskingRule, RuleAction};
    use crate::workspace::records::RecordLimits;

    fn rules() -> RecordRules {
        let limits = RecordLimits {
            max_record_bytes: 1024,
            max_fields: 20,
        };
        RecordRules::new(limits, "[a-z][a-z0-9_]{0,63}").unwrap()
    }

    fn batch(value: serde_json::Value) -> SyncBatch {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_request_hash_ignores_formatting_but_not_content() {
        let a = batch(json!({"idempotency_key": "batch-0001", "changes": [
            {"collection": "people", "id": "1", "op": "upsert", "data": {"a": 1, "b": 2}}]}));
        let b = batch(json!({"changes": [
            {"op": "upsert", "data": {"b": 2, "a": 1}, "id": "1", "collection": "people"}],
            "idempotency_key": "batch-0001"}));
        let c = batch(json!({"idempotency_key": "batch-0001", "changes": [
            {"collection": "people", "id": "1", "op": "upsert", "data": {"a": 1, "b": 3}}]}));
        let hash = |b| parse_batch(b, &rules(), 10).unwrap().request_hash;
        assert_eq!(hash(a), hash(b));
        let a_again = batch(json!({"idempotency_key": "batch-0001", "changes": [
            {"collection": "people", "id": "1", "op": "upsert", "data": {"a": 1, "b": 2}}]}));
        assert_ne!(hash(a_again), hash(c));
    }

    #[test]
    fn limits_are_checked_before_anything_is_written() {
        let too_many = batch(json!({"idempotency_key": "batch-0001", "changes": [
            {"collection": "people", "id": "1", "op": "delete"},
            {"collection": "people", "id": "2", "op": "delete"}]}));
        assert!(matches!(
            parse_batch(too_many, &rules(), 1),
            Err(AgentError::TooManyChanges)
        ));
        let bad_key = batch(json!({"idempotency_key": "short", "changes": []}));
        assert!(matches!(
            parse_batch(bad_key, &rules(), 1),
            Err(AgentError::InvalidIdempotencyKey)
        ));
        let bad_collection = batch(json!({"idempotency_key": "batch-0001", "changes": [
            {"collection": "../etc", "id": "1", "op": "delete"}]}));
        assert!(matches!(
            parse_batch(bad_collection, &rules(), 10),
            Err(AgentError::InvalidChange(_))
        ));
    }

    #[test]
    fn the_backstop_masks_and_counts_what_slipped_through() {
        let parsed = batch(json!({"idempotency_key": "batch-0001", "changes": [
            {"collection": "people", "id": "1", "op": "upsert",
             "data": {"email": "ada@example.com", "note": "Acme Corp"}},
            {"collection": "people", "id": "2", "op": "delete"}]}));
        let mut parsed = parse_batch(parsed, &rules(), 10).unwrap();
        let masker = Masker::new(vec![MaskingRule {
            term: "Acme Corp".into(),
            action: RuleAction::Redact,
        }])
        .unwrap();
        let caught = backstop(&mut parsed.changes, &masker, &rules()).unwrap();
        assert_eq!(caught.get("EMAIL"), Some(&1));
        assert_eq!(caught.get("TERM_REDACTED"), Some(&1));
        let ParsedOp::Upsert(data) = &parsed.changes[0].op else {
            panic!("an upsert stays an upsert");
        };
        assert_eq!(
            data.to_value(),
            json!({"email": "[EMAIL_1]", "note": "[REDACTED]"})
        );
    }
}
