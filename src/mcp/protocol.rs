//! JSON-RPC over Streamable HTTP, in two eras on one endpoint. Through 2025-11-25,
//! `initialize` negotiates the protocol version and begins a session that every later
//! request names. From 2026-07-28, each request stands alone: it carries its version and
//! capabilities in `_meta`, and `server/discover` says what the server speaks. Either way,
//! tools and resources run against the credential's workspace, which the bearer of each
//! request decides afresh.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::cursor::Cursors;
use super::envelope::{self, RoutingHeaders};
use super::error::McpError;
use super::tools::{ToolFailure, ToolOutcome};
use super::{Principal, repo, tools};
use crate::clock::SharedClock;
use crate::crypto::token::{self, SecretHash};
use crate::store::{BlockingPool, Store};
use crate::workspace::WorkspaceService;
use crate::workspace::usage::{Outcome, Usage};

/// The newest revision `initialize` negotiates.
const NEWEST_HANDSHAKE: &str = "2025-11-25";
/// Each collection is a resource at this prefix and its (masked) name.
const COLLECTION_URI: &str = "strongbox://collections/";
const INSTRUCTIONS: &str = "Read-only access to one Strongbox workspace. Every result is masked by the workspace's rules: personal data appears as placeholders such as [EMAIL_1], and some names appear under aliases, which you may use in searches.";
/// How long a stateless client may keep what does not change while this server runs
/// (`server/discover`, `tools/list`). Lists of workspace data are never kept.
const STATIC_TTL_MS: u64 = 10 * 60 * 1000;

/// How a request reached the server: within a session begun by `initialize`, or standing
/// alone under the 2026-07-28 envelope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Era {
    Session,
    Stateless,
}

/// What the transport sends back.
#[derive(Debug)]
pub enum McpReply {
    /// A JSON-RPC response, and the new session's id after `initialize`.
    Json {
        body: Value,
        session: Option<String>,
    },
    /// A notification or response from the client was taken: 202, no body.
    Accepted,
}

#[derive(Clone)]
pub struct McpService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    pool: BlockingPool,
    clock: SharedClock,
    workspaces: WorkspaceService,
    cursors: Cursors,
}

/// A parsed JSON-RPC message.
struct Message {
    id: Option<Value>,
    method: String,
    params: Value,
}

fn parse(body: &Value) -> Result<Message, McpError> {
    let object = body.as_object().ok_or(McpError::InvalidRequest)?;
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(McpError::InvalidRequest);
    }
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
        Some(_) => return Err(McpError::InvalidRequest),
    };
    let method = object.get("method").and_then(Value::as_str);
    // A response to something the server asked: nothing to do.
    if method.is_none() && (object.contains_key("result") || object.contains_key("error")) {
        return Ok(Message {
            id: None,
            method: String::new(),
            params: Value::Null,
        });
    }
    Ok(Message {
        id,
        method: method.ok_or(McpError::InvalidRequest)?.to_string(),
        params: object.get("params").cloned().unwrap_or(Value::Null),
    })
}

fn result_message(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn server_info() -> Value {
    json!({"name": "strongbox", "title": "Strongbox", "version": env!("CARGO_PKG_VERSION")})
}

fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": false},
        "resources": {"listChanged": false, "subscribe": false}
    })
}

/// Completes a 2026-07-28 answer: every result says it is complete and who answered, and
/// the cacheable ones say for how long and for whom they may be kept (only this
/// credential: they come from its workspace).
fn stateless_result(method: &str, mut message: Value) -> Value {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return message;
    };
    result.insert("resultType".into(), json!("complete"));
    result.insert(
        "_meta".into(),
        json!({ envelope::SERVER_INFO_KEY: server_info() }),
    );
    let ttl = match method {
        "server/discover" | "tools/list" | "resources/templates/list" => Some(STATIC_TTL_MS),
        "resources/list" | "resources/read" => Some(0),
        _ => None,
    };
    if let Some(ttl) = ttl {
        result.insert("ttlMs".into(), json!(ttl));
        result.insert("cacheScope".into(), json!("private"));
    }
    message
}

