//! `/mcp`, the Streamable HTTP transport: POST carries JSON-RPC and gets JSON back, DELETE
//! ends a session, GET is refused (the server starts no streams). Every request needs an
//! OAuth access token issued for this resource, or a personal token; a foreign `Origin` is
//! refused before anything else. The `MCP-Protocol-Version` header picks the era: a
//! handshake revision (or none) goes to the session protocol, 2026-07-28 to the stateless
//! one, and any other version is refused naming those this server speaks.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::ApiError;
use super::extract::bearer_token;
use super::{record_actor, record_workspace};
use crate::mcp::envelope::{self, Refusal as EnvelopeRefusal, RoutingHeaders};
use crate::mcp::{McpError, McpReply, McpService, Principal};
use crate::oauth::OAuthService;
use crate::tokens::{TOKEN_PREFIX, TokenError, TokenService};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const REQUIRED_SCOPE: &str = "mcp:read";
/// Largest JSON-RPC message accepted.
const MESSAGE_BYTES: usize = 256 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/mcp")
            .app_data(web::PayloadConfig::new(MESSAGE_BYTES))
            .route(web::post().to(post))
            .route(web::delete().to(delete))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                    allow: "POST, DELETE".into(),
                })
            })),
    );
}

/// Why a request was turned away before reaching the protocol.
enum Refusal {
    ForeignOrigin,
    NoCredential,
    InvalidCredential,
    InsufficientScope,
    Internal,
}

fn refuse(oauth: &OAuthService, refusal: Refusal) -> HttpResponse {
    let metadata = oauth.endpoints().resource_metadata_url();
    // RFC 6750 challenges: a token that was presented and refused is named as invalid.
    let (status, message, error) = match refusal {
        Refusal::ForeignOrigin => {
            return json_error(StatusCode::FORBIDDEN, "the Origin is not this server");
        }
        Refusal::Internal => {
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        Refusal::NoCredential => (StatusCode::UNAUTHORIZED, "a valid token is required", ""),
        Refusal::InvalidCredential => (
            StatusCode::UNAUTHORIZED,
            "a valid token is required",
            "error=\"invalid_token\", ",
        ),
        Refusal::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "the token lacks the mcp:read scope",
            "error=\"insufficient_scope\", ",
        ),
    };
    let challenge =
        format!("Bearer {error}resource_metadata=\"{metadata}\", scope=\"{REQUIRED_SCOPE}\"");
    let mut response = json_error(status, message);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": message}}))
}

/// The checks every request passes first: origin, then credential.
async fn admit(
    req: &HttpRequest,
    oauth: &OAuthService,
    tokens: &TokenService,
) -> Result<Principal, Refusal> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ours = url::Url::parse(&oauth.endpoints().issuer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if origin.to_str().ok() != Some(ours.as_str()) {
            return Err(Refusal::ForeignOrigin);
        }
    }
    let bearer = bearer_token(req).map_err(|_| Refusal::NoCredential)?;
    let principal = if bearer.starts_with(TOKEN_PREFIX) {
        match tokens.authenticate(bearer).await {
            Ok(grant) => Principal {
                workspace: grant.workspace,
                user: grant.user,
                credential: format!("token:{}", grant.token),
            },
            Err(TokenError::Unauthorized) => return Err(Refusal::InvalidCredential),
            Err(e) => {
                tracing::error!(error = %crate::telemetry::error_chain(&e), "token check failed");
                return Err(Refusal::Internal);
            }
        }
    } else {
        let grant = match oauth.access(bearer).await {
            Ok(Some(grant)) => grant,
            Ok(None) => return Err(Refusal::InvalidCredential),
            Err(e) => {
                tracing::error!(error = %crate::telemetry::error_chain(&e), "token check failed");
                return Err(Refusal::Internal);
            }
        };
        // Tokens are only good for the resource they were issued for.
        if grant.resource != oauth.endpoints().resource {
            return Err(Refusal::InvalidCredential);
        }
        if !grant.scope.split(' ').any(|s| s == REQUIRED_SCOPE) {
            return Err(Refusal::InsufficientScope);
        }
        Principal {
            workspace: grant.workspace,
            user: grant.user,
            credential: format!("grant:{}", grant.id),
        }
    };
    record_workspace(principal.workspace);
    record_actor(&principal.credential);
    Ok(principal)
}

