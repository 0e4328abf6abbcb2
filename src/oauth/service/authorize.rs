//! The authorization endpoint's checks and the person's decision (RFC 6749 section 4.1
//! with PKCE, RFC 8707 resource indicators and RFC 9207 `iss`).

use url::Url;

use super::{Inner, OAuthService, Result, random_id};
use crate::audit::{Action as Audited, Actor};
use crate::auth::UserId;
use crate::crypto::token::{self, SecretHash};
use crate::ids::WorkspaceId;
use crate::oauth::client_metadata::ClientDocument;
use crate::oauth::error::OAuthError;
use crate::oauth::metadata::SCOPES_SUPPORTED;
use crate::oauth::model::{ClientId, Grant, NewCode, OAuthClient};
use crate::oauth::repo;
use crate::workspace::{Action, authorize};

/// Authorization codes live a minute.
pub const CODE_TTL_SECS: i64 = 60;
pub const CODE_PREFIX: &str = "sbx_ac_";

/// The authorization request's parameters, as sent.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct AuthorizeParams {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub code_challenge: String,
    #[serde(default)]
    pub code_challenge_method: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
}

/// What the request turned out to be.
pub enum AuthorizeCheck {
    /// The client or its redirect URI cannot be trusted: show the error here, never
    /// redirect (an attacker could pick the URI).
    Refuse(OAuthError),
    /// An error the client should hear about, at its registered redirect URI.
    Redirect(Url),
    /// A request to show the person for consent.
    Valid(ValidRequest),
}

#[derive(Clone, Debug)]
pub struct ValidRequest {
    pub client: OAuthClient,
    /// The host serving the client's metadata document, for a client named by one.
    pub document_host: Option<String>,
    pub redirect: Url,
    pub challenge: String,
    pub state: Option<String>,
    pub scope: String,
}

impl ValidRequest {
    /// The host people see on the consent page.
    pub fn redirect_host(&self) -> String {
        match self.redirect.host_str() {
            Some(host) if !host.is_empty() => host.to_string(),
            _ => format!("{}:", self.redirect.scheme()),
        }
    }
}

