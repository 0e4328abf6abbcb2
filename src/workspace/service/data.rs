//! Workspace data flows for the dashboard: browsing and searching records, soft delete,
//! and the masking policy with its preview. Reads go through the workspace's read-only
//! handles; membership is checked in the control database first.

use rusqlite::Connection;
use std::collections::BTreeMap;

use super::{Inner, Result, WorkspaceService, authorize};
use crate::audit::{Action as Audited, Actor, Chain, Entry};
use crate::auth::UserId;
use crate::ids::WorkspaceId;
use crate::privacy::RuleAction;
use crate::workspace::error::WorkspaceError;
use crate::workspace::model::{Action, Workspace};
use crate::workspace::policy::{self, Policy};
use crate::workspace::records::{self, CollectionName, FieldSummary, Hit, Record, RecordId};
use crate::workspace::shown::ShownWriter;
use crate::workspace::usage::Usage;
use crate::workspace::usage_buffer::{Due, FLUSH_DELAY};

/// One page of a listing, and whether another follows.
pub struct Paged<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> Paged<T> {
    /// A page of at most `size` from `items`, read with one more than the page holds to
    /// tell whether another follows.
    pub fn from_one_extra(mut items: Vec<T>, size: u32) -> Self {
        let has_more = items.len() > size as usize;
        items.truncate(size as usize);
        Self { items, has_more }
    }

    fn empty() -> Self {
        Self {
            items: Vec::new(),
            has_more: false,
        }
    }
}

/// A collection's field summary and one page of its live records.
pub struct CollectionPage {
    pub fields: Vec<FieldSummary>,
    pub records: Paged<Record>,
}

/// A collection as listed: its name, live records and fields.
pub struct CollectionSummary {
    pub name: String,
    pub records: i64,
    pub fields: Vec<FieldSummary>,
}

/// What the preview shows: the masked text and counts per category.
pub struct Preview {
    pub text: String,
    pub counts: BTreeMap<&'static str, usize>,
}

pub const PAGE_SIZE: u32 = 25;
/// The last page anyone may ask for; beyond it, listings are empty.
pub const MAX_PAGE: u32 = 1000;
pub const MAX_PREVIEW_CHARS: usize = 10_000;

impl WorkspaceService {
    /// The workspace as the caller sees it, checking `action` is allowed.
    pub(super) async fn authorized(
        &self,
        user: UserId,
        id: WorkspaceId,
        action: Action,
    ) -> Result<Workspace> {
        self.run(move |inner| inner.read_checked(|c| authorize(c, id, user, action)))
            .await
    }