fn session_of(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn mcp_failure(e: McpError) -> HttpResponse {
    match e {
        McpError::InvalidRequest => HttpResponse::BadRequest().json(json!({
            "jsonrpc": "2.0", "id": null,
            "error": {"code": -32600, "message": e.to_string()}
        })),
        McpError::MissingSession => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
        McpError::UnknownSession => json_error(StatusCode::NOT_FOUND, &e.to_string()),
        other => {
            tracing::error!(error = %crate::telemetry::error_chain(&other), "mcp request failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Which protocol a request speaks, by its `MCP-Protocol-Version` header.
enum Era {
    Session,
    Stateless,
    Unsupported(String),
}

fn era_of(req: &HttpRequest, message: &Value) -> Era {
    match req.headers().get(VERSION_HEADER).map(|v| v.to_str()) {
        // Without the header, only a body naming a version in `_meta` is stateless (and
        // is then told its header is missing).
        None if envelope::names_a_version(&message["params"]) => Era::Stateless,
        None => Era::Session,
        Some(Ok(v)) if envelope::HANDSHAKE_VERSIONS.contains(&v) => Era::Session,
        Some(Ok(v)) if envelope::STATELESS_VERSIONS.contains(&v) => Era::Stateless,
        Some(v) => Era::Unsupported(v.unwrap_or_default().chars().take(40).collect()),
    }
}

/// A routing header's value; `Err` when it is given more than once or is not text.
fn routing_header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = req.headers().get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(|_| ())).transpose()
}

/// The HTTP status of a stateless reply: the specification's for each error code, 200 for
/// results and for errors it gives none.
fn stateless_status(body: &Value) -> StatusCode {
    match body["error"]["code"].as_i64() {
        Some(
            -32700
            | -32600
            | -32602
            | -32021
            | envelope::HEADER_MISMATCH
            | envelope::UNSUPPORTED_PROTOCOL_VERSION,
        ) => StatusCode::BAD_REQUEST,
        Some(-32601) => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

fn envelope_refusal(id: Value, refusal: EnvelopeRefusal) -> HttpResponse {
    HttpResponse::BadRequest().json(refusal.into_message(id))
}

async fn post(
    req: HttpRequest,
    oauth: web::Data<OAuthService>,
    tokens: web::Data<TokenService>,
    mcp: web::Data<McpService>,
    body: web::Bytes,
) -> HttpResponse {
    let principal = match admit(&req, &oauth, &tokens).await {
        Ok(principal) => principal,
        Err(refusal) => return refuse(&oauth, refusal),
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().json(json!({
            "jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}
        }));
    };
    let id = match &message["id"] {
        id @ (Value::String(_) | Value::Number(_)) => id.clone(),
        _ => Value::Null,
    };
    let reply = match era_of(&req, &message) {
        Era::Unsupported(asked) => {
            return envelope_refusal(id, EnvelopeRefusal::unsupported_version(&asked));
        }
        Era::Session => mcp.handle(principal, session_of(&req), message).await,
        Era::Stateless => {
            let headers = (
                routing_header(&req, VERSION_HEADER),
                routing_header(&req, METHOD_HEADER),
                routing_header(&req, NAME_HEADER),
            );
            let (Ok(protocol_version), Ok(method), Ok(name)) = headers else {
                return envelope_refusal(id, EnvelopeRefusal::unreadable_header());
            };
            let headers = RoutingHeaders {
                protocol_version,
                method,
                name,
            };
            match mcp.handle_stateless(principal, &headers, message).await {
                Ok(McpReply::Json { body, .. }) => {
                    return HttpResponse::build(stateless_status(&body)).json(body);
                }
                other => other,
            }
        }
    };
    match reply {
        Ok(McpReply::Json { body, session }) => {
            let mut response = HttpResponse::Ok();
            if let Some(session) = session {
                response.insert_header((SESSION_HEADER, session));
            }
            response.json(body)
        }
        Ok(McpReply::Accepted) => HttpResponse::Accepted().finish(),
        Err(e) => mcp_failure(e),
    }
}

async fn delete(
    req: HttpRequest,
    oauth: web::Data<OAuthService>,
    tokens: web::Data<TokenService>,
    mcp: web::Data<McpService>,
) -> HttpResponse {
    let principal = match admit(&req, &oauth, &tokens).await {
        Ok(principal) => principal,
        Err(refusal) => return refuse(&oauth, refusal),
    };
    let Some(session) = session_of(&req) else {
        return mcp_failure(McpError::MissingSession);
    };
    match mcp.end(principal, session).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => mcp_failure(e),
    }
}
