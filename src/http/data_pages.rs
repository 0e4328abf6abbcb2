//! Dashboard pages for a workspace's data: collections, records, full-text search with
//! highlighted snippets, soft delete, and the masking rules with their live preview.

use actix_web::http::StatusCode;
use actix_web::http::header::ACCEPT;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::ApiError;
use super::extract::{Form, Query};
use super::pages::{Chrome, Ctx, format_date, render, require, see_other};
use super::workspace_pages::{SECTIONS, Section, respond, viewer, workspace_id, workspace_post};
use crate::audit::Actor;
use crate::ids::WorkspaceId;
use crate::privacy::RuleAction;
use crate::workspace::records::{CollectionName, RecordId, SNIPPET_CLOSE, SNIPPET_OPEN};
use crate::workspace::{Action, MAX_PAGE, Preview, WorkspaceError, WorkspaceService};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/w/{id}/records", web::get().to(collections))
        .route("/w/{id}/records/{collection}", web::get().to(collection))
        .route("/w/{id}/records/{collection}/record", web::get().to(record))
        .route(
            "/w/{id}/records/{collection}/record/delete",
            web::post().to(delete_record),
        )
        .route("/w/{id}/search", web::get().to(search))
        .route("/w/{id}/masking", web::get().to(masking))
        .route("/w/{id}/masking/rules", web::post().to(put_rule))
        .route("/w/{id}/masking/rules/remove", web::post().to(remove_rule))
        .route("/w/{id}/masking/requirement", web::post().to(requirement))
        .route("/w/{id}/masking/preview", web::post().to(preview));
}

/// How long a record's one-line summary in a listing may be.
const SUMMARY_CHARS: usize = 160;

fn collection_name(raw: &str) -> Result<CollectionName, ApiError> {
    CollectionName::parse(raw).map_err(|_| ApiError::NotFound)
}

fn record_href(workspace: WorkspaceId, collection: &str, id: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/w/{workspace}/records/{collection}/record?id={id}")
}

/// The pager's links: `base` already ends in `?` or `&`.
struct Pager {
    previous_href: Option<String>,
    next_href: Option<String>,
    page_number: u32,
}

impl Pager {
    fn new(base: &str, page: u32, has_more: bool) -> Self {
        let next = page.checked_add(1).filter(|_| has_more);
        Self {
            previous_href: page.checked_sub(1).map(|p| format!("{base}page={p}")),
            next_href: next.map(|p| format!("{base}page={p}")),
            page_number: page.saturating_add(1),
        }
    }
}

/// A page number from a query string: 0 to `MAX_PAGE`, or the query is refused.
fn page_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let page = u32::deserialize(d)?;
    if page > MAX_PAGE {
        return Err(serde::de::Error::custom("page out of range"));
    }
    Ok(page)
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default, deserialize_with = "page_number")]
    page: u32,
}

#[derive(Deserialize)]
struct RecordQuery {
    #[serde(default)]
    id: String,
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default, deserialize_with = "page_number")]
    page: u32,
}

#[derive(Template)]
#[template(path = "records.html")]
struct CollectionsPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    query: String,
    collections: Vec<(String, i64)>,
}

async fn collections(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let collections = match service.collections(user, workspace.id).await {
        Ok(list) => list,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    render(
        StatusCode::OK,
        CollectionsPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id: workspace.id,
            name: workspace.name,
            query: String::new(),
            collections,
        },
    )
}

#[derive(Template)]
#[template(path = "collection.html")]
struct CollectionView {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    collection: String,
    fields: Vec<crate::workspace::records::FieldSummary>,
    rows: Vec<RecordRow>,
    previous_href: Option<String>,
    next_href: Option<String>,
    page_number: u32,
}

struct RecordRow {
    id: String,
    href: String,
    summary: String,
    updated_on: String,
}

