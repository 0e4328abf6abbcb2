//! The token endpoint (RFC 6749 sections 4.1.3 and 6, with PKCE and RFC 8707) and
//! revocation (RFC 7009). Access tokens are opaque and last an hour; refresh tokens rotate
//! on every use, with a short grace in which the previous one still works once (clients
//! that refresh in parallel must not sign their person out).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Inner, OAuthService, Result};
use crate::audit::{Action as Audited, Actor};
use crate::crypto::token::{self, SecretHash};
use crate::oauth::error::OAuthError;
use crate::oauth::model::{ClientId, Grant, TokenKind};
use crate::oauth::repo;
use crate::workspace::{Action, authorize};

pub const ACCESS_TOKEN_PREFIX: &str = "sbx_at_";
pub const REFRESH_TOKEN_PREFIX: &str = "sbx_rt_";
pub const ACCESS_TOKEN_TTL_SECS: i64 = 60 * 60;
/// How long after a refresh the previous refresh token still works, once.
pub const REFRESH_GRACE_SECS: i64 = 30;
/// A grant ends this long after the person allowed it, however it was refreshed: every
/// token chain from it, including one begun in a refresh grace, has an end. The client
/// then asks the person again.
pub const GRANT_LIFETIME_SECS: i64 = 90 * 24 * 60 * 60;

/// A token request, as the form fields arrive.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    pub grant_type: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub code_verifier: String,
    #[serde(default)]
    pub refresh_token: String,
    #[serde(default)]
    pub resource: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
}

/// The outcome of a write that may have to commit a revocation before refusing, with the
/// event it makes in the grant's workspace audit log (a refusal that revoked nothing makes
/// none).
enum Exchange {
    Issued(TokenResponse, (Audited, Grant)),
    Refused(OAuthError, Option<(Audited, Grant)>),
}

/// PKCE S256: the verifier's SHA-256, base64url, equals the challenge (compared in
/// constant time). The verifier is 43 to 128 unreserved characters (RFC 7636).
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let shape = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    shape && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

impl OAuthService {
    pub async fn token(&self, request: TokenRequest) -> Result<TokenResponse> {
        let client: ClientId = request
            .client_id
            .parse()
            .map_err(|_| OAuthError::InvalidClient)?;
        if request
            .resource
            .as_ref()
            .is_some_and(|resource| *resource != self.inner.endpoints.resource)
        {
            return Err(OAuthError::InvalidTarget);
        }
        match request.grant_type.as_str() {
            "authorization_code" => {
                self.run(move |inner| inner.audited(inner.exchange_code(&client, &request)?))
                    .await?
            }
            "refresh_token" => {
                self.run(move |inner| inner.audited(inner.exchange_refresh(&client, &request)?))
                    .await?
            }
            _ => Err(OAuthError::UnsupportedGrantType),
        }
    }

    /// RFC 7009: a refresh token revokes its whole grant, an access token itself. Unknown
    /// tokens are not an error.
    pub async fn revoke(&self, token: String) -> Result<()> {
        let hash = SecretHash::of(&token);
        self.run(move |inner| {
            let now = inner.clock.now();
            let revoked = inner.write(|tx| {
                match repo::token(tx, &hash)? {
                    Some(stored) if stored.kind == TokenKind::Refresh => {
                        let grant = repo::grant(tx, &stored.grant)?;
                        repo::revoke_grant(tx, &stored.grant, now)?;
                        return Ok(grant.filter(|g| g.revoked_at.is_none()));
                    }
                    Some(_) => repo::delete_token(tx, &hash)?,
                    None => {}
                }
                Ok(None)
            })?;
            if let Some(grant) = revoked {
                let client = Actor::oauth_client(&grant.client);
                inner.audit_grant(client, Audited::OAuthGrantRevoked, &grant);
            }
            Ok(())
        })
        .await
    }
}

impl OAuthService {
    /// The grant behind an access token, if the token is live: issued here, within its
    /// hour, its grant not revoked and its person still a member of the workspace.
    pub async fn access(&self, token: String) -> Result<Option<Grant>> {
        if !token::well_formed(ACCESS_TOKEN_PREFIX, &token) {
            return Ok(None);
        }
        let hash = SecretHash::of(&token);
        self.run(move |inner| {
            let now = inner.clock.now();
            let grant = inner.read(|c| {
                let Some(stored) = repo::token(c, &hash)?.filter(|t| t.kind == TokenKind::Access)
                else {
                    return Ok(None);
                };
                if stored.expires_at.is_none_or(|at| now >= at) {
                    return Ok(None);
                }
                let Some(grant) = repo::grant(c, &stored.grant)? else {
                    return Ok(None);
                };
                let client = grant.client.clone();
                live_grant(c, &stored.grant, &client, now)
            })?;
            // The last use is noted at most once a minute.
            if let Some(grant) = grant
                .as_ref()
                .filter(|g| g.last_used_at.is_none_or(|at| at < now - 60))
            {
                inner.write(|tx| Ok(repo::touch_grant(tx, &grant.id, now)?))?;
            }
            Ok(grant)
        })
        .await
    }
}

impl Inner {
    /// Audits what the exchange did, by the client, once its transaction has committed.
    fn audited(&self, exchange: Exchange) -> Result<Result<TokenResponse>> {
        let (event, outcome) = match exchange {
            Exchange::Issued(tokens, event) => (Some(event), Ok(tokens)),
            Exchange::Refused(error, event) => (event, Err(error)),
        };
        if let Some((action, grant)) = event {
            self.audit_grant(Actor::oauth_client(&grant.client), action, &grant);
        }
        Ok(outcome)
    }

