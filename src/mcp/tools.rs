//! The tools, each reading one workspace through the caller's membership and returning its
//! result masked by the workspace's rules. Aliases in arguments are mapped back to their
//! terms first, so a client can search for what it was shown.

use serde_json::{Value, json};

use super::Principal;
use super::error::McpError;
use crate::privacy::Masker;
use crate::workspace::WorkspaceService;
use crate::workspace::records::{CollectionName, RecordId, SNIPPET_CLOSE, SNIPPET_OPEN};

pub const SEARCH_LIMIT_MAX: u64 = 25;

/// The tool list `tools/list` answers, with input and output schemas.
pub fn definitions() -> Value {
    json!([
        {
            "name": "list_collections",
            "title": "List collections",
            "description": "The workspace's collections with their record counts and fields (name, JSON type, how many records have it).",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            "outputSchema": {
                "type": "object",
                "properties": {"collections": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "records": {"type": "integer"},
                        "fields": {"type": "array", "items": {"type": "object", "properties": {
                            "name": {"type": "string"}, "type": {"type": "string"}, "count": {"type": "integer"}
                        }, "required": ["name", "type", "count"]}}
                    },
                    "required": ["name", "records", "fields"]
                }}},
                "required": ["collections"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "search",
            "title": "Search records",
            "description": "Full-text search over the workspace's records. Words are matched as words; search syntax is not interpreted. Results are masked.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 200},
                    "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX, "default": 10},
                    "cursor": {"type": "string", "description": "From a previous result's nextCursor."}
                },
                "required": ["query"],
                "additionalProperties": false
            },
            "outputSchema": {
                "type": "object",
                "properties": {
                    "hits": {"type": "array", "items": {"type": "object", "properties": {
                        "collection": {"type": "string"}, "id": {"type": "string"}, "snippet": {"type": "string"}
                    }, "required": ["collection", "id", "snippet"]}},
                    "nextCursor": {"type": ["string", "null"]}
                },
                "required": ["hits"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "get_record",
            "title": "Get a record",
            "description": "One record by collection and id, masked.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string", "minLength": 1, "maxLength": 64},
                    "id": {"type": "string", "minLength": 1, "maxLength": 200}
                },
                "required": ["collection", "id"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        }
    ])
}

/// A tool's failure that the model should see (bad arguments, nothing found), as opposed
/// to a protocol error.
pub struct ToolFailure(pub String);

impl From<McpError> for ToolFailure {
    fn from(e: McpError) -> Self {
        Self(e.to_string())
    }
}

pub async fn call(
    workspaces: &WorkspaceService,
    principal: &Principal,
    name: &str,
    arguments: &Value,
) -> Result<Result<Value, ToolFailure>, McpError> {
    let policy = workspaces
        .policy(principal.user, principal.workspace)
        .await?;
    let masker = policy.masker().map_err(|e| McpError::Workspace(e.into()))?;
    let result = match name {
        "list_collections" => list_collections(workspaces, principal, &masker).await,
        "search" => search(workspaces, principal, &masker, arguments).await,
        "get_record" => get_record(workspaces, principal, &masker, arguments).await,
        _ => return Ok(Err(ToolFailure("there is no tool of that name".into()))),
    };
    Ok(result)
}

fn text_argument<'a>(
    arguments: &'a Value,
    name: &str,
    max_chars: usize,
) -> Result<&'a str, ToolFailure> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| (1..=max_chars).contains(&s.chars().count()))
        .ok_or_else(|| {
            ToolFailure(format!(
                "`{name}` must be a string of 1 to {max_chars} characters"
            ))
        })
}

async fn list_collections(
    workspaces: &WorkspaceService,
    principal: &Principal,
    masker: &Masker,
) -> Result<Value, ToolFailure> {
    let summaries = workspaces
        .collection_summaries(principal.user, principal.workspace)
        .await
        .map_err(McpError::from)?;
    let collections: Vec<Value> = summaries
        .into_iter()
        .map(|c| {
            let fields: Vec<Value> = c
                .fields
                .into_iter()
                .map(|f| json!({"name": masker.mask(&f.name).text, "type": f.kind, "count": f.count}))
                .collect();
            json!({"name": masker.mask(&c.name).text, "records": c.records, "fields": fields})
        })
        .collect();
    Ok(json!({ "collections": collections }))
}

async fn search(
    workspaces: &WorkspaceService,
    principal: &Principal,
    masker: &Masker,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let query = masker.unalias(text_argument(arguments, "query", 200)?);
    let limit = match arguments.get("limit") {
        None => 10,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=SEARCH_LIMIT_MAX).contains(n))
            .ok_or_else(|| ToolFailure(format!("`limit` must be 1 to {SEARCH_LIMIT_MAX}")))?,
    };
    let page = match arguments.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_str()
            .and_then(|c| c.parse::<u32>().ok())
            .ok_or_else(|| ToolFailure("`cursor` is not one this server gave".into()))?,
    };
    let found = workspaces
        .search(principal.user, principal.workspace, query, page)
        .await
        .map_err(McpError::from)?;
    let hits: Vec<Value> = found
        .items
        .into_iter()
        .take(limit as usize)
        .map(|hit| {
            let snippet = hit
                .snippet
                .replace(SNIPPET_OPEN, "")
                .replace(SNIPPET_CLOSE, "");
            json!({
                "collection": masker.mask(&hit.collection).text,
                "id": masker.mask(&hit.id).text,
                "snippet": masker.mask(&snippet).text,
            })
        })
        .collect();
    let next = found.has_more.then(|| (page + 1).to_string());
    Ok(json!({ "hits": hits, "nextCursor": next }))
}

async fn get_record(
    workspaces: &WorkspaceService,
    principal: &Principal,
    masker: &Masker,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let not_found = || ToolFailure("no such record".into());
    let collection = CollectionName::parse(text_argument(arguments, "collection", 64)?)
        .map_err(|_| not_found())?;
    let id = RecordId::parse(&masker.unalias(text_argument(arguments, "id", 200)?))
        .map_err(|_| not_found())?;
    let record = match workspaces
        .record(principal.user, principal.workspace, collection, id)
        .await
    {
        Ok(record) => record,
        Err(crate::workspace::WorkspaceError::NotFound) => return Err(not_found()),
        Err(e) => return Err(McpError::from(e).into()),
    };
    let (data, _) = masker.mask_json(&record.data);
    Ok(json!({
        "collection": masker.mask(&record.collection).text,
        "id": masker.mask(&record.id).text,
        "version": record.version,
        "updated_at": record.updated_at,
        "data": data,
    }))
}
