//! The OAuth SQL, in the control database.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{ClientId, Grant, NewCode, OAuthClient, RedirectUri, TokenKind};
use crate::crypto::token::SecretHash;
use crate::ids::WorkspaceId;
use crate::store::columns::parsed;

/// Stores a client, or refreshes the name and redirect URIs of one stored before: a client
/// named by its metadata document, as the document now reads.
pub fn save_client(conn: &Connection, client: &OAuthClient) -> rusqlite::Result<()> {
    let uris: Vec<&str> = client
        .redirect_uris
        .iter()
        .map(RedirectUri::as_str)
        .collect();
    let uris = serde_json::to_string(&uris)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute(
        "INSERT INTO oauth_clients (id, name, redirect_uris, scope, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, redirect_uris = excluded.redirect_uris",
        params![
            client.id.as_str(),
            client.name,
            uris,
            client.scope,
            client.created_at
        ],
    )?;
    Ok(())
}

pub fn client(conn: &Connection, id: &ClientId) -> rusqlite::Result<Option<OAuthClient>> {
    conn.query_row(
        "SELECT id, name, redirect_uris, scope, created_at FROM oauth_clients WHERE id = ?1",
        [id.as_str()],
        |row| {
            let uris: String = row.get(2)?;
            let uris: Vec<String> = serde_json::from_str(&uris).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(2, Type::Text, Box::new(e))
            })?;
            Ok(OAuthClient {
                id: parsed(row, 0)?,
                name: row.get(1)?,
                // Stored URIs were checked when registered.
                redirect_uris: uris.iter().filter_map(|u| RedirectUri::parse(u)).collect(),
                scope: row.get(3)?,
                created_at: row.get(4)?,
            })
        },
    )
    .optional()
}

/// Stores a grant, and marks its client as granted (so it is no longer an unused one).
pub fn insert_grant(conn: &Connection, grant: &Grant) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE oauth_clients SET first_granted_at = coalesce(first_granted_at, ?2) WHERE id = ?1",
        params![grant.client.as_str(), grant.created_at],
    )?;
    conn.execute(
        "INSERT INTO oauth_grants
             (id, client_id, user_id, workspace_id, membership_id, scope, resource, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            grant.id,
            grant.client.as_str(),
            grant.user.to_string(),
            grant.workspace.to_string(),
            grant.membership,
            grant.scope,
            grant.resource,
            grant.created_at
        ],
    )?;
    Ok(())
}

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.user_id, g.workspace_id, g.scope, g.resource,
     g.created_at, g.last_used_at, g.revoked_at, c.name, g.membership_id";

fn grant_row(row: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: row.get(0)?,
        client: parsed(row, 1)?,
        user: parsed(row, 2)?,
        workspace: parsed(row, 3)?,
        scope: row.get(4)?,
        resource: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
        revoked_at: row.get(8)?,
        client_name: row.get(9)?,
        membership: row.get(10)?,
    })
}

pub fn grant(conn: &Connection, id: &str) -> rusqlite::Result<Option<Grant>> {
    conn.prepare_cached(&format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id
         WHERE g.id = ?1"
    ))?
    .query_row([id], grant_row)
    .optional()
}

pub fn revoke_grant(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE oauth_grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    conn.execute(
        "DELETE FROM oauth_tokens WHERE grant_id = ?1 AND kind = 'access'",
        [id],
    )?;
    Ok(changed == 1)
}

pub fn insert_code(conn: &Connection, code: &NewCode<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO oauth_codes (code_hash, grant_id, redirect_uri, code_challenge, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            code.hash.as_bytes(),
            code.grant,
            code.redirect_uri,
            code.challenge,
            code.expires_at
        ],
    )?;
    Ok(())
}

/// A presented code as stored: its grant, redirect URI, challenge, expiry and first use.
pub struct StoredCode {
    pub grant: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub fn code(conn: &Connection, hash: &SecretHash) -> rusqlite::Result<Option<StoredCode>> {
    conn.query_row(
        "SELECT grant_id, redirect_uri, code_challenge, expires_at, used_at FROM oauth_codes
         WHERE code_hash = ?1",
        [hash.as_bytes()],
        |row| {
            Ok(StoredCode {
                grant: row.get(0)?,
                redirect_uri: row.get(1)?,
                challenge: row.get(2)?,
                expires_at: row.get(3)?,
                used_at: row.get(4)?,
            })
        },
    )
    .optional()
}

pub fn use_code(conn: &Connection, hash: &SecretHash, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE oauth_codes SET used_at = ?2 WHERE code_hash = ?1",
        params![hash.as_bytes(), now],
    )?;
    Ok(())
}

