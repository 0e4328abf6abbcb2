//! What happened in a workspace, for its owners and admins: the audit log (filtered, paged,
//! exported) and what AI clients asked of it over the last 90 days.

use super::{Result, WorkspaceService};
use crate::audit::{
    Action as Audited, Actor, AuditRow, Chain, Entry, Filter, MAX_EXPORT_ROWS, csv_header, csv_line,
};
use crate::auth::UserId;
use crate::ids::WorkspaceId;
use crate::workspace::error::WorkspaceError;
use crate::workspace::model::Action;
use crate::workspace::usage::{self, DayTotals, OperationTotals};

pub const AUDIT_PAGE_SIZE: u32 = 50;
/// How far back usage is shown, and kept.
pub const USAGE_DAYS: i64 = 90;
const DAY_SECS: i64 = 86_400;

/// One page of the audit log, newest first, and where the next (older) page starts.
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub older_than: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    JsonLines,
    Csv,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::JsonLines => "jsonl",
            Self::Csv => "csv",
        }
    }
}

/// Usage over the last `USAGE_DAYS` days: every day (empty ones included, oldest first),
/// each operation, and the values masked per category.
pub struct UsageReport {
    pub days: Vec<DayTotals>,
    pub operations: Vec<OperationTotals>,
    pub masked: Vec<(String, i64)>,
}

impl WorkspaceService {
    pub async fn audit_page(
        &self,
        user: UserId,
        id: WorkspaceId,
        filter: Filter,
        before: Option<i64>,
    ) -> Result<AuditPage> {
        self.run_as(user, id, Action::ViewActivity, move |inner| {
            let chain = Chain::Workspace(id);
            let mut rows = inner
                .audit
                .page(chain, &filter, before, AUDIT_PAGE_SIZE + 1)?;
            let more = rows.len() > AUDIT_PAGE_SIZE as usize;
            rows.truncate(AUDIT_PAGE_SIZE as usize);
            let older_than = more.then(|| rows.last().map(|r| r.seq)).flatten();
            Ok(AuditPage { rows, older_than })
        })
        .await
    }

    /// Every row matching `filter`, oldest first, as a file; the export is itself audited.
    pub async fn audit_export(
        &self,
        user: UserId,
        id: WorkspaceId,
        filter: Filter,
        format: ExportFormat,
    ) -> Result<Vec<u8>> {
        self.run_as(user, id, Action::ViewActivity, move |inner| {
            let chain = Chain::Workspace(id);
            let mut out = match format {
                ExportFormat::JsonLines => Vec::new(),
                ExportFormat::Csv => csv_header(),
            };
            let mut rows = 0;
            inner.audit.each(chain, &filter, |row| {
                rows += 1;
                match format {
                    ExportFormat::JsonLines => out.extend(row.json_line().into_bytes()),
                    ExportFormat::Csv => out.extend(csv_line(&row)),
                }
                rows <= MAX_EXPORT_ROWS
            })?;
            if rows > MAX_EXPORT_ROWS {
                return Err(WorkspaceError::ExportTooLarge);
            }
            let entry = Entry::new(Actor::user(user), Audited::AuditExported)
                .detail("format", format.as_str())
                .detail("rows", rows);
            inner.audit.record(chain, entry)?;
            Ok(out)
        })
        .await
    }

    pub async fn usage_report(&self, user: UserId, id: WorkspaceId) -> Result<UsageReport> {
        self.run_as(user, id, Action::ViewActivity, move |inner| {
            inner.usage.flush_workspace(id);
            let today = inner.clock.now() / DAY_SECS * DAY_SECS;
            let since = today - (USAGE_DAYS - 1) * DAY_SECS;
            let (found, operations, masked) = inner.workspace_read(id, |c| {
                Ok((
                    usage::per_day(c, since)?,
                    usage::per_operation(c, since)?,
                    usage::masked_by_category(c, since)?,
                ))
            })?;
            let days = (0..USAGE_DAYS)
                .map(|n| since + n * DAY_SECS)
                .map(|day| {
                    found
                        .iter()
                        .find(|d| d.day == day)
                        .cloned()
                        .unwrap_or(DayTotals {
                            day,
                            ..DayTotals::default()
                        })
                })
                .collect();
            Ok(UsageReport {
                days,
                operations,
                masked,
            })
        })
        .await
    }
}
