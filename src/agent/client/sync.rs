//! One sync of a folder: resend any batch left in flight, mask every record on the device
//! with the workspace's policy, send what changed since the last confirmed sync in batches
//! within the server's limits, and record each confirmation before sending the next.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::AGENT_VERSION;
use super::api::{ApiClient, ClientError};
use super::files::{self, SourceError};
use super::home::{AgentHome, HomeError, HomeLock, Pairing};
use super::state::{PendingBatch, SyncState};
use crate::agent::wire::{
    Change, ChangeOp, Policy, Redaction, SyncBatch, SyncResult, field_count, record_id_ok,
};
use crate::privacy::{Masker, MaskingRule, PrivacyError};

/// Access tokens last fifteen minutes; a new one is fetched well before that.
const TOKEN_REUSE_SECS: u64 = 10 * 60;
/// A batch is filled to this share of the server's byte limit, leaving room for framing.
const BATCH_FILL_PERCENT: usize = 75;
/// How often a sync starts over when the policy changes under it.
const POLICY_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Server(#[from] ClientError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the workspace's masking rules cannot be applied")]
    Policy(#[from] PrivacyError),
    #[error("the masking policy kept changing during the sync; run it again")]
    PolicyUnstable,
    #[error("the server's policy cannot be used by this agent")]
    BadPolicy,
}

/// What a sync did, for the person running it. Counts only, never values.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub batches: usize,
    pub upserted: usize,
    pub deleted: usize,
    /// Whether a batch left in flight by an earlier run was sent first.
    pub resumed: bool,
    /// Values masked on this device, per category.
    pub masked: BTreeMap<String, usize>,
    /// Values the server's own pass still found, per category (normally none).
    pub backstop: BTreeMap<String, usize>,
    /// Records left out because the server would refuse them (too large, too many fields,
    /// an id or collection name it does not accept), per collection.
    pub set_aside: BTreeMap<String, usize>,
}

/// A signed-in connection: the pairing, the API client and a current access token.
pub struct Session<'a> {
    home: &'a AgentHome,
    _lock: HomeLock,
    pub pairing: Pairing,
    pub api: ApiClient,
    access: Zeroizing<String>,
    fetched: Instant,
}

impl<'a> Session<'a> {
    /// Rotates the refresh secret (saving the new one at once) and holds the access token.
    pub fn start(home: &'a AgentHome) -> Result<Self, SyncError> {
        let lock = home.lock()?;
        let pairing = home.pairing()?;
        let api = ApiClient::new(&pairing.server)?;
        let access = rotate(home, &pairing, &api)?;
        Ok(Self {
            home,
            _lock: lock,
            pairing,
            api,
            access,
            fetched: Instant::now(),
        })
    }

    pub fn access_token(&mut self) -> Result<&str, SyncError> {
        if self.fetched.elapsed().as_secs() >= TOKEN_REUSE_SECS {
            self.access = rotate(self.home, &self.pairing, &self.api)?;
            self.fetched = Instant::now();
        }
        Ok(&self.access)
    }

    pub fn heartbeat(&mut self) -> Result<(), SyncError> {
        let token = self.access_token()?.to_string();
        Ok(self.api.heartbeat(&token, AGENT_VERSION)?)
    }
}

fn rotate(
    home: &AgentHome,
    pairing: &Pairing,
    api: &ApiClient,
) -> Result<Zeroizing<String>, SyncError> {
    let secret = home.refresh_secret(pairing)?;
    let credentials = api.refresh(&pairing.agent_id, &secret)?;
    home.save_refresh_secret(pairing, &credentials.refresh_secret)?;
    Ok(Zeroizing::new(credentials.access_token))
}

pub fn sync_folder(session: &mut Session<'_>, folder: &Path) -> Result<SyncReport, SyncError> {
    let state_path = session.home.state_path(folder);
    let mut state = SyncState::load(&state_path)?;
    let mut report = SyncReport::default();
    session.heartbeat()?;
    for _ in 0..POLICY_ATTEMPTS {
        match sync_once(session, folder, &state_path, &mut state, &mut report) {
            Err(SyncError::Server(e)) if e.code() == Some("policy_changed") => {
                // Nothing of the refused batch was written; it is masked again from scratch.
                state.pending = None;
                state.save(session.home, &state_path)?;
            }
            other => return other.map(|()| report),
        }
    }
    Err(SyncError::PolicyUnstable)
}

