//! The OAuth 2.1 authorization server that AI clients use to reach `/mcp`: metadata
//! (RFC 8414, RFC 9728) and dynamic client registration (RFC 7591).

mod error;
mod metadata;
mod model;
mod repo;
mod service;

pub use error::OAuthError;
pub use metadata::{Endpoints, SCOPES_SUPPORTED};
pub use model::{ClientId, OAuthClient, RedirectUri};
pub use service::{ClientRegistration, OAuthService};
