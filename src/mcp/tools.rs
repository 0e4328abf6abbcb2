//! The tools, each reading one workspace through the caller's membership. Every answer
//! comes from the workspace's records as the caller is shown them (`workspace::shown`:
//! masked by the workspace's rules and PII detectors, aliases in place of their terms):
//! search matches shown text, filters, sorts and aggregates compare shown values, and
//! collections, records and fields are named as shown. So a hit, a cursor, a count or an
//! error is the same for a right and a wrong guess at a masked value.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Principal;
use super::cursor::{Cursors, MAX_OFFSET};
use super::error::McpError;
use super::snippet::Snippets;
use crate::privacy::Masker;
use crate::workspace::policy::Policy;
use crate::workspace::records::{Aggregate, Filter, Op};
use crate::workspace::{
    AggregateSpec, CollectionSummary, QuerySpec, Shown, WorkspaceError, WorkspaceService,
};

pub const SEARCH_LIMIT_MAX: u64 = 25;
/// The longest collection name or record id a call may give: names as shown, which
/// aliases and placeholders can make longer than the stored ones.
pub const NAME_MAX_CHARS: usize = 400;
pub const QUERY_LIMIT_MAX: u64 = 50;
pub const MAX_FILTERS: usize = 10;
/// Every tool's name, in the order `tools/list` gives them.
pub const NAMES: [&str; 5] = [
    "list_collections",
    "search",
    "query",
    "aggregate",
    "get_record",
];

static FILTER_SCHEMA: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "field": {"type": "string"},
            "op": {"type": "string", "enum": ["eq", "ne", "lt", "lte", "gt", "gte", "contains"]},
            "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
        },
        "required": ["field", "op", "value"],
        "additionalProperties": false
    })
});

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
            "description": "Full-text search over the workspace's records as you are shown them: words are matched as words against the masked text (aliases match, masked values do not); search syntax is not interpreted.",
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
                    "nextCursor": {"type": "string", "description": "Present when more hits follow: pass it as `cursor`."}
                },
                "required": ["hits"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "query",
            "title": "Query records",
            "description": "Records of one collection matching typed filters on its fields (collection and field names as list_collections shows them), sorted and paged. Filters and sort apply to values as you are shown them (masked; aliases match), and results are masked.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS},
                    "filters": {"type": "array", "maxItems": MAX_FILTERS, "items": FILTER_SCHEMA.clone()},
                    "sort": {"type": "object", "properties": {
                        "field": {"type": "string"},
                        "order": {"type": "string", "enum": ["asc", "desc"]}
                    }, "required": ["field"], "additionalProperties": false},
                    "limit": {"type": "integer", "minimum": 1, "maximum": QUERY_LIMIT_MAX, "default": 20},
                    "cursor": {"type": "string"}
                },
                "required": ["collection"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "aggregate",
            "title": "Aggregate records",
            "description": "count, sum, avg, min or max of a field over the matching records of one collection, optionally grouped by another field. Works on values and names as you are shown them (masked; aliases match).",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS},
                    "function": {"type": "string", "enum": ["count", "sum", "avg", "min", "max"]},
                    "field": {"type": "string", "description": "Required except for count."},
                    "group_by": {"type": "string"},
                    "filters": {"type": "array", "maxItems": MAX_FILTERS, "items": FILTER_SCHEMA.clone()}
                },
                "required": ["collection", "function"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "get_record",
            "title": "Get a record",
            "description": "One record by its collection and id as you are shown them (as search and query give them), masked.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS},
                    "id": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS}
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

/// A tool's answer, with what usage metadata keeps of it.
pub struct ToolOutcome {
    pub result: Result<Value, ToolFailure>,
    /// Collections, hits, records or groups returned.
    pub items: usize,
    /// Values masked in the answer, per category.
    pub masked: BTreeMap<&'static str, usize>,
}

