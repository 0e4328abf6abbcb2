//! The tools, each reading one workspace through the caller's membership and returning its
//! result masked by the workspace's rules. Every question is answered on the data as the
//! caller is shown it: search finds records through an alias's term but keeps only those
//! matching as shown, and filters, sorts and aggregates compare masked values, so nothing
//! masked can be probed. Field and collection names given as aliases are mapped back.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Principal;
use super::error::McpError;
use crate::privacy::Masker;
use crate::workspace::WorkspaceService;
use crate::workspace::records::{Aggregate, CollectionName, Filter, Op, RecordId};
use crate::workspace::{AggregateSpec, CollectionSummary, QuerySpec, WorkspaceError};

pub const SEARCH_LIMIT_MAX: u64 = 25;
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
            "description": "Full-text search over the workspace's records. Words are matched as words against the records as you are shown them (masked; aliases match); search syntax is not interpreted.",
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
            "description": "Records of one collection matching typed filters on its fields (see list_collections for the field names), sorted and paged. Filters and sort apply to values as you are shown them (masked; aliases match), and results are masked.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string", "minLength": 1, "maxLength": 64},
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
            "description": "count, sum, avg, min or max of a field over the matching records of one collection, optionally grouped by another field. Works on values as you are shown them (masked; aliases match).",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string", "minLength": 1, "maxLength": 64},
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

/// A tool's answer, with what usage metadata keeps of it.
pub struct ToolOutcome {
    pub result: Result<Value, ToolFailure>,
    /// Collections, hits, records or groups returned.
    pub items: usize,
    /// Values masked in the answer, per category.
    pub masked: BTreeMap<&'static str, usize>,
}

/// The workspace's masking rules applied to one call's answer, counting what they replaced.
struct Masking {
    masker: Arc<Masker>,
    counts: BTreeMap<&'static str, usize>,
}

impl Masking {
    fn text(&mut self, text: &str) -> String {
        let masked = self.masker.mask(text);
        self.add(masked.counts);
        masked.text
    }

    fn json(&mut self, value: &Value) -> Value {
        let (masked, counts) = self.masker.mask_json(value);
        self.add(counts);
        masked
    }

    fn add(&mut self, counts: BTreeMap<&'static str, usize>) {
        for (category, n) in counts {
            *self.counts.entry(category).or_default() += n;
        }
    }

    /// `raw` with every alias mapped back to its term.
    fn unalias(&self, raw: &str) -> String {
        self.masker.unalias(raw)
    }
}

impl ToolOutcome {
    fn new(result: Result<Value, ToolFailure>, items: usize, m: Masking) -> Self {
        Self {
            result,
            items,
            masked: m.counts,
        }
    }
}

/// The workspace's masking rules, compiled for one call.
async fn masking(
    workspaces: &WorkspaceService,
    principal: &Principal,
) -> Result<Masking, McpError> {
    let policy = workspaces
        .policy(principal.user, principal.workspace)
        .await?;
    Ok(Masking {
        masker: Arc::new(policy.masker().map_err(|e| McpError::Workspace(e.into()))?),
        counts: BTreeMap::new(),
    })
}

/// Runs tool `name` (one of `NAMES`) for `principal`.
pub async fn call(
    workspaces: &WorkspaceService,
    principal: &Principal,
    name: &str,
    arguments: &Value,
) -> Result<ToolOutcome, McpError> {
    let mut m = masking(workspaces, principal).await?;
    let (result, list) = match name {
        "list_collections" => (
            list_collections(workspaces, principal, &mut m).await,
            "collections",
        ),
        "search" => (
            search(workspaces, principal, &mut m, arguments).await,
            "hits",
        ),
        "get_record" => (
            get_record(workspaces, principal, &mut m, arguments).await,
            "",
        ),
        "query" => (
            query(workspaces, principal, &mut m, arguments).await,
            "records",
        ),
        "aggregate" => (
            aggregate(workspaces, principal, &mut m, arguments).await,
            "groups",
        ),
        _ => (Err(ToolFailure("there is no tool of that name".into())), ""),
    };
    let items = match &result {
        Ok(_) if list.is_empty() => 1,
        Ok(answer) => answer[list].as_array().map_or(0, Vec::len),
        Err(_) => 0,
    };
    Ok(ToolOutcome::new(result, items, m))
}

