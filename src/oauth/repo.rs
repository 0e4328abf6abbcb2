//! The OAuth SQL, in the control database.

use rusqlite::{Connection, params};

use super::model::{OAuthClient, RedirectUri};

pub fn insert_client(conn: &Connection, client: &OAuthClient) -> rusqlite::Result<()> {
    let uris: Vec<&str> = client
        .redirect_uris
        .iter()
        .map(RedirectUri::as_str)
        .collect();
    let uris = serde_json::to_string(&uris)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute(
        "INSERT INTO oauth_clients (id, name, redirect_uris, scope, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
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
