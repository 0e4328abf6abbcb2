//! The OAuth 2.1 authorization server that AI clients use to reach `/mcp`: metadata
//! (RFC 8414, RFC 9728), dynamic client registration (RFC 7591), the authorization code
//! flow with PKCE and resource indicators, rotating refresh tokens and revocation.

mod error;
mod metadata;
mod model;
mod repo;
mod service;

pub use error::OAuthError;
pub use metadata::{Endpoints, SCOPES_SUPPORTED};
pub use model::{ClientId, Grant, OAuthClient, RedirectUri};
pub use service::{
    AuthorizeCheck, AuthorizeParams, ClientRegistration, GrantView, OAuthService, TokenRequest,
    TokenResponse, ValidRequest,
};