/// One collection's summary, named as `list_collections` shows it (masked): the
/// `strongbox://collections/{name}` resource.
pub async fn read_collection(
    workspaces: &WorkspaceService,
    principal: &Principal,
    name: &str,
) -> Result<ToolOutcome, McpError> {
    let mut m = masking(workspaces, principal).await?;
    let summaries = workspaces
        .collection_summaries(principal.user, principal.workspace)
        .await?;
    for summary in summaries {
        // Only the collection returned counts towards what was masked.
        let counted_so_far = std::mem::take(&mut m.counts);
        let described = describe(summary, &mut m);
        if described["name"] == name {
            return Ok(ToolOutcome::new(Ok(described), 1, m));
        }
        m.counts = counted_so_far;
    }
    Ok(ToolOutcome::new(
        Err(ToolFailure("no such collection".into())),
        0,
        m,
    ))
}

/// A collection's name, record count and fields, masked.
fn describe(summary: CollectionSummary, m: &mut Masking) -> Value {
    let fields: Vec<Value> = summary
        .fields
        .into_iter()
        .map(|f| json!({"name": m.text(&f.name), "type": f.kind, "count": f.count}))
        .collect();
    json!({"name": m.text(&summary.name), "records": summary.records, "fields": fields})
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
    m: &mut Masking,
) -> Result<Value, ToolFailure> {
    let summaries = workspaces
        .collection_summaries(principal.user, principal.workspace)
        .await
        .map_err(McpError::from)?;
    let collections: Vec<Value> = summaries.into_iter().map(|c| describe(c, m)).collect();
    Ok(json!({ "collections": collections }))
}

async fn search(
    workspaces: &WorkspaceService,
    principal: &Principal,
    m: &mut Masking,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let asked = text_argument(arguments, "query", 200)?;
    let limit = match arguments.get("limit") {
        None => 10,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=SEARCH_LIMIT_MAX).contains(n))
            .ok_or_else(|| ToolFailure(format!("`limit` must be 1 to {SEARCH_LIMIT_MAX}")))?,
    } as u32;
    let offset = cursor_argument(arguments)?;
    let found = workspaces
        .search_records(
            principal.user,
            principal.workspace,
            m.unalias(asked),
            limit,
            offset,
        )
        .await
        .map_err(refused)?;
    // The words as asked: aliases stay aliases, as in the masked records.
    let words = words_of(asked);
    let hits: Vec<Value> = found
        .items
        .into_iter()
        .filter_map(|record| {
            // Matching and the snippet use the record after masking, never its raw text:
            // a record found only through a value it shows masked (a search for a masked
            // email or card number) is left out, so a search cannot confirm that value.
            let text = masked_text(&m.json(&record.data));
            let visible = words_of(&text);
            if !words.iter().all(|w| visible.contains(w)) {
                return None;
            }
            Some(json!({
                "collection": m.text(&record.collection),
                "id": m.text(&record.id),
                "snippet": snippet(&text, &words),
            }))
        })
        .collect();
    Ok(with_next_cursor(
        json!({ "hits": hits }),
        found.has_more,
        offset + limit,
    ))
}

/// The lowercase words of `text`, split as the search index splits them.
fn words_of(text: &str) -> std::collections::HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A masked record's values, in one text.
fn masked_text(masked: &Value) -> String {
    let mut texts = Vec::new();
    collect_text(masked, &mut texts);
    texts.join(" · ")
}

/// Up to `SNIPPET_CHARS` characters of a masked record's text, around the first word of
/// the query it contains.
fn snippet(text: &str, words: &std::collections::HashSet<String>) -> String {
    const SNIPPET_CHARS: usize = 200;
    let lower = text.to_lowercase();
    let at = words
        .iter()
        .filter_map(|w| lower.find(w.as_str()))
        .min()
        .unwrap_or(0);
    // Lowercasing can shift byte offsets; count characters on the original instead.
    let at_chars = lower[..at.min(lower.len())].chars().count();
    let start = at_chars.saturating_sub(SNIPPET_CHARS / 4);
    let piece: String = text.chars().skip(start).take(SNIPPET_CHARS).collect();
    match start {
        0 => piece,
        _ => format!("…{piece}"),
    }
}

fn collect_text(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

/// Adds `nextCursor` (the offset of the next page) when another page follows; MCP leaves
/// it out on the last page.
fn with_next_cursor(mut page: Value, has_more: bool, next: u32) -> Value {
    if has_more {
        page["nextCursor"] = json!(next.to_string());
    }
    page
}

fn cursor_argument(arguments: &Value) -> Result<u32, ToolFailure> {
    match arguments.get("cursor") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_str()
            .and_then(|c| c.parse::<u32>().ok())
            .filter(|o| *o <= 100_000)
            .ok_or_else(|| ToolFailure("`cursor` is not one this server gave".into())),
    }
}

