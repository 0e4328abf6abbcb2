//! The OAuth endpoints programs call: discovery documents (RFC 8414, RFC 9728) and dynamic
//! client registration (RFC 7591). Browser-based AI clients call them cross-origin, so they
//! answer CORS preflights and allow any origin: they use no cookies.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use std::collections::HashMap;

use actix_web::{
    Handler, HttpRequest, HttpResponse, HttpResponseBuilder, Resource, Responder, web,
};
use serde_json::json;

use super::ApiError;
use super::extract::{bearer_token, decodes_as_utf8};

use crate::oauth::{ClientRegistration, OAuthError, OAuthService, TokenRequest};

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
    )
    .service(
        cross_origin(Method::POST, "/oauth/token", token)
            .app_data(web::PayloadConfig::new(FORM_BODY_BYTES)),
    )
    .service(
        cross_origin(Method::POST, "/oauth/revoke", revoke)
            .app_data(web::PayloadConfig::new(FORM_BODY_BYTES)),
    );
}

/// Largest token or revocation request accepted.
const FORM_BODY_BYTES: usize = 8 * 1024;

/// The form fields of a token or revocation request. A parameter sent twice is refused,
/// as RFC 6749 section 3.2 requires, and so is one that is not UTF-8.
fn form_fields(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    if !decodes_as_utf8(body) {
        return Err(OAuthError::InvalidRequest("the form is not UTF-8"));
    }
    let mut fields = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if fields
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::InvalidRequest(
                "a parameter was sent more than once",
            ));
        }
    }
    Ok(fields)
}

/// RFC 6749 token endpoint: codes and refresh tokens for tokens, never cached.
async fn token(oauth: web::Data<OAuthService>, body: web::Bytes) -> HttpResponse {
    let mut fields = match form_fields(&body) {
        Ok(fields) => fields,
        Err(e) => return oauth_error(&e),
    };
    let mut take = |name: &str| fields.remove(name).unwrap_or_default();
    let request = TokenRequest {
        grant_type: take("grant_type"),
        code: take("code"),
        redirect_uri: take("redirect_uri"),
        client_id: take("client_id"),
        code_verifier: take("code_verifier"),
        refresh_token: take("refresh_token"),
        resource: Some(take("resource")).filter(|r| !r.is_empty()),
    };
    match oauth.token(request).await {
        Ok(tokens) => with_cors(HttpResponse::Ok())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(tokens),
        Err(e) => oauth_error(&e),
    }
}

/// RFC 7009: always 200 for a well-formed request, whether or not the token existed. The
/// token is the form's `token`, or else the request's own bearer token (any case of the
/// scheme), so a client can revoke the access token it presents.
async fn revoke(
    req: HttpRequest,
    oauth: web::Data<OAuthService>,
    body: web::Bytes,
) -> HttpResponse {
    let token = match form_fields(&body) {
        Ok(mut fields) => fields
            .remove("token")
            .or_else(|| bearer_token(&req).ok())
            .unwrap_or_default(),
        Err(e) => return oauth_error(&e),
    };
    if token.is_empty() {
        return oauth_error(&OAuthError::InvalidRequest("token is required"));
    }
    match oauth.revoke(token).await {
        Ok(()) => with_cors(HttpResponse::Ok())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({})),
        Err(e) => oauth_error(&e),
    }
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
        OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    with_cors(HttpResponse::build(status))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "error": error.to_string(),
            "error_description": error.description(),
        }))
}
