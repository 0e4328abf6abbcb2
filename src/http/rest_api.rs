//! The REST API for scripts under `/api/v1/`: collections, search and records of the one
//! workspace a personal token is scoped to, described by the OpenAPI document served at
//! `/api/v1/openapi.json`. The token acts for its person, within their current role.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::extract::{Query, bearer_token};
use super::{ApiError, only, record_actor, record_workspace};
use crate::audit::Actor;
use crate::tokens::{TokenGrant, TokenService};
use crate::workspace::WorkspaceService;
use crate::workspace::records::{CollectionName, Record, RecordId, SNIPPET_CLOSE, SNIPPET_OPEN};

const RECORD_PATH: &str = "/api/v1/collections/{collection}/records/{id}";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(only(Method::GET, "/api/v1/openapi.json", openapi))
        .service(only(Method::GET, "/api/v1/collections", list_collections))
        .service(only(Method::GET, "/api/v1/search", search))
        .service(
            web::resource(RECORD_PATH)
                .route(web::get().to(get_record))
                .route(web::put().to(put_record))
                .route(web::delete().to(delete_record))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                        allow: "GET, PUT, DELETE".into(),
                    })
                })),
        );
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Strongbox REST API",
        description = "Read and write the records of the one workspace a personal token \
                       (`sbx_pat_…`, made on the workspace's Tokens page) is scoped to."
    ),
    paths(list_collections, search, get_record, put_record, delete_record),
    components(schemas(CollectionList, CollectionInfo, FieldInfo, SearchResults, SearchHit, RecordOut, ErrorResponse, ErrorInfo)),
    modifiers(&PersonalTokenScheme),
    security(("personal_token" = []))
)]
pub struct ApiDoc;

struct PersonalTokenScheme;

impl Modify for PersonalTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "personal_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal token: sbx_pat_<id>_<secret>"))
                    .build(),
            ),
        );
    }
}

/// The document, with the write operation's collection pattern as configured here.
async fn openapi(workspaces: web::Data<WorkspaceService>) -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    let pattern = workspaces.record_rules().collection_pattern().to_string();
    let put = doc
        .paths
        .paths
        .get_mut(RECORD_PATH)
        .and_then(|item| item.put.as_mut())
        .and_then(|op| op.parameters.as_mut());
    for parameter in put.into_iter().flatten() {
        let utoipa::openapi::RefOr::T(parameter) = parameter else {
            continue;
        };
        if parameter.name == "collection" {
            parameter.schema = Some(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(pattern.clone()))
                    .min_length(Some(1))
                    .max_length(Some(64))
                    .into(),
            );
        }
    }
    HttpResponse::Ok().json(doc)
}

#[derive(Serialize, ToSchema)]
struct CollectionList {
    collections: Vec<CollectionInfo>,
}

#[derive(Serialize, ToSchema)]
struct CollectionInfo {
    name: String,
    /// Live records in the collection.
    records: i64,
    /// Top-level fields seen, with their JSON type and in how many records.
    fields: Vec<FieldInfo>,
}

#[derive(Serialize, ToSchema)]
struct FieldInfo {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    count: i64,
}

#[derive(Serialize, ToSchema)]
struct SearchResults {
    hits: Vec<SearchHit>,
    /// Whether the next page has more hits.
    has_more: bool,
}

#[derive(Serialize, ToSchema)]
struct SearchHit {
    collection: String,
    id: String,
    /// Text around the matches.
    snippet: String,
}

#[derive(Serialize, ToSchema)]
struct RecordOut {
    collection: String,
    id: String,
    /// Goes up by one on every change.
    version: i64,
    /// Unix seconds.
    updated_at: i64,
    #[schema(value_type = Object)]
    data: Value,
}

impl From<Record> for RecordOut {
    fn from(r: Record) -> Self {
        Self {
            collection: r.collection,
            id: r.id,
            version: r.version,
            updated_at: r.updated_at,
            data: r.data,
        }
    }
}

/// Every error: a stable code, a category message, and the field at fault if any.
#[derive(Serialize, ToSchema)]
struct ErrorResponse {
    error: ErrorInfo,
}

#[derive(Serialize, ToSchema)]
struct ErrorInfo {
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// Words to find; search syntax is not interpreted.
    #[param(min_length = 1, max_length = 200)]
    q: String,
    /// Page number from 0; 25 hits a page.
    #[param(minimum = 0, maximum = 1000)]
    page: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct RecordPath {
    /// The collection's name.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
    )]
    collection: String,
    /// The record's id in its collection.
    #[param(min_length = 1, max_length = 200)]
    id: String,
}

/// The grant behind the request's bearer token, or 401.
async fn granted(req: &HttpRequest, tokens: &TokenService) -> Result<TokenGrant, ApiError> {
    let grant = tokens.authenticate(bearer_token(req)?).await?;
    record_workspace(grant.workspace);
    record_actor(format_args!("token:{}", grant.token));
    Ok(grant)
}

/// The grant of a token that may write right now, or 401/403.
async fn writing_grant(req: &HttpRequest, tokens: &TokenService) -> Result<TokenGrant, ApiError> {
    let grant = granted(req, tokens).await?;
    match grant.can_write {
        true => Ok(grant),
        false => Err(ApiError::Forbidden),
    }
}

fn record_path(path: &RecordPath) -> Result<(CollectionName, RecordId), ApiError> {
    let collection = CollectionName::parse(&path.collection).map_err(|_| ApiError::NotFound)?;
    let id = RecordId::parse(&path.id).map_err(|_| ApiError::NotFound)?;
    Ok((collection, id))
}