async fn get_record(
    workspaces: &WorkspaceService,
    principal: &Principal,
    m: &mut Masking,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let not_found = || ToolFailure("no such record".into());
    let collection = CollectionName::parse(text_argument(arguments, "collection", 64)?)
        .map_err(|_| not_found())?;
    let id = RecordId::parse(&m.unalias(text_argument(arguments, "id", 200)?))
        .map_err(|_| not_found())?;
    let record = match workspaces
        .record(principal.user, principal.workspace, collection, id)
        .await
    {
        Ok(record) => record,
        Err(crate::workspace::WorkspaceError::NotFound) => return Err(not_found()),
        Err(e) => return Err(McpError::from(e).into()),
    };
    let data = m.json(&record.data);
    Ok(json!({
        "collection": m.text(&record.collection),
        "id": m.text(&record.id),
        "version": record.version,
        "updated_at": record.updated_at,
        "data": data,
    }))
}

/// The collection named in the arguments; one that does not parse is simply not there.
fn collection_argument(arguments: &Value, m: &Masking) -> Result<CollectionName, ToolFailure> {
    CollectionName::parse(&m.unalias(text_argument(arguments, "collection", 64)?))
        .map_err(|_| ToolFailure("no such collection".into()))
}

/// The filters in the arguments, with aliases in field names mapped back to their terms.
fn filters_argument(arguments: &Value, m: &Masking) -> Result<Vec<Filter>, ToolFailure> {
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
                // Compared with values as shown, where aliases stand for their terms.
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.clone(),
                _ => return Err(bad()),
            };
            Ok(Filter {
                field: m.unalias(field),
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
        other => McpError::from(other).into(),
    }
}

async fn query(
    workspaces: &WorkspaceService,
    principal: &Principal,
    m: &mut Masking,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let collection = collection_argument(arguments, m)?;
    let filters = filters_argument(arguments, m)?;
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
            Some((m.unalias(field), descending))
        }
    };
    let limit = match arguments.get("limit") {
        None => 20,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=QUERY_LIMIT_MAX).contains(n))
            .ok_or_else(|| ToolFailure(format!("`limit` must be 1 to {QUERY_LIMIT_MAX}")))?,
    } as u32;
    let offset = cursor_argument(arguments)?;
    let spec = QuerySpec {
        filters,
        sort,
        limit,
        offset,
        masker: Arc::clone(&m.masker),
    };
    let found = workspaces
        .query(principal.user, principal.workspace, collection, spec)
        .await
        .map_err(refused)?;
    let records: Vec<Value> = found
        .items
        .into_iter()
        .map(|r| {
            let data = m.json(&r.data);
            json!({"id": m.text(&r.id), "version": r.version, "data": data})
        })
        .collect();
    Ok(with_next_cursor(
        json!({ "records": records }),
        found.has_more,
        offset + limit,
    ))
}

async fn aggregate(
    workspaces: &WorkspaceService,
    principal: &Principal,
    m: &mut Masking,
    arguments: &Value,
) -> Result<Value, ToolFailure> {
    let collection = collection_argument(arguments, m)?;
    let function: Aggregate = arguments
        .get("function")
        .and_then(Value::as_str)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| ToolFailure("`function` is count, sum, avg, min or max".into()))?;
    // Field names are shown masked (see list_collections), so aliases are mapped back.
    let field = arguments
        .get("field")
        .and_then(Value::as_str)
        .map(|f| m.unalias(f));
    let group_by = arguments
        .get("group_by")
        .and_then(Value::as_str)
        .map(|f| m.unalias(f));
    if field.is_none() && function != Aggregate::Count {
        return Err(ToolFailure(
            "`field` is needed for sum, avg, min and max".into(),
        ));
    }
    let key_field = group_by.clone().unwrap_or_default();
    let value_field = field.clone().unwrap_or_else(|| "count".to_string());
    let spec = AggregateSpec {
        function,
        field,
        group_by,
        filters: filters_argument(arguments, m)?,
        masker: Arc::clone(&m.masker),
    };
    let groups = workspaces
        .aggregate(principal.user, principal.workspace, collection, spec)
        .await
        .map_err(refused)?;
    // Keys and values are masked as the fields they come from, so number and date-of-birth
    // rules apply as they would to the records themselves.
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let key = m.json(&json!({ key_field.as_str(): g.key }));
            let value = m.json(&json!({ value_field.as_str(): g.value }));
            json!({"key": key[key_field.as_str()], "value": value[value_field.as_str()]})
        })
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