fn challenge_ok(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl OAuthService {
    /// Checks an authorization request: first the client and its redirect URI (failures
    /// are shown, not redirected), then everything else (failures go back to the client).
    pub async fn check_authorize(&self, params: AuthorizeParams) -> Result<AuthorizeCheck> {
        let Ok(client_id) = params.client_id.parse::<ClientId>() else {
            return Ok(AuthorizeCheck::Refuse(OAuthError::InvalidClient));
        };
        let (client, document_host) = match client_id.document_url() {
            Some(url) => match self.inner.documents.get(&url).await {
                Ok(document) => {
                    let host = document.host.clone();
                    (Some(self.document_client(client_id, document)), Some(host))
                }
                Err(e) => {
                    tracing::info!(error = %e, "client metadata document refused");
                    return Ok(AuthorizeCheck::Refuse(OAuthError::ClientMetadata(
                        e.description(),
                    )));
                }
            },
            None => {
                let client = self
                    .run(move |inner| inner.read(|c| Ok(repo::client(c, &client_id)?)))
                    .await?;
                (client, None)
            }
        };
        let Some(client) = client else {
            return Ok(AuthorizeCheck::Refuse(OAuthError::InvalidClient));
        };
        let Ok(redirect) = Url::parse(&params.redirect_uri) else {
            return Ok(AuthorizeCheck::Refuse(OAuthError::InvalidRedirectUri));
        };
        // A document's redirect URIs are matched exactly, loopback ports included.
        let listed = match document_host {
            Some(_) => client
                .redirect_uris
                .iter()
                .any(|r| r.as_str() == redirect.as_str()),
            None => client.redirect_uris.iter().any(|r| r.matches(&redirect)),
        };
        if !listed {
            return Ok(AuthorizeCheck::Refuse(OAuthError::InvalidRedirectUri));
        }
        let refuse = |error| {
            Ok(AuthorizeCheck::Redirect(self.error_redirect(
                &redirect,
                &error,
                params.state.as_deref(),
            )))
        };
        if params.response_type != "code" {
            return refuse(OAuthError::UnsupportedResponseType);
        }
        if params.code_challenge_method != "S256" || !challenge_ok(&params.code_challenge) {
            return refuse(OAuthError::InvalidRequest(
                "PKCE is required: code_challenge with code_challenge_method S256",
            ));
        }
        if params.resource.as_deref() != Some(self.inner.endpoints.resource.as_str()) {
            return refuse(OAuthError::InvalidTarget);
        }
        let scope = match params.scope.as_deref().map(str::trim) {
            None | Some("") => "mcp:read".to_string(),
            Some(scope) if scope.split(' ').all(|s| SCOPES_SUPPORTED.contains(&s)) => {
                scope.to_string()
            }
            Some(_) => return refuse(OAuthError::InvalidScope),
        };
        Ok(AuthorizeCheck::Valid(ValidRequest {
            client,
            document_host,
            redirect,
            challenge: params.code_challenge,
            state: params.state,
            scope,
        }))
    }

    /// The person approved, for one of their workspaces: a grant and a code bound to it.
    /// Returns where to send the browser.
    pub async fn approve(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        request: ValidRequest,
    ) -> Result<Url> {
        self.run(move |inner| {
            let now = inner.clock.now();
            let issued = token::issue(CODE_PREFIX);
            let grant = inner.write(|tx| {
                let ws = authorize(tx, workspace, user, Action::View)
                    .map_err(|_| OAuthError::AccessDenied)?;
                // A client named by its metadata document is stored once someone grants it
                // something, with the name and redirect URIs its document gave.
                if request.document_host.is_some() {
                    repo::save_client(tx, &request.client)?;
                }
                let grant = Grant {
                    id: random_id(),
                    client: request.client.id.clone(),
                    client_name: request.client.name.clone(),
                    user,
                    workspace,
                    membership: Some(ws.membership),
                    scope: request.scope.clone(),
                    resource: inner.endpoints.resource.clone(),
                    created_at: now,
                    last_used_at: None,
                    revoked_at: None,
                };
                repo::insert_grant(tx, &grant)?;
                repo::insert_code(
                    tx,
                    &NewCode {
                        hash: &issued.hash,
                        grant: &grant.id,
                        redirect_uri: request.redirect.as_str(),
                        challenge: &request.challenge,
                        expires_at: now + CODE_TTL_SECS,
                    },
                )?;
                tracing::info!(workspace = %workspace, client = %grant.client, "oauth grant approved");
                Ok(grant)
            })?;
            inner.audit_grant(Actor::user(user), Audited::OAuthGrantApproved, &grant);
            let mut redirect = request.redirect.clone();
            {
                let mut query = redirect.query_pairs_mut();
                query.append_pair("code", &issued.text);
                if let Some(state) = &request.state {
                    query.append_pair("state", state);
                }
                query.append_pair("iss", &inner.endpoints.issuer);
            }
            Ok(redirect)
        })
        .await
    }

    /// The person declined.
    pub fn deny(&self, request: &ValidRequest) -> Url {
        self.error_redirect(
            &request.redirect,
            &OAuthError::AccessDenied,
            request.state.as_deref(),
        )
    }

    fn error_redirect(&self, redirect: &Url, error: &OAuthError, state: Option<&str>) -> Url {
        let mut url = redirect.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("error", &error.to_string());
            query.append_pair("error_description", error.description());
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.inner.endpoints.issuer);
        }
        url
    }
}

impl OAuthService {
    /// The client a checked metadata document describes.
    fn document_client(&self, id: ClientId, document: ClientDocument) -> OAuthClient {
        OAuthClient {
            id,
            name: document.name,
            redirect_uris: document.redirect_uris,
            scope: SCOPES_SUPPORTED.join(" "),
            created_at: self.inner.clock.now(),
        }
    }
}

impl Inner {
    /// The grant behind a code, if the code is one this server issued.
    pub(super) fn code_hash(code: &str) -> Option<SecretHash> {
        token::well_formed(CODE_PREFIX, code).then(|| SecretHash::of(code))
    }
}
