//! The dashboard's Audit log and Usage pages, for owners and admins: the audit log with
//! filters, paging and export (JSON Lines, CSV), and AI client usage as a per-day chart
//! drawn on the server (plain SVG, no script) with the same figures in tables.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_DISPOSITION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::ApiError;
use super::extract::{Form, Query};
use super::pages::{Chrome, Ctx, format_date, render};
use super::session::{Csrf, CurrentSession};
use super::workspace_pages::{SECTIONS, Section, respond, viewer};
use crate::audit::{Action, ActorKind, AuditRow, Filter};
use crate::ids::WorkspaceId;
use crate::workspace::usage::{DayTotals, OperationTotals};
use crate::workspace::{ExportFormat, WorkspaceService};

const MAX_ACTOR_ID_CHARS: usize = 64;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/w/{id}/audit", web::get().to(audit))
        .route("/w/{id}/audit/export", web::post().to(export))
        .route("/w/{id}/usage", web::get().to(usage));
}

/// The audit page's filters, as typed; every field optional.
#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    actor_id: String,
    #[serde(default)]
    action: String,
    /// First day shown (UTC, YYYY-MM-DD).
    #[serde(default)]
    from: String,
    /// Last day shown, inclusive.
    #[serde(default)]
    to: String,
    /// Rows older than this seq (the next page).
    #[serde(default)]
    before: String,
}

#[derive(Deserialize)]
struct ExportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    format: String,
    #[serde(flatten)]
    query: AuditQuery,
}

/// A filter that cannot be used; the message names the field, never its value.
#[derive(Debug, thiserror::Error)]
#[error("the {0} filter is not valid")]
struct BadFilter(&'static str);

impl AuditQuery {
    /// Every value is checked against its closed set or shape before it reaches SQL.
    fn filter(&self) -> Result<(Filter, Option<i64>), BadFilter> {
        let actor_kind = pick(&self.actor)
            .map(|v| v.parse::<ActorKind>().map_err(|_| BadFilter("actor")))
            .transpose()?;
        let actor_id = pick(&self.actor_id)
            .map(|v| {
                let plain = v.len() <= MAX_ACTOR_ID_CHARS
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                plain.then(|| v.to_string()).ok_or(BadFilter("actor id"))
            })
            .transpose()?;
        let action = pick(&self.action)
            .map(|v| v.parse::<Action>().map_err(|_| BadFilter("action")))
            .transpose()?;
        let day = |raw: &str, name| {
            pick(raw)
                .map(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| BadFilter(name)))
                .transpose()
        };
        let (from, to) = (day(&self.from, "from date")?, day(&self.to, "to date")?);
        let before = pick(&self.before)
            .map(|v| v.parse::<i64>().map_err(|_| BadFilter("page")))
            .transpose()?;
        let filter = Filter {
            actor_kind: actor_kind.map(|k| k.as_str().to_string()),
            actor_id,
            action: action.map(|a| a.as_str().to_string()),
            ..Filter::default()
        }
        .within_days(from, to);
        Ok((filter, before))
    }

    /// The filters as a query string for the next page's link (without the page).
    fn link_query(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("actor_id", &self.actor_id),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ];
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()))
            .finish()
    }
}

/// A field left empty means no filter.
fn pick(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|v| !v.is_empty())
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    rows: Vec<AuditRow>,
    query: AuditQuery,
    actor_kinds: Vec<&'static str>,
    actions: Vec<&'static str>,
    next_page: Option<String>,
}

impl AuditPage {
    fn details(row: &AuditRow) -> String {
        match &row.details {
            serde_json::Value::Object(map) if map.is_empty() => String::new(),
            other => other.to_string(),
        }
    }
}

async fn audit(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let query = query.into_inner();
    let (filter, before) = match query.filter() {
        Ok(parsed) => parsed,
        Err(e) => return bad_filter(&req, &csrf, &current, e),
    };
    let page = match service.audit_page(user, workspace.id, filter, before).await {
        Ok(page) => page,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let next_page = page.older_than.map(|seq| {
        let filters = query.link_query();
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("/w/{}/audit?{filters}{sep}before={seq}", workspace.id)
    });
    render(
        StatusCode::OK,
        AuditPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id: workspace.id,
            name: workspace.name,
            rows: page.rows,
            query,
            actor_kinds: ActorKind::ALL.iter().map(|k| k.as_str()).collect(),
            actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
            next_page,
        },
    )
}

