//! OAuth flows. Registration (RFC 7591) accepts public clients only: each gets an id and
//! no secret, and may use only the redirect URIs it registered.

mod authorize;
mod grants;
mod token;

pub use authorize::{AuthorizeCheck, AuthorizeParams, ValidRequest};
pub use grants::{GrantView, GrantsOverview};
pub(crate) use token::GRANT_LIFETIME_SECS;
pub use token::{TokenRequest, TokenResponse};

use std::sync::Arc;

use rusqlite::{Connection, Transaction};

use serde::{Deserialize, Serialize};

use super::client_metadata::MetadataDocuments;
use super::error::OAuthError;
use super::metadata::{Endpoints, SCOPES_SUPPORTED};
use super::model::{ClientId, Grant, OAuthClient, RedirectUri};
use super::repo;
use crate::audit::{Action, Actor, AuditLog, Chain, Entry};
use crate::clock::SharedClock;
use crate::store::{BlockingPool, Store};

pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_CLIENT_NAME_CHARS: usize = 200;
const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];

/// A registration request. Metadata this server does not use (`client_uri`, `logo_uri`,
/// `software_id`…) is accepted and ignored, as RFC 7591 asks.
#[derive(Debug, Deserialize)]
pub struct ClientRegistration {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The registration response (RFC 7591 section 3.2.1).
#[derive(Debug, Serialize)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_id_issued_at: i64,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<&'static str>,
    pub token_endpoint_auth_method: &'static str,
    pub scope: String,
}

#[derive(Clone)]
pub struct OAuthService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    pool: BlockingPool,
    clock: SharedClock,
    endpoints: Endpoints,
    audit: AuditLog,
    documents: MetadataDocuments,
}

type Result<T> = std::result::Result<T, OAuthError>;

impl OAuthService {
    pub fn new(
        store: Arc<Store>,
        pool: BlockingPool,
        clock: SharedClock,
        endpoints: Endpoints,
        audit: AuditLog,
        documents: MetadataDocuments,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                pool,
                clock,
                endpoints,
                audit,
                documents,
            }),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        self.inner.pool.run(move || job(&inner)).await
    }

    /// Registers a public client after checking every field it sent.
    pub async fn register(&self, request: ClientRegistration) -> Result<RegisteredClient> {
        let checked = check_registration(request)?;
        let inner = Arc::clone(&self.inner);
        self.inner
            .pool
            .run(move || {
                let client = OAuthClient {
                    id: ClientId::new_random(),
                    name: checked.name,
                    redirect_uris: checked.redirect_uris,
                    scope: checked.scope,
                    created_at: inner.clock.now(),
                };
                let entry = Entry::new(
                    Actor::oauth_client(&client.id),
                    Action::OAuthClientRegistered,
                )
                .detail("redirect_uris", client.redirect_uris.len());
                inner.store.control().write(|tx| {
                    repo::save_client(tx, &client)?;
                    Ok::<_, OAuthError>(inner.audit.append(tx, Chain::System, entry)?)
                })?;
                tracing::info!(client = %client.id, "oauth client registered");
                Ok(RegisteredClient {
                    client_id: client.id.to_string(),
                    client_id_issued_at: client.created_at,
                    client_name: client.name,
                    redirect_uris: client
                        .redirect_uris
                        .iter()
                        .map(|u| u.as_str().to_string())
                        .collect(),
                    grant_types: checked.grant_types,
                    response_types: vec!["code"],
                    token_endpoint_auth_method: "none",
                    scope: client.scope,
                })
            })
            .await
    }
}

impl Inner {
    /// Audits an event on a grant in its workspace's log.
    fn audit_grant(&self, actor: Actor, action: Action, grant: &Grant) {
        let entry = Entry::new(actor, action)
            .target("grant", &grant.id)
            .detail("client", grant.client.to_string());
        self.audit
            .record_after(Chain::Workspace(grant.workspace), entry);
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.store.control().read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.store.control().write(f)
    }
}

/// A grant's id: 128 random bits in hex.
fn random_id() -> String {
    hex::encode(*crate::crypto::random_bytes::<16>())
}

struct CheckedRegistration {
    name: String,
    redirect_uris: Vec<RedirectUri>,
    grant_types: Vec<String>,
    scope: String,
}

fn check_registration(request: ClientRegistration) -> Result<CheckedRegistration> {
    if request.redirect_uris.is_empty() || request.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::InvalidRedirectUri);
    }
    let redirect_uris = request
        .redirect_uris
        .iter()
        .map(|raw| RedirectUri::parse(raw).ok_or(OAuthError::InvalidRedirectUri))
        .collect::<Result<Vec<_>>>()?;
    let name = match request.client_name.as_deref().map(str::trim) {
        None | Some("") => "Unnamed client".to_string(),
        Some(name) => crate::text::label(name, MAX_CLIENT_NAME_CHARS)
            .ok_or(OAuthError::InvalidClientMetadata(
                "client_name must be at most 200 characters",
            ))?
            .to_string(),
    };
    // Every client is registered as public (`none`), whatever method it asked for: RFC 7591
    // lets the server replace requested values, and some MCP SDKs ask for
    // `client_secret_post` by default. No secret is ever issued.
    let _ = request.token_endpoint_auth_method;
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| GRANT_TYPES.iter().map(|g| g.to_string()).collect());
    if grant_types.is_empty()
        || grant_types
            .iter()
            .any(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(OAuthError::InvalidClientMetadata(
            "grant_types may be authorization_code and refresh_token",
        ));
    }
    if request
        .response_types
        .is_some_and(|types| types.iter().any(|t| t != "code"))
    {
        return Err(OAuthError::InvalidClientMetadata(
            "response_types may only be code",
        ));
    }
    let scope = match request.scope.as_deref().map(str::trim) {
        None | Some("") => SCOPES_SUPPORTED.join(" "),
        Some(scope) if scope.split(' ').all(|s| SCOPES_SUPPORTED.contains(&s)) => scope.to_string(),
        Some(_) => {
            return Err(OAuthError::InvalidClientMetadata(
                "scope may hold only mcp:read and offline_access",
            ));
        }
    };
    Ok(CheckedRegistration {
        name,
        redirect_uris,
        grant_types,
        scope,
    })
}
