use crate::store::StoreError;

/// OAuth errors; `Display` is the RFC 6749 / RFC 7591 wire code and `description` the
/// human text, which never echoes what was submitted.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_redirect_uri")]
    InvalidRedirectUri,
    #[error("invalid_client_metadata")]
    InvalidClientMetadata(&'static str),
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
            Self::InvalidClientMetadata(what) => what,
            Self::Store(_) => "the request could not be completed",
        }
    }
}

impl From<rusqlite::Error> for OAuthError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
