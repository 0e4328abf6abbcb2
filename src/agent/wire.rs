//! The agent API's wire format, shared by the server and the reference agent so the two
//! cannot drift apart. Everything here is plain data; the server checks it when it parses
//! it into domain types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::privacy::{MaskingRule, RuleAction};

/// Where the agent API lives under the server's public URL.
pub const API_PREFIX: &str = "/api/agent/v1";
/// Pairing codes and refresh secrets are 256-bit secrets with these recognisable prefixes.
pub const PAIRING_CODE_PREFIX: &str = "sbx_pair_";
pub const REFRESH_SECRET_PREFIX: &str = "sbx_ars_";
/// Idempotency keys: 8 to 100 characters of `[A-Za-z0-9_-]`.
pub const IDEMPOTENCY_KEY_CHARS: std::ops::RangeInclusive<usize> = 8..=100;
pub const MAX_VERSION_CHARS: usize = 64;

/// `POST pair`: trades a pairing code for credentials.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    pub code: String,
    pub agent_version: String,
}

/// `POST token`: trades the current refresh secret for a new one and an access token.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub agent_id: String,
    pub refresh_secret: String,
}

/// What `pair` and `token` answer. The refresh secret is shown once; only its hash is kept.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub agent_id: String,
    pub workspace_id: String,
    pub refresh_secret: String,
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// `GET policy`: the workspace's masking rules and what a batch must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Changes whenever the rules or the requirement change; a batch says which version
    /// it was redacted with.
    pub version: String,
    pub require_redaction: bool,
    pub rules: Vec<PolicyRule>,
    pub max_batch_records: usize,
    pub max_batch_bytes: usize,
    /// What each record must satisfy, so the agent can set aside what the server would
    /// refuse instead of sending it.
    pub max_record_bytes: usize,
    pub max_fields: usize,
    /// A regular expression every collection name must match in full.
    pub collection_pattern: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum PolicyRule {
    Alias { term: String, alias: String },
    Redact { term: String },
}

impl From<&MaskingRule> for PolicyRule {
    fn from(rule: &MaskingRule) -> Self {
        match &rule.action {
            RuleAction::Alias(alias) => Self::Alias {
                term: rule.term.clone(),
                alias: alias.clone(),
            },
            RuleAction::Redact => Self::Redact {
                term: rule.term.clone(),
            },
        }
    }
}

impl From<PolicyRule> for MaskingRule {
    fn from(rule: PolicyRule) -> Self {
        match rule {
            PolicyRule::Alias { term, alias } => Self {
                term,
                action: RuleAction::Alias(alias),
            },
            PolicyRule::Redact { term } => Self {
                term,
                action: RuleAction::Redact,
            },
        }
    }
}

/// A record's fields at every depth, as the field limit counts them, so nesting does not
/// dodge it.
pub fn field_count(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    map.values()
        .map(|value| match value {
            serde_json::Value::Object(inner) => 1 + field_count(inner),
            _ => 1,
        })
        .sum()
}

/// Whether a record id is one the server accepts: 1 to 200 characters, none a control.
pub fn record_id_ok(id: &str) -> bool {
    (1..=200).contains(&id.chars().count()) && !id.chars().any(char::is_control)
}

/// `POST sync`: one batch of changes, applied all together or not at all.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncBatch {
    /// Chosen by the agent; a batch sent again with the same key is answered from the
    /// stored result instead of being written twice.
    pub idempotency_key: String,
    /// The redaction signal: present when the agent masked the batch on the device.
    #[serde(default)]
    pub redaction: Option<Redaction>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// The policy version the agent applied.
    pub policy_version: String,
    /// How many values it masked in this batch, per category (never the values).
    #[serde(default)]
    pub counts: BTreeMap<String, usize>,
}

/// (`deny_unknown_fields` does not combine with `flatten`; the op's tag keeps the shape.)
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    pub collection: String,
    pub id: String,
    #[serde(flatten)]
    pub op: ChangeOp,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ChangeOp {
    Upsert { data: serde_json::Value },
    Delete,
}

/// What a committed batch did. A replay gets the very same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResult {
    pub upserted: usize,
    pub deleted: usize,
    /// Values the agent reported masking on the device, per category.
    #[serde(default)]
    pub redacted_on_device: BTreeMap<String, usize>,
    /// Values the server's own privacy pass still found and masked, per category.
    pub backstop: BTreeMap<String, usize>,
}

/// `POST heartbeat`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub agent_version: String,
}

/// The server's error body, as every API answers it.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
