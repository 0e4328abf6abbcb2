//! The OAuth endpoints programs call: discovery documents (RFC 8414, RFC 9728) and dynamic
//! client registration (RFC 7591). Browser-based AI clients call them cross-origin, so they
//! answer CORS preflights and allow any origin: they use no cookies.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{Handler, HttpResponse, HttpResponseBuilder, Resource, Responder, web};
use serde_json::json;

use super::ApiError;
use crate::oauth::{ClientRegistration, OAuthError, OAuthService};

/// Largest registration request accepted.
const REGISTRATION_BODY_BYTES: usize = 16 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(cross_origin(
        Method::GET,
        "/.well-known/oauth-authorization-server",
        authorization_server_metadata,
    ))
    .service(cross_origin(
        Method::GET,
        "/.well-known/oauth-protected-resource",
        protected_resource_metadata,
    ))
    .service(cross_origin(
        Method::GET,
        "/.well-known/oauth-protected-resource/mcp",
        protected_resource_metadata,
    ))
    .service(cross_origin(
        Method::GET,
        "/.well-known/openid-configuration",
        no_openid_discovery,
    ))
    .service(
        cross_origin(Method::POST, "/oauth/register", register)
            .app_data(web::PayloadConfig::new(REGISTRATION_BODY_BYTES)),
    );
}

/// A resource answering `method` and CORS preflights; other methods get 405.
fn cross_origin<F, Args>(method: Method, path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::method(method.clone()).to(handler))
        .route(web::method(Method::OPTIONS).to(preflight))
        .default_service(web::to(move || {
            let allow = format!("{method}, OPTIONS");
            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        }))
}

/// Any origin may call; no credentials are involved.
fn with_cors(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ))
        .insert_header((
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id"),
        ));
    response
}

async fn preflight() -> HttpResponse {
    with_cors(HttpResponse::NoContent())
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, MCP-Protocol-Version",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

async fn authorization_server_metadata(oauth: web::Data<OAuthService>) -> HttpResponse {
    with_cors(HttpResponse::Ok()).json(oauth.endpoints().authorization_server())
}

async fn protected_resource_metadata(oauth: web::Data<OAuthService>) -> HttpResponse {
    with_cors(HttpResponse::Ok()).json(oauth.endpoints().protected_resource())
}

/// Strongbox is not an OpenID provider; clients that look for one get a plain answer.
async fn no_openid_discovery() -> HttpResponse {
    with_cors(HttpResponse::NotFound()).json(json!({
        "error": "not_found",
        "error_description": "this server publishes OAuth authorization server metadata only",
    }))
}

/// RFC 7591 registration: 201 with the client, or 400 with an RFC error code.
async fn register(oauth: web::Data<OAuthService>, body: web::Bytes) -> HttpResponse {
    let request = match serde_json::from_slice::<ClientRegistration>(&body) {
        Ok(request) => request,
        Err(_) => {
            return oauth_error(&OAuthError::InvalidClientMetadata(
                "the body must be a JSON object of client metadata",
            ));
        }
    };
    match oauth.register(request).await {
        Ok(client) => with_cors(HttpResponse::Created())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(client),
        Err(e) => oauth_error(&e),
    }
}

/// The JSON error body of RFC 6749 section 5.2, never cached.
fn oauth_error(error: &OAuthError) -> HttpResponse {
    let status = match error {
        OAuthError::Store(inner) => {
            tracing::error!(error = %crate::telemetry::error_chain(inner), "oauth storage error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    with_cors(HttpResponse::build(status))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "error": error.to_string(),
            "error_description": error.description(),
        }))
}