/// Values masked in one call's answer, per category.
#[derive(Default)]
struct Counts(BTreeMap<&'static str, usize>);

impl Counts {
    fn add(&mut self, counts: &BTreeMap<&'static str, usize>) {
        for (category, n) in counts {
            *self.0.entry(category).or_default() += n;
        }
    }
}

/// The masker of the policy an answer was read with: to count what text already masked
/// (a name, a group key) shows masked.
fn masker(policy: &Policy) -> Result<Masker, McpError> {
    policy.masker().map_err(|e| McpError::Workspace(e.into()))
}

/// Runs tool `name` (one of `NAMES`) for `principal`.
pub async fn call(
    workspaces: &WorkspaceService,
    cursors: &Cursors,
    principal: &Principal,
    name: &str,
    arguments: &Value,
) -> Result<ToolOutcome, McpError> {
    let mut counts = Counts::default();
    let c = &mut counts;
    let pages = Pages {
        cursors,
        principal,
        tool: name,
    };
    let (result, list) = match name {
        "list_collections" => (
            list_collections(workspaces, principal, c).await,
            "collections",
        ),
        "search" => (search(workspaces, &pages, c, arguments).await, "hits"),
        "get_record" => (get_record(workspaces, principal, c, arguments).await, ""),
        "query" => (query(workspaces, &pages, c, arguments).await, "records"),
        "aggregate" => (
            aggregate(workspaces, principal, c, arguments).await,
            "groups",
        ),
        _ => (Err(ToolFailure("there is no tool of that name".into())), ""),
    };
    let items = match &result {
        Ok(_) if list.is_empty() => 1,
        Ok(answer) => answer[list].as_array().map_or(0, Vec::len),
        Err(_) => 0,
    };
    Ok(ToolOutcome {
        result,
        items,
        masked: counts.0,
    })
}

/// One collection's summary, named as `list_collections` shows it: the
/// `strongbox://collections/{name}` resource.
pub async fn read_collection(
    workspaces: &WorkspaceService,
    principal: &Principal,
    name: &str,
) -> Result<ToolOutcome, McpError> {
    let shown = workspaces
        .shown_collections(principal.user, principal.workspace)
        .await?;
    let mut counts = Counts::default();
    let Some(summary) = shown.answer.into_iter().find(|c| c.name == name) else {
        return Ok(ToolOutcome {
            result: Err(ToolFailure("no such collection".into())),
            items: 0,
            masked: counts.0,
        });
    };
    // Only the collection returned counts towards what was masked.
    let described = describe(summary, &masker(&shown.policy)?, &mut counts);
    Ok(ToolOutcome {
        result: Ok(described),
        items: 1,
        masked: counts.0,
    })
}

/// A shown collection's name, record count and fields.
fn describe(summary: CollectionSummary, masker: &Masker, counts: &mut Counts) -> Value {
    counts.add(&masker.shown_counts(&summary.name));
    let fields: Vec<Value> = summary
        .fields
        .iter()
        .map(|f| {
            counts.add(&masker.shown_counts(&f.name));
            json!({"name": f.name, "type": f.kind, "count": f.count})
        })
        .collect();
    json!({"name": summary.name, "records": summary.records, "fields": fields})
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
    counts: &mut Counts,
) -> Result<Value, ToolFailure> {
    let Shown { answer, policy } = workspaces
        .shown_collections(principal.user, principal.workspace)
        .await
        .map_err(McpError::from)?;
    let masker = masker(&policy)?;
    let collections: Vec<Value> = answer
        .into_iter()
        .map(|c| describe(c, &masker, counts))
        .collect();
    Ok(json!({ "collections": collections }))
}

async fn search(
    workspaces: &WorkspaceService,
    pages: &Pages<'_>,
    counts: &mut Counts,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let principal = pages.principal;
    let asked = text_argument(arguments, "query", 200)?;
    let limit = match arguments.get("limit") {
        None => 10,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=SEARCH_LIMIT_MAX).contains(n))
            .ok_or_else(|| ToolFailure(format!("`limit` must be 1 to {SEARCH_LIMIT_MAX}")))?,
    } as u32;
    let offset = pages.offset(arguments)?;
    let found = workspaces
        .shown_search(
            principal.user,
            principal.workspace,
            asked.to_string(),
            limit,
            offset,
        )
        .await
        .map_err(refused)?
        .answer;
    let snippets = Snippets::for_query(asked);
    let hits: Vec<Value> = found
        .items
        .into_iter()
        .map(|hit| {
            // The snippet is cut from the whole shown record, which is what is counted.
            counts.add(&hit.masked);
            json!({
                "collection": hit.collection,
                "id": hit.id,
                "snippet": snippets.cut(&hit.text),
            })
        })
        .collect();
    Ok(pages.with_next(json!({ "hits": hits }), found.has_more, offset + limit))
}

