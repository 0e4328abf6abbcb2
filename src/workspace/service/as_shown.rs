//! What AI clients read: the workspace's records as shown (`workspace::shown`). Each answer
//! comes from one read snapshot in which the shown index is checked to be built under the
//! workspace's current rules, so it is never half old; collection, id and field names are
//! names as shown.

use rusqlite::Connection;

use super::data::{CollectionSummary, Paged};
use super::{Inner, Result, WorkspaceService};
use crate::auth::UserId;
use crate::ids::WorkspaceId;
use crate::store::StoreError;
use crate::workspace::error::WorkspaceError;
use crate::workspace::model::Action;
use crate::workspace::policy::{self, Policy};
use crate::workspace::records::{self, Aggregate, Filter, Group};
use crate::workspace::shown::{self, ShownHit, ShownRecord, ShownWriter};

/// A query's filters, sort (field, descending) and page, on fields as shown.
pub struct QuerySpec {
    pub filters: Vec<Filter>,
    pub sort: Option<(String, bool)>,
    pub limit: u32,
    pub offset: u32,
}

/// An aggregate's function, field (none for a plain count), grouping and filters, on fields
/// as shown.
pub struct AggregateSpec {
    pub function: Aggregate,
    pub field: Option<String>,
    pub group_by: Option<String>,
    pub filters: Vec<Filter>,
}

pub const MAX_GROUPS: u32 = 100;
/// How long one query or aggregate may run.
pub const QUERY_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// An answer read from the shown index, with the policy it was built under (to count what
/// the answer shows masked).
pub struct Shown<T> {
    pub answer: T,
    pub policy: Policy,
}

/// Checks `fields` against a shown collection's field names, the allow-list for queries.
/// A name with a `"` cannot be written as a JSON path; it is never allowed.
/// `UnknownCollection` if no record is shown under `collection`, `UnknownField` if a
/// field is not one of its own.
fn require_known_fields<'a>(
    conn: &Connection,
    collection: &str,
    mut fields: impl Iterator<Item = &'a str>,
) -> Result<()> {
    if !shown::has_collection(conn, collection)? {
        return Err(WorkspaceError::UnknownCollection);
    }
    let known: std::collections::HashSet<String> = shown::field_summary(conn, collection)?
        .into_iter()
        .map(|f| f.name)
        .filter(|name| !name.contains('"'))
        .collect();
    match fields.all(|f| known.contains(f)) {
        true => Ok(()),
        false => Err(WorkspaceError::UnknownField),
    }
}

impl WorkspaceService {
    /// Every collection as shown, with its record count and fields.
    pub async fn shown_collections(
        &self,
        user: UserId,
        id: WorkspaceId,
    ) -> Result<Shown<Vec<CollectionSummary>>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.shown_read(id, |c| {
                let mut summaries = Vec::new();
                for (name, records) in shown::collections(c)? {
                    let fields = shown::field_summary(c, &name)?;
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

    /// Hits `offset..offset + limit` of a full-text search over the records as shown, and
    /// whether more follow (from the same index rows, so that too is a fact about the
    /// records as shown).
    pub async fn shown_search(
        &self,
        user: UserId,
        id: WorkspaceId,
        query: String,
        limit: u32,
        offset: u32,
    ) -> Result<Shown<Paged<ShownHit>>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.shown_read(id, |c| {
                let items = shown::search(c, &query, limit + 1, offset)?;
                Ok(Paged::from_one_extra(items, limit))
            })
        })
        .await
    }

    /// The record shown under `collection` with `record` as its id. `AmbiguousId` when
    /// several records show that id.
    pub async fn shown_record(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: String,
        record: String,
    ) -> Result<Shown<ShownRecord>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.shown_read(id, |c| {
                let mut found = shown::get(c, &collection, &record, 2)?;
                match found.len() {
                    0 => Err(WorkspaceError::NotFound),
                    1 => Ok(found.remove(0)),
                    _ => Err(WorkspaceError::AmbiguousId),
                }
            })
        })
        .await
    }

    /// Records shown under `collection` matching typed filters on its fields as shown,
    /// sorted and paged, within the statement time limit.
    pub async fn shown_query(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: String,
        spec: QuerySpec,
    ) -> Result<Shown<Paged<ShownRecord>>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.shown_read(id, |c| {
                let fields = spec
                    .filters
                    .iter()
                    .map(|f| f.field.as_str())
                    .chain(spec.sort.as_ref().map(|(f, _)| f.as_str()));
                require_known_fields(c, &collection, fields)?;
                let sort = spec.sort.as_ref().map(|(f, d)| (f.as_str(), *d));
                let items = shown::query(
                    c,
                    &collection,
                    &spec.filters,
                    sort,
                    spec.limit + 1,
                    spec.offset,
                )?;
                Ok(Paged::from_one_extra(items, spec.limit))
            })
        })
        .await
    }

    /// count/sum/avg/min/max of a field over the matching records shown under
    /// `collection`, by group, on its fields as shown, within the statement time limit.
    pub async fn shown_aggregate(
        &self,
        user: UserId,
        id: WorkspaceId,
        collection: String,
        spec: AggregateSpec,
    ) -> Result<Shown<Vec<Group>>> {
        self.run_as(user, id, Action::View, move |inner| {
            inner.shown_read(id, |c| {
                let fields = spec
                    .filters
                    .iter()
                    .map(|f| f.field.as_str())
                    .chain(spec.field.as_deref())
                    .chain(spec.group_by.as_deref());
                require_known_fields(c, &collection, fields)?;
                Ok(shown::aggregate(
                    c,
                    &collection,
                    spec.function,
                    spec.field.as_deref(),
                    spec.group_by.as_deref(),
                    &spec.filters,
                    MAX_GROUPS,
                )?)
            })
        })
        .await
    }
}

impl Inner {
    /// Runs `f` on a read-only handle within the statement time limit, in one read
    /// transaction that first checks the shown index was built under the workspace's
    /// current rules and masking version. Rule changes and record writes bring the index
    /// up to date as they commit, so it is current unless this binary masks differently
    /// from the one that built it, or nothing was written since the schema gained it; then
    /// the writer rebuilds it and the read starts again.
    fn shown_read<T>(
        &self,
        id: WorkspaceId,
        f: impl Fn(&Connection) -> Result<T>,
    ) -> Result<Shown<T>> {
        let db = self.store.workspace(id)?;
        for _ in 0..2 {
            let read = db
                .read_within(QUERY_TIME_LIMIT, |c| {
                    let snapshot = c.unchecked_transaction()?;
                    let policy = policy::load(&snapshot)?;
                    if !shown::is_current(&snapshot, &policy.rules)? {
                        return Ok(None);
                    }
                    let answer = f(&snapshot)?;
                    Ok(Some(Shown { answer, policy }))
                })
                .map_err(stopped_at_deadline)?;
            match read {
                Some(shown) => return Ok(shown),
                None => db.write(|tx| ShownWriter::open(tx).map(drop))?,
            }
        }
        Err(WorkspaceError::ShownIndexBehind)
    }
}

/// `TooSlow` for a statement interrupted at the time limit.
fn stopped_at_deadline(e: WorkspaceError) -> WorkspaceError {
    match e {
        WorkspaceError::Store(StoreError::Sqlite(ref sql)) if records::interrupted(sql) => {
            WorkspaceError::TooSlow
        }
        other => other,
    }
}