    fn exchange_code(&self, client: &ClientId, request: &TokenRequest) -> Result<Exchange> {
        let Some(hash) = Inner::code_hash(&request.code) else {
            return Ok(Exchange::Refused(OAuthError::InvalidGrant, None));
        };
        let now = self.clock.now();
        self.write(|tx| {
            let Some(code) = repo::code(tx, &hash)? else {
                return Ok(Exchange::Refused(OAuthError::InvalidGrant, None));
            };
            if code.used_at.is_some() {
                // A replayed code: everything issued from it is revoked.
                let grant = repo::grant(tx, &code.grant)?.filter(|g| g.revoked_at.is_none());
                repo::revoke_grant(tx, &code.grant, now)?;
                tracing::warn!(grant = %code.grant, "authorization code replayed; grant revoked");
                return Ok(Exchange::Refused(
                    OAuthError::InvalidGrant,
                    grant.map(|g| (Audited::OAuthCodeReplayed, g)),
                ));
            }
            repo::use_code(tx, &hash, now)?;
            let grant = match live_grant(tx, &code.grant, client, now)? {
                Some(grant) => grant,
                None => return Ok(Exchange::Refused(OAuthError::InvalidGrant, None)),
            };
            // The redirect URI is compared as a URL, as it was stored (normalised).
            let same_redirect = url::Url::parse(&request.redirect_uri)
                .is_ok_and(|presented| presented.as_str() == code.redirect_uri);
            let bound = now < code.expires_at
                && same_redirect
                && verifier_matches(&request.code_verifier, &code.challenge);
            if !bound {
                return Ok(Exchange::Refused(OAuthError::InvalidGrant, None));
            }
            let tokens = issue_tokens(tx, &grant, now)?;
            Ok(Exchange::Issued(
                tokens,
                (Audited::OAuthTokensIssued, grant),
            ))
        })
    }

    fn exchange_refresh(&self, client: &ClientId, request: &TokenRequest) -> Result<Exchange> {
        if !token::well_formed(REFRESH_TOKEN_PREFIX, &request.refresh_token) {
            return Ok(Exchange::Refused(OAuthError::InvalidGrant, None));
        }
        let hash = SecretHash::of(&request.refresh_token);
        let now = self.clock.now();
        self.write(|tx| {
            let Some(stored) = repo::token(tx, &hash)?.filter(|t| t.kind == TokenKind::Refresh)
            else {
                return Ok(Exchange::Refused(OAuthError::InvalidGrant, None));
            };
            if let Some(used_at) = stored.used_at {
                let in_grace = now - used_at <= REFRESH_GRACE_SECS && !stored.grace_used;
                if !in_grace {
                    // Used again after its grace: a copy is in use. The grant ends.
                    let grant = repo::grant(tx, &stored.grant)?.filter(|g| g.revoked_at.is_none());
                    repo::revoke_grant(tx, &stored.grant, now)?;
                    tracing::warn!(grant = %stored.grant, "refresh token replayed; grant revoked");
                    return Ok(Exchange::Refused(
                        OAuthError::InvalidGrant,
                        grant.map(|g| (Audited::OAuthRefreshReused, g)),
                    ));
                }
            }
            let Some(grant) = live_grant(tx, &stored.grant, client, now)? else {
                return Ok(Exchange::Refused(OAuthError::InvalidGrant, None));
            };
            repo::use_refresh_token(tx, &hash, now)?;
            let tokens = issue_tokens(tx, &grant, now)?;
            Ok(Exchange::Issued(
                tokens,
                (Audited::OAuthTokensRefreshed, grant),
            ))
        })
    }
}

/// The grant, if it is this client's, not revoked, younger than `GRANT_LIFETIME_SECS`,
/// and its person still a member of its workspace in the membership that granted it.
fn live_grant(conn: &Connection, id: &str, client: &ClientId, now: i64) -> Result<Option<Grant>> {
    let Some(grant) = repo::grant(conn, id)? else {
        return Ok(None);
    };
    let too_old = now - grant.created_at > GRANT_LIFETIME_SECS;
    if grant.client != *client || grant.revoked_at.is_some() || too_old {
        return Ok(None);
    }
    // Its person must still be a member, in the membership that made the grant: being
    // removed or leaving ends that membership, and joining again begins another, which
    // does not revive the grant.
    match authorize(conn, grant.workspace, grant.user, Action::View) {
        Ok(ws) if grant.membership == Some(ws.membership) => Ok(Some(grant)),
        _ => Ok(None),
    }
}

fn issue_tokens(conn: &Connection, grant: &Grant, now: i64) -> Result<TokenResponse> {
    let access = token::issue(ACCESS_TOKEN_PREFIX);
    let refresh = token::issue(REFRESH_TOKEN_PREFIX);
    let expires_at = now + ACCESS_TOKEN_TTL_SECS;
    repo::insert_token(
        conn,
        &access.hash,
        &grant.id,
        TokenKind::Access,
        now,
        Some(expires_at),
    )?;
    repo::insert_token(
        conn,
        &refresh.hash,
        &grant.id,
        TokenKind::Refresh,
        now,
        None,
    )?;
    repo::touch_grant(conn, &grant.id, now)?;
    Ok(TokenResponse {
        access_token: access.text.to_string(),
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECS,
        refresh_token: refresh.text.to_string(),
        scope: grant.scope.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_its_challenge_and_nothing_else() {
        // The challenge computed independently (Python's hashlib and base64).
        let verifier = "dBjftJeZ4CVP-mJ92K1qP3tw-9Zl6jaWvb7UUzxcQVM";
        let challenge = "vpF0-CN6iWqJQ5aJtfKChgVIB8f_dsrKNhvT_JDHX7c";
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(&verifier.replace('d', "e"), challenge));
        assert!(!verifier_matches("short", challenge));
        assert!(
            !verifier_matches(challenge, challenge),
            "plain is not accepted"
        );
    }
}
