//! The agent API under `/api/agent/v1/`: pairing, token rotation, the masking policy,
//! sync batches and heartbeats. Every call but `pair` and `token` carries an access token,
//! checked (signature, claims, and the agent still active) on every request.

use actix_web::http::Method;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::bearer_token;
use super::{ApiError, only, record_actor, record_workspace};
use crate::agent::wire::{Heartbeat, PairRequest, SyncBatch, TokenRequest};
use crate::agent::{AgentService, AuthenticatedAgent};

pub fn routes(cfg: &mut web::ServiceConfig, max_batch_bytes: usize) {
    cfg.service(only(Method::POST, "/api/agent/v1/pair", pair))
        .service(only(Method::POST, "/api/agent/v1/token", token))
        .service(only(Method::GET, "/api/agent/v1/policy", policy))
        .service(
            only(Method::POST, "/api/agent/v1/sync", sync)
                .app_data(super::json_config(max_batch_bytes))
                .app_data(web::PayloadConfig::new(max_batch_bytes)),
        )
        .service(only(Method::POST, "/api/agent/v1/heartbeat", heartbeat));
}

/// The agent behind the request's bearer token, or 401.
async fn authenticated(
    req: &HttpRequest,
    service: &AgentService,
) -> Result<AuthenticatedAgent, ApiError> {
    let agent = service.authenticate(bearer_token(req)?).await?;
    record_workspace(agent.workspace);
    record_actor(format_args!("agent:{}", agent.id));
    Ok(agent)
}

/// Credentials are never cached anywhere along the way.
fn credentials_response(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(body)
}

async fn pair(
    service: web::Data<AgentService>,
    body: web::Json<PairRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let credentials = service.pair(body.code, body.agent_version).await?;
    Ok(credentials_response(credentials))
}

async fn token(
    service: web::Data<AgentService>,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let credentials = service.refresh(body.agent_id, body.refresh_secret).await?;
    Ok(credentials_response(credentials))
}

async fn policy(
    req: HttpRequest,
    service: web::Data<AgentService>,
) -> Result<HttpResponse, ApiError> {
    let agent = authenticated(&req, &service).await?;
    Ok(HttpResponse::Ok().json(service.policy(agent).await?))
}

async fn sync(
    req: HttpRequest,
    service: web::Data<AgentService>,
    body: web::Json<SyncBatch>,
) -> Result<HttpResponse, ApiError> {
    let agent = authenticated(&req, &service).await?;
    Ok(HttpResponse::Ok().json(service.sync(agent, body.into_inner()).await?))
}

async fn heartbeat(
    req: HttpRequest,
    service: web::Data<AgentService>,
    body: web::Json<Heartbeat>,
) -> Result<HttpResponse, ApiError> {
    let agent = authenticated(&req, &service).await?;
    service
        .heartbeat(agent, body.into_inner().agent_version)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