fn sync_once(
    session: &mut Session<'_>,
    folder: &Path,
    state_path: &Path,
    state: &mut SyncState,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let home = session.home;
    if let Some(pending) = &state.pending {
        let token = session.access_token()?.to_string();
        let result = send(session, state, state_path, &token, &pending.batch)?;
        state.confirm_pending();
        state.save(home, state_path)?;
        report.resumed = true;
        tally(report, &result.backstop, result.upserted, result.deleted);
    }
    let token = session.access_token()?.to_string();
    let policy = session.api.policy(&token)?;
    let masker = Masker::new(
        policy
            .rules
            .iter()
            .cloned()
            .map(MaskingRule::from)
            .collect(),
    )?;
    let snapshot = files::read_folder(folder)?;
    let check = RecordCheck::new(&policy)?;
    let prepared = changes_since(&snapshot, &state.synced, &masker, &check, report);
    for batch in batches(prepared, &policy) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut changes = Vec::with_capacity(batch.len());
        let mut outcome = Vec::with_capacity(batch.len());
        for p in batch {
            for (category, n) in p.counts {
                *counts.entry(category.to_string()).or_default() += n;
            }
            changes.push(p.change);
            outcome.push(p.outcome);
        }
        for (category, n) in &counts {
            *report.masked.entry(category.clone()).or_default() += n;
        }
        let batch = SyncBatch {
            idempotency_key: format!("b-{}", uuid::Uuid::new_v4().simple()),
            redaction: Some(Redaction {
                policy_version: policy.version.clone(),
                counts,
            }),
            changes,
        };
        state.pending = Some(PendingBatch { batch, outcome });
        state.save(home, state_path)?;
        let token = session.access_token()?.to_string();
        let pending = state.pending.as_ref().map(|p| &p.batch);
        let result = send(
            session,
            state,
            state_path,
            &token,
            pending.expect("just set"),
        )?;
        state.confirm_pending();
        state.save(home, state_path)?;
        tally(report, &result.backstop, result.upserted, result.deleted);
    }
    state.last_sync_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs());
    state.save(home, state_path)?;
    Ok(())
}

/// Sends a batch. One the server refuses for good (a record or the batch over a limit)
/// is set aside rather than left pending, so it cannot block every later sync.
fn send(
    session: &Session<'_>,
    state: &SyncState,
    state_path: &Path,
    token: &str,
    batch: &SyncBatch,
) -> Result<SyncResult, SyncError> {
    match session.api.sync(token, batch) {
        Err(ClientError::Refused {
            status,
            code,
            message,
        }) if matches!(status, 413 | 422) && code != "redaction_required" => {
            let cleared = SyncState {
                synced: state.synced.clone(),
                pending: None,
                last_sync_at: state.last_sync_at,
            };
            cleared.save(session.home, state_path)?;
            Err(ClientError::Refused {
                status,
                code,
                message,
            }
            .into())
        }
        other => Ok(other?),
    }
}

fn tally(
    report: &mut SyncReport,
    backstop: &BTreeMap<String, usize>,
    upserted: usize,
    deleted: usize,
) {
    report.batches += 1;
    report.upserted += upserted;
    report.deleted += deleted;
    for (category, n) in backstop {
        *report.backstop.entry(category.clone()).or_default() += n;
    }
}

type Outcome = (String, String, Option<String>);

/// One change, masked and ready to send, with what it does to the synced state and what
/// masking replaced in it.
struct Prepared {
    change: Change,
    outcome: Outcome,
    counts: BTreeMap<&'static str, usize>,
}

/// The server's rules for a record, checked on the device so a record it would refuse is
/// set aside (and counted) instead of failing its whole batch.
struct RecordCheck {
    max_record_bytes: usize,
    max_fields: usize,
    collection: Regex,
}

impl RecordCheck {
    fn new(policy: &Policy) -> Result<Self, SyncError> {
        let collection =
            Regex::new(&policy.collection_pattern).map_err(|_| SyncError::BadPolicy)?;
        Ok(Self {
            max_record_bytes: policy.max_record_bytes,
            max_fields: policy.max_fields,
            collection,
        })
    }

    fn accepts(&self, collection: &str, id: &str, data: &Value) -> bool {
        let Value::Object(map) = data else {
            return false;
        };
        self.collection.is_match(collection)
            && record_id_ok(id)
            && field_count(map) <= self.max_fields
            && data.to_string().len() <= self.max_record_bytes
    }
}

