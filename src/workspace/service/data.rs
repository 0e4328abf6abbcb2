//! Workspace data flows for the dashboard: browsing and searching records, soft delete,
//! and the masking policy with its preview. Reads go through the workspace's read-only
//! handles; membership is checked in the control database first.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::Connection;

use super::{Inner, Result, WorkspaceService, authorize};
use crate::audit::{Action as Audited, Actor, Chain, Entry};
use crate::auth::UserId;
use crate::ids::WorkspaceId;
use crate::privacy::{Masker, RuleAction};
use crate::workspace::error::WorkspaceError;
use crate::workspace::model::{Action, Workspace};
use crate::workspace::policy::{self, Policy};
use crate::workspace::records::{
    self, Aggregate, CollectionName, FieldSummary, Filter, Group, Hit, Record, RecordId,
};
use crate::workspace::usage::Usage;
use crate::workspace::usage_buffer::{Due, FLUSH_DELAY};

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

/// A query's filters, sort (field, descending) and page, and the masking rules of the
/// caller, who filters and sorts on values as these rules show them.
pub struct QuerySpec {
    pub filters: Vec<Filter>,
    pub sort: Option<(String, bool)>,
    pub limit: u32,
    pub offset: u32,
    pub masker: Arc<Masker>,
}

/// An aggregate's function, field (none for a plain count), grouping and filters, and the
/// masking rules as in `QuerySpec`.
pub struct AggregateSpec {
    pub function: Aggregate,
    pub field: Option<String>,
    pub group_by: Option<String>,
    pub filters: Vec<Filter>,
    pub masker: Arc<Masker>,
}

pub const MAX_GROUPS: u32 = 100;
/// How long one query or aggregate may run.
pub const QUERY_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The collection's top-level field names: the allow-list for queries.
fn known_fields(
    conn: &Connection,
    collection: &CollectionName,
) -> rusqlite::Result<std::collections::HashSet<String>> {
    // A name with a `"` cannot be written as a JSON path; it is left out of the allow-list.
    Ok(records::field_summary(conn, collection)?
        .into_iter()
        .map(|f| f.name)
        .filter(|name| !name.contains('"'))
        .collect())
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

    /// Live records of a collection matching typed filters on fields the collection has,
    /// sorted and paged, within the statement time limit.
    pub async fn query(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: CollectionName,
        spec: QuerySpec,
    ) -> Result<Paged<Record>> {
        self.run_as(user, id, Action::View, move |inner| {
            let items = inner.workspace_query(id, |c| {
                let known = known_fields(c, &collection)?;
                let fields = spec
                    .filters
                    .iter()
                    .map(|f| f.field.as_str())
                    .chain(spec.sort.as_ref().map(|(f, _)| f.as_str()));
                if !fields.into_iter().all(|f| known.contains(f)) {
                    return Ok(None);
                }
                let sort = spec.sort.as_ref().map(|(f, d)| (f.as_str(), *d));
                let _shown = records::as_shown(c, Arc::clone(&spec.masker))?;
                records::query(
                    c,
                    &collection,
                    &spec.filters,
                    sort,
                    spec.limit + 1,
                    spec.offset,
                )
                .map(Some)
            })?;
            let mut items = items.ok_or(WorkspaceError::UnknownField)?;
            let has_more = items.len() > spec.limit as usize;
            items.truncate(spec.limit as usize);
            Ok(Paged { items, has_more })
        })
        .await
    }

    /// count/sum/avg/min/max of a field over matching records, by group, on fields the
    /// collection has, within the statement time limit.
    pub async fn aggregate(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: CollectionName,
        spec: AggregateSpec,
    ) -> Result<Vec<Group>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner
                .workspace_query(id, |c| {
                    let known = known_fields(c, &collection)?;
                    let fields = spec
                        .filters
                        .iter()
                        .map(|f| f.field.as_str())
                        .chain(spec.field.as_deref())
                        .chain(spec.group_by.as_deref());
                    if !fields.into_iter().all(|f| known.contains(f)) {
                        return Ok(None);
                    }
                    let _shown = records::as_shown(c, Arc::clone(&spec.masker))?;
                    records::aggregate(
                        c,
                        &collection,
                        spec.function,
                        spec.field.as_deref(),
                        spec.group_by.as_deref(),
                        &spec.filters,
                        MAX_GROUPS,
                    )
                    .map(Some)
                })?
                .ok_or(WorkspaceError::UnknownField)
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

    /// Search hits `offset..offset + limit` with their records, for callers that build
    /// their own masked snippets from the records.
    pub async fn search_records(
        &self,
        user: UserId,
        id: WorkspaceId,
        query: String,
        limit: u32,
        offset: u32,
    ) -> Result<Paged<Record>> {
        self.run_as(user, id, Action::View, move |inner| {
            let mut items = inner.workspace_query(id, |c| {
                records::search_records(c, &query, limit + 1, offset)
            })?;
            let has_more = items.len() > limit as usize;
            items.truncate(limit as usize);
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
        self.run_as(user, id, Action::WriteRecords, move |inner| {
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
                inner.audit.append(c, Chain::Workspace(id), entry)
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

    /// Runs `f` on a read-only handle within the statement time limit.
    fn workspace_query<T>(
        &self,
        id: WorkspaceId,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let db = self.store.workspace(id)?;
        db.read_within(QUERY_TIME_LIMIT, |c| {
            f(c).map_err(|e| match records::interrupted(&e) {
                true => WorkspaceError::TooSlow,
                false => WorkspaceError::from(e),
            })
        })
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