/// Lists the workspace's collections with their record counts and fields.
#[utoipa::path(get, path = "/api/v1/collections", tag = "records",
    responses(
        (status = 200, body = CollectionList),
        (status = 401, description = "No valid token", body = ErrorResponse),
        (status = 429, description = "Too many requests", body = ErrorResponse),
    ))]
async fn list_collections(
    req: HttpRequest,
    tokens: web::Data<TokenService>,
    workspaces: web::Data<WorkspaceService>,
) -> Result<HttpResponse, ApiError> {
    let grant = granted(&req, &tokens).await?;
    let collections = workspaces
        .collection_summaries(grant.user, grant.workspace)
        .await?
        .into_iter()
        .map(|c| CollectionInfo {
            name: c.name,
            records: c.records,
            fields: c
                .fields
                .into_iter()
                .map(|f| FieldInfo {
                    name: f.name,
                    kind: f.kind,
                    count: f.count,
                })
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(CollectionList { collections }))
}

/// Full-text search over the workspace's live records.
#[utoipa::path(get, path = "/api/v1/search", tag = "records", params(SearchParams),
    responses(
        (status = 200, body = SearchResults),
        (status = 400, description = "Malformed query string", body = ErrorResponse),
        (status = 401, description = "No valid token", body = ErrorResponse),
        (status = 422, description = "A parameter is out of range", body = ErrorResponse),
        (status = 429, description = "Too many requests", body = ErrorResponse),
    ))]
async fn search(
    req: HttpRequest,
    tokens: web::Data<TokenService>,
    workspaces: web::Data<WorkspaceService>,
    query: Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let grant = granted(&req, &tokens).await?;
    let query = query.into_inner();
    let length = query.q.chars().count();
    if !(1..=200).contains(&length) {
        return Err(ApiError::InvalidField { field: "q".into() });
    }
    let page = query.page.unwrap_or(0);
    if page > crate::workspace::MAX_PAGE {
        return Err(ApiError::InvalidField {
            field: "page".into(),
        });
    }
    let found = workspaces
        .search(grant.user, grant.workspace, query.q, page)
        .await?;
    let hits = found
        .items
        .into_iter()
        .map(|hit| SearchHit {
            collection: hit.collection,
            id: hit.id,
            snippet: hit
                .snippet
                .replace(SNIPPET_OPEN, "")
                .replace(SNIPPET_CLOSE, ""),
        })
        .collect();
    Ok(HttpResponse::Ok().json(SearchResults {
        hits,
        has_more: found.has_more,
    }))
}

/// Reads one live record.
#[utoipa::path(get, path = "/api/v1/collections/{collection}/records/{id}", tag = "records",
    params(RecordPath),
    responses(
        (status = 200, body = RecordOut),
        (status = 401, description = "No valid token", body = ErrorResponse),
        (status = 404, description = "No such record", body = ErrorResponse),
        (status = 429, description = "Too many requests", body = ErrorResponse),
    ))]
async fn get_record(
    req: HttpRequest,
    tokens: web::Data<TokenService>,
    workspaces: web::Data<WorkspaceService>,
    path: web::Path<RecordPath>,
) -> Result<HttpResponse, ApiError> {
    let grant = granted(&req, &tokens).await?;
    let (collection, id) = record_path(&path)?;
    let record = workspaces
        .record(grant.user, grant.workspace, collection, id)
        .await?;
    Ok(HttpResponse::Ok().json(RecordOut::from(record)))
}

/// Creates or replaces a record with the JSON object in the body (read-write tokens).
#[utoipa::path(put, path = "/api/v1/collections/{collection}/records/{id}", tag = "records",
    params(RecordPath),
    request_body(content = Object, description = "The record's content: a JSON object"),
    responses(
        (status = 200, description = "The record as stored", body = RecordOut),
        (status = 400, description = "The body is not JSON", body = ErrorResponse),
        (status = 401, description = "No valid token", body = ErrorResponse),
        (status = 403, description = "The token or its person may not write", body = ErrorResponse),
        (status = 404, description = "Not a collection or record name", body = ErrorResponse),
        (status = 413, description = "The body is too large", body = ErrorResponse),
        (status = 415, description = "The body is not application/json", body = ErrorResponse),
        (status = 422, description = "The record breaks a limit", body = ErrorResponse),
        (status = 429, description = "Too many requests", body = ErrorResponse),
    ))]
async fn put_record(
    req: HttpRequest,
    tokens: web::Data<TokenService>,
    workspaces: web::Data<WorkspaceService>,
    path: web::Path<RecordPath>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let grant = writing_grant(&req, &tokens).await?;
    let (collection, id) = record_path(&path)?;
    let record = workspaces
        .put_record(
            grant.user,
            grant.workspace,
            collection.as_str().to_string(),
            id.as_str().to_string(),
            Value::Object(body.into_inner()),
        )
        .await?;
    Ok(HttpResponse::Ok().json(RecordOut::from(record)))
}

/// Deletes a record, leaving a tombstone (read-write tokens).
#[utoipa::path(delete, path = "/api/v1/collections/{collection}/records/{id}", tag = "records",
    params(RecordPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = ErrorResponse),
        (status = 403, description = "The token or its person may not write", body = ErrorResponse),
        (status = 404, description = "No such record", body = ErrorResponse),
        (status = 429, description = "Too many requests", body = ErrorResponse),
    ))]
async fn delete_record(
    req: HttpRequest,
    tokens: web::Data<TokenService>,
    workspaces: web::Data<WorkspaceService>,
    path: web::Path<RecordPath>,
) -> Result<HttpResponse, ApiError> {
    let grant = writing_grant(&req, &tokens).await?;
    let (collection, id) = record_path(&path)?;
    workspaces
        .delete_record(
            grant.user,
            Actor::token(grant.token),
            grant.workspace,
            collection,
            id,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
