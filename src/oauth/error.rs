use crate::store::StoreError;

/// OAuth errors; `Display` is the RFC 6749 / RFC 7591 / RFC 8707 wire code and
/// `description` the human text, which never echoes what was submitted.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_redirect_uri")]
    InvalidRedirectUri,
    #[error("invalid_client_metadata")]
    InvalidClientMetadata(&'static str),
    #[error("invalid_request")]
    InvalidRequest(&'static str),
    #[error("invalid_client")]
    InvalidClient,
    /// A client named by a metadata document URL whose document cannot be used.
    #[error("invalid_client")]
    ClientMetadata(&'static str),
    #[error("invalid_grant")]
    InvalidGrant,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("unsupported_response_type")]
    UnsupportedResponseType,
    #[error("invalid_scope")]
    InvalidScope,
    #[error("invalid_target")]
    InvalidTarget,
    #[error("access_denied")]
    AccessDenied,
    /// A dashboard lookup of a grant the person may not see, or that does not exist.
    #[error("not_found")]
    NotFound,
    #[error("server_error")]
    Store(#[from] StoreError),
}

impl OAuthError {
    pub fn description(&self) -> &'static str {
        match self {
            Self::InvalidRedirectUri => {
                "every redirect URI must be https, http on this machine's loopback, or an app's \
                 own scheme, without a fragment"
            }
            Self::InvalidClientMetadata(what)
            | Self::InvalidRequest(what)
            | Self::ClientMetadata(what) => what,
            Self::InvalidClient => "the client is not registered here",
            Self::InvalidGrant => {
                "the code or refresh token is invalid, expired, already used or not issued to \
                 this client"
            }
            Self::UnsupportedGrantType => "grant_type must be authorization_code or refresh_token",
            Self::UnsupportedResponseType => "response_type must be code",
            Self::InvalidScope => "the scope may hold only mcp:read and offline_access",
            Self::InvalidTarget => "resource must be this server's MCP endpoint",
            Self::AccessDenied => "the person declined",
            Self::NotFound => "not found",
            Self::Store(_) => "the request could not be completed",
        }
    }
}

impl From<rusqlite::Error> for OAuthError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