impl McpService {
    pub fn new(
        store: Arc<Store>,
        pool: BlockingPool,
        clock: SharedClock,
        workspaces: WorkspaceService,
        cursors: Cursors,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                pool,
                clock,
                workspaces,
                cursors,
            }),
        }
    }

    /// Handles one POSTed message for `principal`, within `session` unless it is
    /// `initialize`.
    pub async fn handle(
        &self,
        principal: Principal,
        session: Option<String>,
        body: Value,
    ) -> Result<McpReply, McpError> {
        let message = parse(&body)?;
        if message.method == "initialize" {
            let id = message.id.ok_or(McpError::InvalidRequest)?;
            return self.initialize(principal, id, &message.params).await;
        }
        let session = session.ok_or(McpError::MissingSession)?;
        self.resume(&principal, session).await?;
        let Some(id) = message.id else {
            // Notifications (`notifications/initialized`, cancellations) need no answer.
            return Ok(McpReply::Accepted);
        };
        let body = self
            .answer(
                Era::Session,
                &principal,
                id,
                &message.method,
                &message.params,
            )
            .await?;
        Ok(McpReply::Json {
            body,
            session: None,
        })
    }

    /// Handles one POSTed message of the 2026-07-28 revision: no session, the envelope in
    /// `_meta` checked against the routing headers, then the same tools as a session has.
    pub async fn handle_stateless(
        &self,
        principal: Principal,
        headers: &RoutingHeaders<'_>,
        body: Value,
    ) -> Result<McpReply, McpError> {
        let message = parse(&body)?;
        if message.method.is_empty() {
            // A response: this server never asks a stateless client anything.
            return Err(McpError::InvalidRequest);
        }
        let Some(id) = message.id else {
            // No client-to-server notification means anything in this revision.
            return Ok(McpReply::Accepted);
        };
        let body = match envelope::check(&message.method, &message.params, headers) {
            Err(refusal) => refusal.into_message(id),
            Ok(_) => {
                let answer = self
                    .answer(
                        Era::Stateless,
                        &principal,
                        id,
                        &message.method,
                        &message.params,
                    )
                    .await?;
                stateless_result(&message.method, answer)
            }
        };
        Ok(McpReply::Json {
            body,
            session: None,
        })
    }

    /// The JSON-RPC answer to request `id`, in either era.
    async fn answer(
        &self,
        era: Era,
        principal: &Principal,
        id: Value,
        method: &str,
        params: &Value,
    ) -> Result<Value, McpError> {
        Ok(match (method, era) {
            ("ping", Era::Session) => result_message(id, json!({})),
            ("server/discover", Era::Stateless) => result_message(
                id,
                json!({
                    "supportedVersions": envelope::supported_versions(),
                    "capabilities": capabilities(),
                    "instructions": INSTRUCTIONS,
                }),
            ),
            ("tools/list", _) => result_message(id, json!({ "tools": tools::definitions() })),
            ("tools/call", _) => self.call_tool(principal, id, params).await?,
            ("resources/list", _) => self.list_resources(principal, id).await?,
            // Every resource is listed by name; none is made from a template.
            ("resources/templates/list", _) => {
                result_message(id, json!({ "resourceTemplates": [] }))
            }
            ("resources/read", _) => self.read_resource(era, principal, id, params).await?,
            _ => rpc_error(id, -32601, "method not found"),
        })
    }

    /// Ends a session (HTTP DELETE); only its own credential may.
    pub async fn end(&self, principal: Principal, session: String) -> Result<(), McpError> {
        let hash = SecretHash::of(&session);
        let inner = Arc::clone(&self.inner);
        let ended = self
            .inner
            .pool
            .run(move || {
                inner
                    .store
                    .control()
                    .write(|tx| Ok::<_, McpError>(repo::end(tx, &hash, &principal)?))
            })
            .await?;
        match ended {
            true => Ok(()),
            false => Err(McpError::UnknownSession),
        }
    }

    async fn initialize(
        &self,
        principal: Principal,
        id: Value,
        params: &Value,
    ) -> Result<McpReply, McpError> {
        let asked = params.get("protocolVersion").and_then(Value::as_str);
        let version = match asked {
            Some(v) if envelope::HANDSHAKE_VERSIONS.contains(&v) => v.to_string(),
            _ => NEWEST_HANDSHAKE.to_string(),
        };
        let issued = token::issue(repo::SESSION_PREFIX);
        let inner = Arc::clone(&self.inner);
        let stored_version = version.clone();
        self.inner
            .pool
            .run(move || {
                let now = inner.clock.now();
                inner.store.control().write(|tx| {
                    Ok::<_, McpError>(repo::insert(
                        tx,
                        &issued.hash,
                        &principal,
                        &stored_version,
                        now,
                    )?)
                })
            })
            .await?;
        let body = result_message(
            id,
            json!({
                "protocolVersion": version,
                "capabilities": capabilities(),
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            }),
        );
        Ok(McpReply::Json {
            body,
            session: Some(issued.text.to_string()),
        })
    }

    async fn resume(&self, principal: &Principal, session: String) -> Result<String, McpError> {
        if !token::well_formed(repo::SESSION_PREFIX, &session) {
            return Err(McpError::UnknownSession);
        }
        let hash = SecretHash::of(&session);
        let inner = Arc::clone(&self.inner);
        let principal = principal.clone();
        self.inner
            .pool
            .run(move || {
                let now = inner.clock.now();
                inner
                    .store
                    .control()
                    .write(|tx| Ok::<_, McpError>(repo::resume(tx, &hash, &principal, now)?))
            })
            .await?
            .ok_or(McpError::UnknownSession)
    }

    async fn call_tool(
        &self,
        principal: &Principal,
        id: Value,
        params: &Value,
    ) -> Result<Value, McpError> {
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Ok(rpc_error(id, -32602, "tools/call needs a tool name"));
        };
        let Some(name) = tools::NAMES.into_iter().find(|known| *known == name) else {
            return Ok(rpc_error(id, -32602, "unknown tool"));
        };
        let arguments = params
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let started = Instant::now();
        let outcome = tools::call(
            &self.inner.workspaces,
            &self.inner.cursors,
            principal,
            name,
            &arguments,
        )
        .await?;
        let result = self.record(principal, name, outcome, started).await?;
        let call_result = match result {
            Ok(structured) => json!({
                "content": [{"type": "text", "text": structured.to_string()}],
                "structuredContent": structured,
                "isError": false
            }),
            Err(failure) => json!({
                "content": [{"type": "text", "text": failure.0}],
                "isError": true
            }),
        };
        Ok(result_message(id, call_result))
    }

    async fn list_resources(&self, principal: &Principal, id: Value) -> Result<Value, McpError> {
        let started = Instant::now();
        let outcome = tools::call(
            &self.inner.workspaces,
            &self.inner.cursors,
            principal,
            "list_collections",
            &json!({}),
        )
        .await?;
        let listed = self
            .record(principal, "resources/list", outcome, started)
            .await?;
        let collections = listed
            .map(|v| v["collections"].clone())
            .unwrap_or(Value::Null);
        let resources: Vec<Value> = collections
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default();
                json!({
                    "uri": format!("{COLLECTION_URI}{name}"),
                    "name": name,
                    "title": format!("Collection {name}"),
                    "description": format!("{} records", c["records"]),
                    "mimeType": "application/json"
                })
            })
            .collect();
        Ok(result_message(id, json!({ "resources": resources })))
    }

    async fn read_resource(
        &self,
        era: Era,
        principal: &Principal,
        id: Value,
        params: &Value,
    ) -> Result<Value, McpError> {
        // 2026-07-28 names a missing resource with the standard invalid-params code; the
        // session era keeps the code its clients were written for.
        let not_found = match era {
            Era::Session => -32002,
            Era::Stateless => -32602,
        };
        let uri = params
            .get("uri")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // The URI the specification suggests sending back is left out: an answer repeats
        // nothing submitted, so guesses at a masked name all get the same bytes.
        let missing = |id: Value| rpc_error(id, not_found, "resource not found");
        let Some(name) = uri.strip_prefix(COLLECTION_URI) else {
            return Ok(missing(id));
        };
        let started = Instant::now();
        let outcome = tools::read_collection(&self.inner.workspaces, principal, name).await?;
        match self
            .record(principal, "resources/read", outcome, started)
            .await?
        {
            Ok(collection) => Ok(result_message(
                id,
                json!({"contents": [{"uri": uri, "mimeType": "application/json", "text": collection.to_string()}]}),
            )),
            Err(_) => Ok(missing(id)),
        }
    }

    /// Records a call's usage metadata (never its arguments or answer), then hands back the
    /// answer.
    async fn record(
        &self,
        principal: &Principal,
        operation: &'static str,
        outcome: ToolOutcome,
        started: Instant,
    ) -> Result<Result<Value, ToolFailure>, McpError> {
        let usage = Usage {
            actor: principal.credential.clone(),
            user: principal.user,
            operation,
            outcome: match outcome.result {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Refused,
            },
            items: outcome.items,
            masked: outcome.masked,
            duration: started.elapsed(),
        };
        self.inner
            .workspaces
            .record_usage(principal.workspace, usage)
            .await?;
        Ok(outcome.result)
    }
}