async fn collection(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<(String, String)>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path.0).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let name = collection_name(&path.1)?;
    let page = match service
        .collection(user, workspace.id, name.clone(), query.page)
        .await
    {
        Ok(page) => page,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    if page.fields.is_empty() && query.page == 0 {
        return Err(ApiError::NotFound);
    }
    let rows = page
        .records
        .items
        .into_iter()
        .map(|r| RecordRow {
            href: record_href(workspace.id, name.as_str(), &r.id),
            summary: r.data.to_string().chars().take(SUMMARY_CHARS).collect(),
            updated_on: format_date(r.updated_at),
            id: r.id,
        })
        .collect();
    let base = format!("/w/{}/records/{}?", workspace.id, name.as_str());
    let pager = Pager::new(&base, query.page, page.records.has_more);
    render(
        StatusCode::OK,
        CollectionView {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id: workspace.id,
            name: workspace.name,
            collection: name.as_str().to_string(),
            fields: page.fields,
            rows,
            previous_href: pager.previous_href,
            next_href: pager.next_href,
            page_number: pager.page_number,
        },
    )
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordView {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    collection: String,
    record_id: String,
    version: i64,
    updated_on: String,
    json: String,
    can_delete: bool,
}

async fn record(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<(String, String)>,
    query: Query<RecordQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path.0).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let collection = collection_name(&path.1)?;
    let record_id = RecordId::parse(&query.id).map_err(|_| ApiError::NotFound)?;
    let record = match service
        .record(user, workspace.id, collection.clone(), record_id)
        .await
    {
        Ok(record) => record,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    render(
        StatusCode::OK,
        RecordView {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id: workspace.id,
            collection: collection.as_str().to_string(),
            json: serde_json::to_string_pretty(&record.data).map_err(ApiError::internal)?,
            version: record.version,
            updated_on: format_date(record.updated_at),
            record_id: record.id,
            can_delete: workspace.role.may(Action::WriteRecords),
        },
    )
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

async fn delete_record(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<(String, String)>,
    form: Form<DeleteForm>,
) -> Result<HttpResponse, ApiError> {
    let collection = collection_name(&path.1)?;
    let record = RecordId::parse(&form.id).map_err(|_| ApiError::NotFound)?;
    let next = format!("/w/{{id}}/records/{}", collection.as_str());
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        &next,
        |user, id| service.delete_record(user, Actor::user(user), id, collection, record),
    )
    .await
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    query: String,
    hits: Vec<HitRow>,
    previous_href: Option<String>,
    next_href: Option<String>,
    page_number: u32,
}

struct HitRow {
    collection: String,
    id: String,
    href: String,
    /// The snippet in parts, each marked as a match or not; escaped when rendered.
    snippet: Vec<(String, bool)>,
}

/// Splits a snippet on the match markers search put around each hit.
fn snippet_parts(snippet: &str) -> Vec<(String, bool)> {
    let mut parts = Vec::new();
    for (i, piece) in snippet.split(SNIPPET_OPEN).enumerate() {
        match (i, piece.split_once(SNIPPET_CLOSE)) {
            (0, _) | (_, None) => parts.push((piece.replace(SNIPPET_CLOSE, ""), false)),
            (_, Some((hit, rest))) => {
                parts.push((hit.to_string(), true));
                parts.push((rest.to_string(), false));
            }
        }
    }
    parts.retain(|(text, _)| !text.is_empty());
    parts
}

async fn search(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    query: Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let query = query.into_inner();
    let q: String = query.q.chars().take(200).collect();
    let hits = match service
        .search(user, workspace.id, q.clone(), query.page)
        .await
    {
        Ok(hits) => hits,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let base = format!("/w/{}/search?q={encoded}&", workspace.id);
    let pager = Pager::new(&base, query.page, hits.has_more);
    let rows = hits
        .items
        .into_iter()
        .map(|hit| HitRow {
            href: record_href(workspace.id, &hit.collection, &hit.id),
            snippet: snippet_parts(&hit.snippet),
            collection: hit.collection,
            id: hit.id,
        })
        .collect();
    render(
        StatusCode::OK,
        SearchPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id: workspace.id,
            name: workspace.name,
            query: q,
            hits: rows,
            previous_href: pager.previous_href,
            next_href: pager.next_href,
            page_number: pager.page_number,
        },
    )
}

#[derive(Template)]
#[template(path = "masking.html")]
struct MaskingPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    can_manage: bool,
    /// Each rule's term and what it is shown as.
    rules: Vec<(String, String)>,
    require_redaction: bool,
    sample: String,
    masked: String,
    counts: String,
}

