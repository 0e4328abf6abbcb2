//! The OAuth 2.1 authorization server that AI clients use to reach `/mcp`: metadata
//! (RFC 8414, RFC 9728), dynamic client registration (RFC 7591), the authorization code
//! flow with PKCE and resource indicators, rotating refresh tokens and revocation.

mod client_metadata;
mod error;
mod metadata;
mod model;
mod repo;
mod service;

/// What the scheduled jobs delete: expired unused codes, expired access tokens, and grants
/// that ended (with everything issued from them).
pub mod retention {
    pub use super::repo::{
        delete_ended_grants, delete_expired_access_tokens, delete_expired_codes,
        delete_unused_clients,
    };
}

pub use client_metadata::MetadataDocuments;
pub use error::OAuthError;
pub use metadata::{Endpoints, SCOPES_SUPPORTED};
pub use model::{ClientId, Grant, OAuthClient, RedirectUri};
pub(crate) use service::GRANT_LIFETIME_SECS;
pub use service::{
    AuthorizeCheck, AuthorizeParams, ClientRegistration, GrantView, GrantsOverview, OAuthService,
    TokenRequest, TokenResponse, ValidRequest,
};
