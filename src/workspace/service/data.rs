//! Workspace data flows for the dashboard: browsing and searching records, soft delete,
//! and the masking policy with its preview. Reads go through the workspace's read-only
//! handles; membership is checked in the control database first.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::{Inner, Result, WorkspaceService, authorize};
use crate::auth::UserId;
use crate::ids::WorkspaceId;
use crate::workspace::error::WorkspaceError;
use crate::workspace::model::{Action, Workspace};
use crate::workspace::policy::{self, Policy};
use crate::workspace::records::{self, CollectionName, FieldSummary, Hit, Record, RecordId};

/// One page of a listing, and whether another follows.
pub struct Paged<T> {
    pub items: Vec<T>,
    pub has_more: bool,
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
    async fn authorized(&self, user: UserId, id: WorkspaceId, action: Action) -> Result<Workspace> {
        self.run(move |inner| inner.read_checked(|c| authorize(c, id, user, action)))
            .await
    }

    pub async fn collections(&self, user: UserId, id: WorkspaceId) -> Result<Vec<(String, i64)>> {
        self.authorized(user, id, Action::View).await?;
        self.run(move |inner| inner.workspace_read(id, records::collections))
            .await
    }

    pub async fn collection(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: CollectionName,
        page: u32,
    ) -> Result<CollectionPage> {
        self.authorized(user, id, Action::View).await?;
        self.run(move |inner| {
            inner.workspace_read(id, |c| {
                let fields = records::field_summary(c, &collection)?;
                if page > MAX_PAGE {
                    let records = Paged {
                        items: Vec::new(),
                        has_more: false,
                    };
                    return Ok(CollectionPage { fields, records });
                }
                let mut items = records::page(c, &collection, PAGE_SIZE + 1, page * PAGE_SIZE)?;
                let has_more = items.len() > PAGE_SIZE as usize && page < MAX_PAGE;
                items.truncate(PAGE_SIZE as usize);
                Ok(CollectionPage {
                    fields,
                    records: Paged { items, has_more },
                })
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
        self.authorized(user, id, Action::View).await?;
        self.run(move |inner| {
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
        self.authorized(user, id, Action::View).await?;
        self.run(move |inner| {
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
            return Ok(Paged {
                items: Vec::new(),
                has_more: false,
            });
        }
        self.run(move |inner| {
            let mut items = inner.workspace_read(id, |c| {
                records::search(c, &query, PAGE_SIZE + 1, page * PAGE_SIZE)
            })?;
            let has_more = items.len() > PAGE_SIZE as usize && page < MAX_PAGE;
            items.truncate(PAGE_SIZE as usize);
            Ok(Paged { items, has_more })
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
        self.authorized(user, id, Action::WriteRecords).await?;
        self.run(move |inner| {
            let rules = &inner.records;
            let collection = rules.collection(&collection)?;
            let record = RecordId::parse(&record)?;
            let data = rules.data(data)?;
            let now = inner.clock.now();
            inner
                .workspace_write(id, |c| {
                    records::upsert(c, &collection, &record, &data, now)?;
                    records::get(c, &collection, &record)
                })?
                .ok_or(WorkspaceError::NotFound)
        })
        .await
    }

    /// Soft delete: the record becomes a tombstone, so agents and exports see it gone.
    pub async fn delete_record(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: CollectionName,
        record: RecordId,
    ) -> Result<()> {
        self.authorized(user, id, Action::WriteRecords).await?;
        self.run(move |inner| {
            let now = inner.clock.now();
            match inner.workspace_write(id, |c| records::tombstone(c, &collection, &record, now))? {
                true => Ok(()),
                false => Err(WorkspaceError::NotFound),
            }
        })
        .await
    }

    pub async fn policy(&self, user: UserId, id: WorkspaceId) -> Result<Policy> {
        self.authorized(user, id, Action::View).await?;
        self.run(move |inner| inner.workspace_read(id, policy::load))
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
            match inner.workspace_write(id, |c| policy::put_rule(c, &rule, now))? {
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
        self.authorized(user, id, Action::ManageMasking).await?;
        self.run(move |inner| {
            match inner.workspace_write(id, |c| policy::remove_rule(c, &term))? {
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
        self.authorized(user, id, Action::ManageMasking).await?;
        self.run(move |inner| {
            inner.workspace_write(id, |c| policy::set_require_redaction(c, required))
        })
        .await
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
    fn workspace_read<T>(
        &self,
        id: WorkspaceId,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let db = self.store.workspace(id)?;
        db.read(|c| f(c).map_err(WorkspaceError::from))
    }

    /// Runs `f` in one transaction on the workspace database's writer.
    fn workspace_write<T>(
        &self,
        id: WorkspaceId,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let db = self.store.workspace(id)?;
        db.write(|tx| f(tx).map_err(WorkspaceError::from))
    }
}