/// Masks every record and compares it with what was last confirmed: new or changed records
/// become upserts, confirmed records no longer in the folder become deletes. Records the
/// server would refuse are counted in the report and left out.
fn changes_since(
    snapshot: &files::Snapshot,
    synced: &BTreeMap<String, BTreeMap<String, String>>,
    masker: &Masker,
    check: &RecordCheck,
    report: &mut SyncReport,
) -> Vec<Prepared> {
    let mut prepared = Vec::new();
    for (collection, records) in snapshot {
        for (id, data) in records {
            let (masked, counts) = masker.mask_json(data);
            if !check.accepts(collection, id, &masked) {
                *report.set_aside.entry(collection.clone()).or_default() += 1;
                continue;
            }
            let hash = content_hash(&masked);
            if synced.get(collection).and_then(|r| r.get(id)) == Some(&hash) {
                continue;
            }
            prepared.push(Prepared {
                change: Change {
                    collection: collection.clone(),
                    id: id.clone(),
                    op: ChangeOp::Upsert { data: masked },
                },
                outcome: (collection.clone(), id.clone(), Some(hash)),
                counts,
            });
        }
    }
    for (collection, records) in synced {
        for id in records.keys() {
            if snapshot.get(collection).is_some_and(|r| r.contains_key(id)) {
                continue;
            }
            prepared.push(Prepared {
                change: Change {
                    collection: collection.clone(),
                    id: id.clone(),
                    op: ChangeOp::Delete,
                },
                outcome: (collection.clone(), id.clone(), None),
                counts: BTreeMap::new(),
            });
        }
    }
    prepared
}

fn content_hash(value: &Value) -> String {
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// Splits the changes into batches within the server's count and size limits.
fn batches(prepared: Vec<Prepared>, policy: &Policy) -> Vec<Vec<Prepared>> {
    let byte_budget = policy.max_batch_bytes * BATCH_FILL_PERCENT / 100;
    let mut out: Vec<Vec<Prepared>> = Vec::new();
    let mut bytes = 0;
    for p in prepared {
        let size = serde_json::to_vec(&p.change).map_or(0, |v| v.len()) + 1;
        let full = out.last().is_none_or(|batch| {
            batch.len() >= policy.max_batch_records || bytes + size > byte_budget
        });
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("a batch was just opened").push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy(max_records: usize, max_bytes: usize) -> Policy {
        Policy {
            version: "v".into(),
            require_redaction: true,
            rules: Vec::new(),
            max_batch_records: max_records,
            max_batch_bytes: max_bytes,
            max_record_bytes: 1024,
            max_fields: 10,
            collection_pattern: "^(?:[a-z][a-z0-9_]{0,63})$".into(),
        }
    }

    #[test]
    fn only_changes_since_the_last_confirmed_sync_are_sent() {
        let masker = Masker::new(Vec::new()).unwrap();
        let mut snapshot = files::Snapshot::new();
        snapshot
            .entry("people".into())
            .or_default()
            .insert("1".into(), json!({"email": "ada@example.com"}));
        snapshot
            .entry("people".into())
            .or_default()
            .insert("2".into(), json!({"name": "Grace"}));
        let mut synced = BTreeMap::new();
        let unchanged = content_hash(&json!({"name": "Grace"}));
        synced.insert(
            "people".to_string(),
            BTreeMap::from([
                ("2".to_string(), unchanged),
                ("3".to_string(), "old".to_string()),
            ]),
        );
        snapshot
            .entry("people".into())
            .or_default()
            .insert("big".into(), json!({"text": "x".repeat(2000)}));
        let check = RecordCheck::new(&policy(10, 1 << 20)).unwrap();
        let mut report = SyncReport::default();
        let prepared = changes_since(&snapshot, &synced, &masker, &check, &mut report);
        let summary: Vec<(&str, bool)> = prepared
            .iter()
            .map(|p| {
                (
                    p.change.id.as_str(),
                    matches!(p.change.op, ChangeOp::Upsert { .. }),
                )
            })
            .collect();
        assert_eq!(summary, [("1", true), ("3", false)]);
        let ChangeOp::Upsert { data } = &prepared[0].change.op else {
            unreachable!()
        };
        assert_eq!(data, &json!({"email": "[EMAIL_1]"}), "masked on the device");
        assert_eq!(prepared[0].counts.get("EMAIL"), Some(&1));
        assert_eq!(prepared[1].outcome, ("people".into(), "3".into(), None));
        assert_eq!(
            report.set_aside.get("people"),
            Some(&1),
            "too large to send"
        );
    }

    #[test]
    fn batches_respect_the_count_and_size_limits() {
        let change = |id: usize| Change {
            collection: "c".into(),
            id: id.to_string(),
            op: ChangeOp::Upsert {
                data: json!({"text": "x".repeat(100)}),
            },
        };
        let make = |n: usize| -> Vec<Prepared> {
            (0..n)
                .map(|i| Prepared {
                    change: change(i),
                    outcome: ("c".to_string(), i.to_string(), None),
                    counts: BTreeMap::new(),
                })
                .collect()
        };
        let by_count: Vec<usize> = batches(make(7), &policy(3, 1 << 20))
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(by_count, [3, 3, 1]);
        let by_size: Vec<usize> = batches(make(7), &policy(100, 400))
            .iter()
            .map(Vec::len)
            .collect();
        assert!(
            by_size.iter().all(|n| *n <= 2) && by_size.iter().sum::<usize>() == 7,
            "{by_size:?}"
        );
    }
}