/// What a tool needs to page: cursors sealed for this principal and tool.
struct Pages<'a> {
    cursors: &'a Cursors,
    principal: &'a Principal,
    tool: &'a str,
}

impl Pages<'_> {
    /// Adds `nextCursor`, the sealed offset of the next page, when another page follows;
    /// MCP leaves it out on the last page.
    fn with_next(&self, mut page: Value, has_more: bool, next: u32) -> Value {
        if has_more && next <= MAX_OFFSET {
            page["nextCursor"] = json!(self.cursors.seal(self.principal, self.tool, next));
        }
        page
    }

    /// The offset the `cursor` argument points at: 0 without one, refused unless this
    /// server gave it to this principal for this tool.
    fn offset(&self, arguments: &Value) -> Result<u32, ToolFailure> {
        match arguments.get("cursor") {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_str()
                .and_then(|c| self.cursors.open(self.principal, self.tool, c))
                .ok_or_else(|| ToolFailure("`cursor` is not one this server gave".into())),
        }
    }
}

async fn get_record(
    workspaces: &WorkspaceService,
    principal: &Principal,
    counts: &mut Counts,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let collection = text_argument(arguments, "collection", NAME_MAX_CHARS)?;
    let id = text_argument(arguments, "id", NAME_MAX_CHARS)?;
    let record = match workspaces
        .shown_record(
            principal.user,
            principal.workspace,
            collection.to_string(),
            id.to_string(),
        )
        .await
    {
        Ok(shown) => shown.answer,
        Err(WorkspaceError::NotFound) => return Err(ToolFailure("no such record".into())),
        Err(WorkspaceError::AmbiguousId) => {
            return Err(ToolFailure(
                "several records have that id as you are shown it; find them with query".into(),
            ));
        }
        Err(e) => return Err(McpError::from(e).into()),
    };
    counts.add(&record.masked);
    Ok(json!({
        "collection": record.collection,
        "id": record.id,
        "version": record.version,
        "updated_at": record.updated_at,
        "data": record.data,
    }))
}

/// The filters in the arguments, on fields named as shown.
fn filters_argument(arguments: &Value) -> Result<Vec<Filter>, ToolFailure> {
    let bad = || {
        ToolFailure("each filter needs a field, an op (eq, ne, lt, lte, gt, gte, contains) and a string, number or boolean value".into())
    };
    let Some(list) = arguments.get("filters") else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(bad)?;
    if list.len() > MAX_FILTERS {
        return Err(ToolFailure(format!("at most {MAX_FILTERS} filters")));
    }
    list.iter()
        .map(|f| {
            let field = f.get("field").and_then(Value::as_str).ok_or_else(bad)?;
            let op: Op = f
                .get("op")
                .and_then(Value::as_str)
                .and_then(|o| o.parse().ok())
                .ok_or_else(bad)?;
            let value = match f.get("value") {
                Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => v.clone(),
                _ => return Err(bad()),
            };
            Ok(Filter {
                field: field.to_string(),
                op,
                value,
            })
        })
        .collect()
}