pub fn insert_token(
    conn: &Connection,
    hash: &SecretHash,
    grant: &str,
    kind: TokenKind,
    now: i64,
    expires_at: Option<i64>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO oauth_tokens (token_hash, grant_id, kind, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash.as_bytes(), grant, kind.as_str(), now, expires_at],
    )?;
    Ok(())
}

/// A presented token as stored.
pub struct StoredToken {
    pub grant: String,
    pub kind: TokenKind,
    pub expires_at: Option<i64>,
    pub used_at: Option<i64>,
    pub grace_used: bool,
}

pub fn token(conn: &Connection, hash: &SecretHash) -> rusqlite::Result<Option<StoredToken>> {
    conn.prepare_cached(
        "SELECT grant_id, kind, expires_at, used_at, grace_used FROM oauth_tokens
         WHERE token_hash = ?1",
    )?
    .query_row([hash.as_bytes()], |row| {
        Ok(StoredToken {
            grant: row.get(0)?,
            kind: parsed(row, 1)?,
            expires_at: row.get(2)?,
            used_at: row.get(3)?,
            grace_used: row.get(4)?,
        })
    })
    .optional()
}

/// Marks a refresh token used (the first time) or its one grace use spent.
pub fn use_refresh_token(conn: &Connection, hash: &SecretHash, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE oauth_tokens SET grace_used = (used_at IS NOT NULL), used_at = coalesce(used_at, ?2)
         WHERE token_hash = ?1",
        params![hash.as_bytes(), now],
    )?;
    Ok(())
}

pub fn delete_token(conn: &Connection, hash: &SecretHash) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM oauth_tokens WHERE token_hash = ?1",
        [hash.as_bytes()],
    )?;
    Ok(())
}

pub fn touch_grant(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE oauth_grants SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// The workspace's grants not revoked, newest first, with their person's email.
pub fn grants_of(
    conn: &Connection,
    workspace: WorkspaceId,
) -> rusqlite::Result<Vec<(Grant, String)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {GRANT_COLUMNS}, u.email FROM oauth_grants g
         JOIN oauth_clients c ON c.id = g.client_id JOIN users u ON u.id = g.user_id
         WHERE g.workspace_id = ?1 AND g.revoked_at IS NULL AND g.membership_id IS NOT NULL
         ORDER BY g.created_at DESC, g.id"
    ))?;
    let rows = stmt.query_map([workspace.to_string()], |row| {
        Ok((grant_row(row)?, row.get(11)?))
    })?;
    rows.collect()
}

/// Deletes authorization codes that expired unused. A used code stays as long as its
/// grant: presenting it again is a replay, and revokes the grant.
pub fn delete_expired_codes(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM oauth_codes WHERE used_at IS NULL AND expires_at <= ?1",
        [now],
    )
}

/// Deletes access tokens past their expiry. Refresh tokens have none: used ones are kept
/// for reuse detection, and all of them go with their grant.
pub fn delete_expired_access_tokens(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM oauth_tokens WHERE kind = 'access' AND expires_at <= ?1",
        [now],
    )
}

/// Deletes clients registered before `now - max_age_secs` that were never granted anything.
pub fn delete_unused_clients(
    conn: &Connection,
    now: i64,
    max_age_secs: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM oauth_clients WHERE first_granted_at IS NULL AND created_at < ?1",
        [now - max_age_secs],
    )
}

/// How many registered clients were never granted anything.
pub fn count_unused_clients(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM oauth_clients WHERE first_granted_at IS NULL",
        [],
        |row| row.get(0),
    )
}

/// Deletes grants that can never be used again: revoked, past their lifetime, or made in a
/// membership that ended. Their codes and tokens cascade; a token presented afterwards is
/// unknown, and refused.
pub fn delete_ended_grants(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM oauth_grants
         WHERE revoked_at IS NOT NULL OR membership_id IS NULL OR created_at < ?1 - ?2",
        params![now, super::service::GRANT_LIFETIME_SECS],
    )
}
