//! The one error type of the HTTP layer and its single mapping to status codes.
//! Clients get a stable code and a category message; causes go to the log only.

use std::fmt::Display;

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::agent::AgentError;
use crate::store::StoreError;
use crate::tokens::TokenError;
use crate::workspace::WorkspaceError;
use crate::workspace::records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON")]
    MalformedJson,
    #[error("the request body does not have the expected shape")]
    InvalidBody,
    #[error("the query string does not have the expected parameters")]
    InvalidQuery,
    #[error("a field failed validation")]
    InvalidField { field: String },
    #[error("the credentials are missing or not valid")]
    Unauthorized,
    #[error("the request was refused")]
    Forbidden,
    #[error("the resource was not found")]
    NotFound,
    #[error("the method is not allowed on this resource")]
    MethodNotAllowed { allow: String },
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("the content type is not supported")]
    UnsupportedMediaType,
    #[error("too many requests; retry later")]
    RateLimited { retry_after_secs: u64 },
    #[error("this workspace requires batches redacted on the device")]
    RedactionRequired,
    #[error("the masking policy changed; fetch it again")]
    PolicyChanged,
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("the service is not ready")]
    NotReady,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// Logs the cause (never sent to the client) and returns the generic 500.
    pub fn internal(cause: impl Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal
    }

    fn invalid(field: &str) -> Self {
        Self::InvalidField {
            field: field.to_string(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidBody => "invalid_body",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidField { .. } => "invalid_field",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::RedactionRequired => "redaction_required",
            Self::PolicyChanged => "policy_changed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::NotReady => "not_ready",
            Self::Internal => "internal",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedJson | Self::InvalidBody | Self::InvalidQuery => StatusCode::BAD_REQUEST,
            Self::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RedactionRequired => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PolicyChanged | Self::IdempotencyKeyReused => StatusCode::CONFLICT,
            Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited { retry_after_secs } => {
                response.insert_header((RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((ALLOW, allow.as_str()));
            }
            Self::Unauthorized => {
                response.insert_header((WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        let field = match self {
            Self::InvalidField { field } => Some(field.as_str()),
            _ => None,
        };
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field,
            },
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WorkspaceNotFound => Self::NotFound,
            other => Self::internal(crate::telemetry::error_chain(&other)),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Unauthorized => Self::Unauthorized,
            AgentError::NotFound => Self::NotFound,
            AgentError::InvalidDeviceName => Self::invalid("device_name"),
            AgentError::InvalidVersion => Self::invalid("agent_version"),
            AgentError::InvalidIdempotencyKey => Self::invalid("idempotency_key"),
            AgentError::InvalidChange(_) => Self::invalid("changes"),
            AgentError::InvalidRedactionSignal => Self::invalid("redaction"),
            AgentError::TooManyChanges => Self::PayloadTooLarge,
            AgentError::RedactionRequired => Self::RedactionRequired,
            AgentError::PolicyChanged => Self::PolicyChanged,
            AgentError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            AgentError::Workspace(inner) => inner.into(),
            other => Self::internal(crate::telemetry::error_chain(&other)),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Unauthorized => Self::Unauthorized,
            TokenError::NotFound => Self::NotFound,
            TokenError::InvalidName => Self::invalid("name"),
            TokenError::InvalidAccess => Self::invalid("access"),
            TokenError::Workspace(inner) => inner.into(),
            other => Self::internal(crate::telemetry::error_chain(&other)),
        }
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(e: WorkspaceError) -> Self {
        match e {
            // Non-members get 404, never 403: no existence oracle.
            WorkspaceError::NotFound => Self::NotFound,
            WorkspaceError::Forbidden => Self::Forbidden,
            WorkspaceError::InvalidRecord(record) => Self::invalid(match record {
                RecordError::CollectionName => "collection",
                RecordError::RecordId => "id",
                RecordError::NotAnObject | RecordError::TooLarge | RecordError::TooManyFields => {
                    "data"
                }
            }),
            WorkspaceError::Store(StoreError::WorkspaceNotFound) => Self::NotFound,
            other => Self::internal(crate::telemetry::error_chain(&other)),
        }
    }
}

impl From<JsonPayloadError> for ApiError {
    fn from(e: JsonPayloadError) -> Self {
        match e {
            JsonPayloadError::OverflowKnownLength { .. }
            | JsonPayloadError::Overflow { .. }
            | JsonPayloadError::Payload(PayloadError::Overflow) => Self::PayloadTooLarge,
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            JsonPayloadError::Deserialize(e) if e.is_data() => Self::InvalidBody,
            JsonPayloadError::Serialize(e) => Self::internal(e),
            _ => Self::MalformedJson,
        }
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(e: validator::ValidationErrors) -> Self {
        // Field names come from our own request types, never from the input.
        let field = e
            .errors()
            .keys()
            .next()
            .map_or_else(String::new, |k| k.to_string());
        Self::InvalidField { field }
    }
}