    /// Runs `job` once `user` is found allowed `action` in workspace `id`: the check and the
    /// job take one trip to the blocking pool.
    pub(super) async fn run_as<T: Send + 'static>(
        &self,
        user: UserId,
        id: WorkspaceId,
        action: Action,
        job: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run(move |inner| {
            inner.read_checked(|c| authorize(c, id, user, action))?;
            job(inner)
        })
        .await
    }

    pub async fn collections(&self, user: UserId, id: WorkspaceId) -> Result<Vec<(String, i64)>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.workspace_read(id, records::collections)
        })
        .await
    }

    pub async fn collection(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: CollectionName,
        page: u32,
    ) -> Result<CollectionPage> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.workspace_read(id, |c| {
                let fields = records::field_summary(c, &collection)?;
                if page > MAX_PAGE {
                    let records = Paged::empty();
                    return Ok(CollectionPage { fields, records });
                }
                let items = records::page(c, &collection, PAGE_SIZE + 1, page * PAGE_SIZE)?;
                let mut records = Paged::from_one_extra(items, PAGE_SIZE);
                records.has_more &= page < MAX_PAGE;
                Ok(CollectionPage { fields, records })
            })
        })
        .await
    }

    /// Every collection with its live record count and field summary, in one read.
    pub async fn collection_summaries(
        &self,
        user: UserId,
        id: WorkspaceId,
    ) -> Result<Vec<CollectionSummary>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.workspace_read(id, |c| {
                let mut summaries = Vec::new();
                for (name, records) in records::collections(c)? {
                    // Stored names were checked when written; one that no longer parses is
                    // simply not listed.
                    let Ok(collection) = CollectionName::parse(&name) else {
                        continue;
                    };
                    let fields = records::field_summary(c, &collection)?;
                    summaries.push(CollectionSummary {
                        name,
                        records,
                        fields,
                    });
                }
                Ok(summaries)
            })
        })
        .await
    }

    /// A live record; deleted ones are not found.
    pub async fn record(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: CollectionName,
        record: RecordId,
    ) -> Result<Record> {
        self.run_as(user, id, Action::View, move |inner| {
            inner
                .workspace_read(id, |c| records::get(c, &collection, &record))?
                .filter(|r| !r.deleted)
                .ok_or(WorkspaceError::NotFound)
        })
        .await
    }

    pub async fn search(
        &self,
        user: UserId,
        id: WorkspaceId,
        query: String,
        page: u32,
    ) -> Result<Paged<Hit>> {
        self.authorized(user, id, Action::View).await?;
        if page > MAX_PAGE {
            return Ok(Paged::empty());
        }
        self.run(move |inner| {
            let items = inner.workspace_read(id, |c| {
                records::search(c, &query, PAGE_SIZE + 1, page * PAGE_SIZE)
            })?;
            let mut hits = Paged::from_one_extra(items, PAGE_SIZE);
            hits.has_more &= page < MAX_PAGE;
            Ok(hits)
        })
        .await
    }

    /// Creates or replaces a record, checked against the record rules; returns it as stored.
    pub async fn put_record(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: String,
        record: String,
        data: serde_json::Value,
    ) -> Result<Record> {
        self.run_as(user, id, Action::WriteRecords, move |inner| {
            let rules = &inner.records;
            let collection = rules.collection(&collection)?;
            let record = RecordId::parse(&record)?;
            let data = rules.data(data)?;
            let now = inner.clock.now();
            inner
                .workspace_write(id, |c| {
                    let shown = ShownWriter::open(c)?;
                    records::upsert(c, &shown, &collection, &record, &data, now)?;
                    Ok(records::get(c, &collection, &record)?)
                })?
                .ok_or(WorkspaceError::NotFound)
        })
        .await
    }

    /// Soft delete: the record becomes a tombstone, so agents and exports see it gone.
    /// Audited with `actor`: the person, or the personal token they gave a program.
    pub async fn delete_record(
        &self,
        user: UserId,
        actor: Actor,
        id: WorkspaceId,
        collection: CollectionName,
        record: RecordId,
    ) -> Result<()> {
        self.run_as(user, id, Action::WriteRecords, move |inner| {
            let now = inner.clock.now();
            let entry = Entry::new(actor, Audited::RecordDeleted).target(
                "record",
                format!("{}/{}", collection.as_str(), record.as_str()),
            );
            let deleted = inner.workspace_write(id, |c| {
                let deleted = records::tombstone(c, &collection, &record, now)?;
                if deleted {
                    inner.audit.append(c, Chain::Workspace(id), entry)?;
                }
                Ok(deleted)
            })?;
            match deleted {
                true => Ok(()),
                false => Err(WorkspaceError::NotFound),
            }
        })
        .await
    }

    pub async fn policy(&self, user: UserId, id: WorkspaceId) -> Result<Policy> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.workspace_read(id, policy::load)
        })
        .await
    }

    /// Adds a masking rule, or replaces the rule for the same term.
    pub async fn put_masking_rule(
        &self,
        user: UserId,
        id: WorkspaceId,
        term: String,
        action: String,
        alias: String,
    ) -> Result<()> {
        self.authorized(user, id, Action::ManageMasking).await?;
        let rule = policy::parse_rule(&term, &action, &alias).ok_or(WorkspaceError::InvalidRule)?;
        self.run(move |inner| {
            let now = inner.clock.now();
            // The term and alias are what the rule protects: never in the audit row.
            let kind = match rule.action {
                RuleAction::Alias(_) => "alias",
                RuleAction::Redact => "redact",
            };
            let entry =
                Entry::new(Actor::user(user), Audited::MaskingRuleSet).detail("action", kind);
            let stored = inner.workspace_write(id, |c| {
                let stored = policy::put_rule(c, &rule, now)?;
                if stored {
                    inner.audit.append(c, Chain::Workspace(id), entry)?;
                    // AI clients see the new rule applied to every record from this commit.
                    ShownWriter::open(c)?;
                }
                Ok(stored)
            })?;
            match stored {
                true => Ok(()),
                false => Err(WorkspaceError::TooManyRules),
            }
        })
        .await
    }

    pub async fn remove_masking_rule(
        &self,
        user: UserId,
        id: WorkspaceId,
        term: String,
    ) -> Result<()> {
        self.run_as(user, id, Action::ManageMasking, move |inner| {
            let entry = Entry::new(Actor::user(user), Audited::MaskingRuleRemoved);
            let removed = inner.workspace_write(id, |c| {
                let removed = policy::remove_rule(c, &term)?;
                if removed {
                    inner.audit.append(c, Chain::Workspace(id), entry)?;
                    ShownWriter::open(c)?;
                }
                Ok(removed)
            })?;
            match removed {
                true => Ok(()),
                false => Err(WorkspaceError::NotFound),
            }
        })
        .await
    }

    pub async fn set_require_redaction(
        &self,
        user: UserId,
        id: WorkspaceId,
        required: bool,
    ) -> Result<()> {
        self.run_as(user, id, Action::ManageMasking, move |inner| {
            let entry = Entry::new(Actor::user(user), Audited::RedactionRequirementChanged)
                .detail("required", required);
            inner.workspace_write(id, |c| {
                policy::set_require_redaction(c, required)?;
                Ok(inner.audit.append(c, Chain::Workspace(id), entry)?)
            })
        })
        .await
    }

    /// Records one AI client call's usage metadata. The caller was authorised for the call
    /// itself; this row is the server's own bookkeeping.
    /// Notes an AI client's call in the workspace's usage table: within
    /// `usage_buffer::FLUSH_DELAY`, in a batch with the calls around it.
    pub async fn record_usage(&self, id: WorkspaceId, usage: Usage) -> Result<()> {
        let now = self.inner.clock.now();
        match self.inner.usage.add(id, now, usage) {
            Due::Later => {}
            Due::Schedule => {
                let this = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(FLUSH_DELAY).await;
                    // A failed hop leaves the rows for the next flush.
                    let _ = this.write_held_usage().await;
                });
            }
            Due::Now => self.write_held_usage().await?,
        }
        Ok(())
    }

    async fn write_held_usage(&self) -> Result<()> {
        self.run(|inner| {
            inner.usage.flush();
            Ok(())
        })
        .await
    }

    /// Writes the usage rows still held, at once: for shutdown.
    pub fn flush_usage(&self) {
        self.inner.usage.flush();
    }

    /// Masks sample text with the workspace's current rules and detectors. Any member may
    /// try it; nothing is stored or logged.
    pub async fn preview(&self, user: UserId, id: WorkspaceId, text: String) -> Result<Preview> {
        let policy = self.policy(user, id).await?;
        let text: String = text.chars().take(MAX_PREVIEW_CHARS).collect();
        let masked = policy.masker()?.mask(&text);
        Ok(Preview {
            text: masked.text,
            counts: masked.counts,
        })
    }
}

impl Inner {
    /// Runs `f` on one of the workspace database's read-only handles.
    pub(super) fn workspace_read<T>(
        &self,
        id: WorkspaceId,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let db = self.store.workspace(id)?;
        db.read(|c| f(c).map_err(WorkspaceError::from))
    }

    /// Runs `f` in one transaction on the workspace database's writer.
    pub(super) fn workspace_write<T>(
        &self,
        id: WorkspaceId,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let db = self.store.workspace(id)?;
        db.write(|tx| f(tx))
    }
}