/// "EMAIL: 2, PHONE: 1", or a sentence when nothing was found.
fn counts_summary(preview: &Preview) -> String {
    if preview.counts.is_empty() {
        return "Nothing masked.".into();
    }
    let parts: Vec<String> = preview
        .counts
        .iter()
        .map(|(category, n)| format!("{category}: {n}"))
        .collect();
    format!("Masked {}.", parts.join(", "))
}

async fn masking(
    ctx: Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    show_masking(ctx, &service, &path, None).await
}

async fn show_masking(
    (req, csrf, current, _): Ctx,
    service: &WorkspaceService,
    raw_id: &str,
    preview: Option<(String, Preview)>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), service, raw_id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let policy = match service.policy(user, workspace.id).await {
        Ok(policy) => policy,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let rules = policy
        .rules
        .into_iter()
        .map(|rule| match rule.action {
            RuleAction::Alias(alias) => (rule.term, alias),
            RuleAction::Redact => (rule.term, "[REDACTED]".into()),
        })
        .collect();
    let (sample, masked, counts) = match preview {
        Some((sample, preview)) => {
            let counts = counts_summary(&preview);
            (sample, preview.text, counts)
        }
        None => Default::default(),
    };
    render(
        StatusCode::OK,
        MaskingPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id: workspace.id,
            can_manage: workspace.role.may(Action::ManageMasking),
            name: workspace.name,
            rules,
            require_redaction: policy.require_redaction,
            sample,
            masked,
            counts,
        },
    )
}

#[derive(Deserialize)]
struct RuleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    term: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    alias: String,
}

async fn put_rule(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<RuleForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/w/{id}/masking",
        |user, id| service.put_masking_rule(user, id, form.term, form.action, form.alias),
    )
    .await
}

async fn remove_rule(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<RuleForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/w/{id}/masking",
        |user, id| service.remove_masking_rule(user, id, form.term),
    )
    .await
}

#[derive(Deserialize)]
struct RequirementForm {
    #[serde(default)]
    csrf: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    required: Option<String>,
}

async fn requirement(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<RequirementForm>,
) -> Result<HttpResponse, ApiError> {
    let required = form.required.as_deref() == Some("true");
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/w/{id}/masking",
        |user, id| service.set_require_redaction(user, id, required),
    )
    .await
}

#[derive(Deserialize)]
struct PreviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// Masks the sample: the page with the result, or JSON for the live preview script.
async fn preview(
    (req, csrf, current, auth): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<PreviewForm>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let id = workspace_id(&path)?;
    csrf.verify(&req, &form.csrf)?;
    let sample = form.into_inner().text;
    let preview = match service.preview(signed_in.user.id, id, sample.clone()).await {
        Ok(preview) => preview,
        Err(WorkspaceError::NotFound) => return Err(ApiError::NotFound),
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let wants_json = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if wants_json {
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "text": preview.text,
            "summary": counts_summary(&preview),
        })));
    }
    show_masking(
        (req, csrf, current, auth),
        &service,
        &path,
        Some((sample, preview)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_split_into_marked_parts() {
        let snippet = format!(
            "…paid {SNIPPET_OPEN}Ada{SNIPPET_CLOSE} in {SNIPPET_OPEN}London{SNIPPET_CLOSE}"
        );
        assert_eq!(
            snippet_parts(&snippet),
            vec![
                ("…paid ".to_string(), false),
                ("Ada".to_string(), true),
                (" in ".to_string(), false),
                ("London".to_string(), true),
            ]
        );
        assert_eq!(snippet_parts("plain"), vec![("plain".to_string(), false)]);
    }
}