fn bad_filter(
    req: &HttpRequest,
    csrf: &Csrf,
    current: &CurrentSession,
    e: BadFilter,
) -> Result<HttpResponse, ApiError> {
    let chrome = Chrome::new(req, csrf, current).with_error(e);
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        super::pages::MessagePage::new(chrome, "Nothing was shown", "/", "Back to workspaces"),
    )
}

async fn export(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<ExportForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    // Non-members get 404 before anything they sent is looked at.
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let id = workspace.id;
    let format = match form.format.as_str() {
        "csv" => ExportFormat::Csv,
        "jsonl" => ExportFormat::JsonLines,
        _ => return bad_filter(&req, &csrf, &current, BadFilter("format")),
    };
    // Paging does not apply to an export: it holds every matching row.
    let filter = match form.query.filter() {
        Ok((filter, _)) => filter,
        Err(e) => return bad_filter(&req, &csrf, &current, e),
    };
    match service.audit_export(user, id, filter, format).await {
        Ok(body) => {
            let (content_type, extension) = match format {
                ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
                ExportFormat::JsonLines => ("application/x-ndjson", "jsonl"),
            };
            Ok(HttpResponse::Ok()
                .content_type(content_type)
                .insert_header((
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"strongbox-audit-{id}.{extension}\""),
                ))
                .body(body))
        }
        Err(e) => respond(&req, &csrf, &current, e),
    }
}

/// The usage chart's geometry, worked out here so the template only draws.
struct Chart {
    width: i64,
    height: i64,
    bars: Vec<Bar>,
    peak: i64,
}

struct Bar {
    x: i64,
    width: i64,
    calls_y: i64,
    calls_height: i64,
    refused_y: i64,
    refused_height: i64,
    label: String,
}

const BAR_WIDTH: i64 = 8;
const CHART_HEIGHT: i64 = 160;

impl Chart {
    fn of(days: &[DayTotals]) -> Self {
        let peak = days.iter().map(|d| d.calls).max().unwrap_or(0).max(1);
        let scale = |n: i64| n * CHART_HEIGHT / peak;
        let bars = days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (calls, refused) = (scale(d.calls), scale(d.refused));
                Bar {
                    x: i as i64 * BAR_WIDTH,
                    width: BAR_WIDTH - 1,
                    calls_y: CHART_HEIGHT - calls,
                    calls_height: calls,
                    refused_y: CHART_HEIGHT - refused,
                    refused_height: refused,
                    label: format!(
                        "{}: {} calls, {} refused",
                        format_date(d.day),
                        d.calls,
                        d.refused
                    ),
                }
            })
            .collect();
        Self {
            width: days.len() as i64 * BAR_WIDTH,
            height: CHART_HEIGHT,
            bars,
            peak,
        }
    }
}

struct DayRow {
    date: String,
    calls: i64,
    refused: i64,
    items: i64,
    masked: i64,
    average_ms: String,
}

impl From<&DayTotals> for DayRow {
    fn from(d: &DayTotals) -> Self {
        Self {
            date: format_date(d.day),
            calls: d.calls,
            refused: d.refused,
            items: d.items,
            masked: d.masked,
            average_ms: average_ms(d.duration_us, d.calls),
        }
    }
}

struct OperationRow {
    operation: String,
    calls: i64,
    refused: i64,
    items: i64,
    masked: i64,
    average_ms: String,
}

impl From<OperationTotals> for OperationRow {
    fn from(o: OperationTotals) -> Self {
        Self {
            average_ms: average_ms(o.duration_us, o.calls),
            operation: o.operation,
            calls: o.calls,
            refused: o.refused,
            items: o.items,
            masked: o.masked,
        }
    }
}

fn average_ms(total_us: i64, calls: i64) -> String {
    match calls {
        0 => "–".into(),
        n => format!("{:.1}", total_us as f64 / n as f64 / 1000.0),
    }
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    days: i64,
    total_calls: i64,
    chart: Chart,
    /// Days with calls, newest first.
    rows: Vec<DayRow>,
    operations: Vec<OperationRow>,
    masked: Vec<(String, i64)>,
}

async fn usage(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let report = match service.usage_report(user, workspace.id).await {
        Ok(report) => report,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    render(
        StatusCode::OK,
        UsagePage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id: workspace.id,
            name: workspace.name,
            days: crate::workspace::USAGE_DAYS,
            total_calls: report.days.iter().map(|d| d.calls).sum(),
            chart: Chart::of(&report.days),
            rows: report
                .days
                .iter()
                .rev()
                .filter(|d| d.calls > 0)
                .map(DayRow::from)
                .collect(),
            operations: report
                .operations
                .into_iter()
                .map(OperationRow::from)
                .collect(),
            masked: report.masked,
        },
    )
}