/// A workspace refusal the model can act on, or the error.
fn refused(e: WorkspaceError) -> ToolFailure {
    match e {
        WorkspaceError::UnknownField => ToolFailure(
            "a field named is not one of the collection's fields (see list_collections)".into(),
        ),
        WorkspaceError::TooSlow => ToolFailure("the query took too long; narrow it".into()),
        WorkspaceError::UnknownCollection => ToolFailure("no such collection".into()),
        other => McpError::from(other).into(),
    }
}

async fn query(
    workspaces: &WorkspaceService,
    pages: &Pages<'_>,
    counts: &mut Counts,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let principal = pages.principal;
    let collection = text_argument(arguments, "collection", NAME_MAX_CHARS)?;
    let filters = filters_argument(arguments)?;
    let sort = match arguments.get("sort") {
        None | Some(Value::Null) => None,
        Some(sort) => {
            let field = sort
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| ToolFailure("`sort` needs a field".into()))?;
            let descending = match sort.get("order").and_then(Value::as_str) {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => return Err(ToolFailure("`order` is asc or desc".into())),
            };
            Some((field.to_string(), descending))
        }
    };
    let limit = match arguments.get("limit") {
        None => 20,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=QUERY_LIMIT_MAX).contains(n))
            .ok_or_else(|| ToolFailure(format!("`limit` must be 1 to {QUERY_LIMIT_MAX}")))?,
    } as u32;
    let offset = pages.offset(arguments)?;
    let spec = QuerySpec {
        filters,
        sort,
        limit,
        offset,
    };
    let found = workspaces
        .shown_query(
            principal.user,
            principal.workspace,
            collection.to_string(),
            spec,
        )
        .await
        .map_err(refused)?
        .answer;
    let records: Vec<Value> = found
        .items
        .into_iter()
        .map(|r| {
            counts.add(&r.masked);
            json!({"id": r.id, "version": r.version, "data": r.data})
        })
        .collect();
    Ok(pages.with_next(
        json!({ "records": records }),
        found.has_more,
        offset + limit,
    ))
}

async fn aggregate(
    workspaces: &WorkspaceService,
    principal: &Principal,
    counts: &mut Counts,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let collection = text_argument(arguments, "collection", NAME_MAX_CHARS)?;
    let function: Aggregate = arguments
        .get("function")
        .and_then(Value::as_str)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| ToolFailure("`function` is count, sum, avg, min or max".into()))?;
    let field = arguments
        .get("field")
        .and_then(Value::as_str)
        .map(str::to_string);
    let group_by = arguments
        .get("group_by")
        .and_then(Value::as_str)
        .map(str::to_string);
    if field.is_none() && function != Aggregate::Count {
        return Err(ToolFailure(
            "`field` is needed for sum, avg, min and max".into(),
        ));
    }
    let spec = AggregateSpec {
        function,
        field,
        group_by,
        filters: filters_argument(arguments)?,
    };
    let Shown { answer, policy } = workspaces
        .shown_aggregate(
            principal.user,
            principal.workspace,
            collection.to_string(),
            spec,
        )
        .await
        .map_err(refused)?;
    // Keys and values are shown values already; what they show masked is counted.
    let masker = masker(&policy)?;
    for shown in answer.iter().flat_map(|g| [&g.key, &g.value]) {
        if let Some(text) = shown.as_str() {
            counts.add(&masker.shown_counts(text));
        }
    }
    let groups: Vec<Value> = answer
        .into_iter()
        .map(|g| json!({"key": g.key, "value": g.value}))
        .collect();
    Ok(json!({ "groups": groups }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_the_tools_listed() {
        let listed: Vec<Value> = definitions()
            .as_array()
            .expect("a list")
            .iter()
            .map(|t| t["name"].clone())
            .collect();
        assert_eq!(listed, NAMES.map(Value::from));
    }
}
