//! "Download my data": one JSON archive of everything held about a person, built in memory.
//! No secret goes in: passwords, TOTP secrets and codes, session ids and token secrets exist
//! only as hashes, and the archive says no more than that a factor is on. At most three an
//! hour, counted from the system log's own rows in the transaction that adds the next one, so
//! the limit survives a restart and two requests at once cannot both slip under it.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::{Result, WorkspaceService};
use crate::audit::{Action as Audited, Actor, ActorKind, AuditRow, Chain, Entry, Filter};
use crate::auth::UserId;
use crate::workspace::error::WorkspaceError;
use crate::workspace::repo;

pub const MAX_DOWNLOADS_PER_HOUR: i64 = 3;
const HOUR_SECS: i64 = 3600;

impl WorkspaceService {
    /// The person's archive as pretty JSON, recorded in the system log as
    /// `account.data_downloaded`. The limit is checked first, in the transaction that
    /// records the download: a refused request builds nothing.
    pub async fn personal_data(&self, user: UserId) -> Result<Vec<u8>> {
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.write(|tx| {
                let (count, oldest) = downloads_since(tx, user, now - HOUR_SECS)?;
                if count >= MAX_DOWNLOADS_PER_HOUR {
                    let wait = oldest.map_or(HOUR_SECS, |t| t + HOUR_SECS - now).max(1);
                    return Err(WorkspaceError::ExportLimit {
                        retry_after_secs: wait as u64,
                    });
                }
                let json = archive(inner, tx, user, now)?;
                let entry = Entry::new(Actor::user(user), Audited::PersonalDataDownloaded)
                    .detail("bytes", json.len());
                inner.audit.append(tx, Chain::System, entry)?;
                Ok(json)
            })
        })
        .await
    }
}

/// Everything held about the person, as pretty JSON.
fn archive(inner: &super::Inner, conn: &Connection, user: UserId, now: i64) -> Result<Vec<u8>> {
    let workspaces = repo::workspaces_of(conn, user)?;
    let mut archive = control_rows(conn, user)?;
    let mut audit = serde_json::Map::new();
    audit.insert("system".into(), rows_by(inner, Chain::System, user)?);
    for workspace in &workspaces {
        let chain = Chain::Workspace(workspace.id);
        audit.insert(workspace.id.to_string(), rows_by(inner, chain, user)?);
    }
    archive["generated_at"] = json!(now);
    archive["memberships"] = workspaces
        .iter()
        .map(|w| {
            json!({
                "workspace_id": w.id.to_string(),
                "workspace": w.name,
                "role": w.role.as_str(),
                "member_since": w.member_since,
            })
        })
        .collect();
    archive["audit_log_rows_as_actor"] = Value::Object(audit);
    Ok(serde_json::to_vec_pretty(&archive)?)
}

/// Every row of `chain` whose actor is the person, oldest first.
fn rows_by(inner: &super::Inner, chain: Chain, user: UserId) -> Result<Value> {
    let filter = Filter {
        actor_kind: Some(ActorKind::User.as_str().to_string()),
        actor_id: Some(user.to_string()),
        ..Filter::default()
    };
    let mut rows: Vec<AuditRow> = Vec::new();
    inner.audit.each(chain, &filter, |row| {
        rows.push(row);
        true
    })?;
    Ok(serde_json::to_value(rows)?)
}

/// How many archives the person took since `since`, and when the oldest of those was.
fn downloads_since(
    conn: &Connection,
    user: UserId,
    since: i64,
) -> rusqlite::Result<(i64, Option<i64>)> {
    conn.query_row(
        "SELECT COUNT(*), MIN(at) FROM audit_log
         WHERE action = ?1 AND actor_kind = ?2 AND actor_id = ?3 AND at >= ?4",
        params![
            Audited::PersonalDataDownloaded.as_str(),
            ActorKind::User.as_str(),
            user.to_string(),
            since
        ],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

/// The person's rows in the control database, secrets left out: each query names the columns
/// it shares, and never a hash, secret or key.
fn control_rows(conn: &Connection, user: UserId) -> rusqlite::Result<Value> {
    let id = user.to_string();
    let profile = rows_as_json(
        conn,
        "SELECT email, created_at, email_verified_at, totp_enabled_at AS two_factor_enabled_at,
                has_password = 1 AS has_password
         FROM users WHERE id = ?1",
        &id,
    )?
    .into_iter()
    .next()
    .unwrap_or(Value::Null);
    let backup_codes_left: i64 = conn.query_row(
        "SELECT COUNT(*) FROM backup_codes WHERE user_id = ?1 AND used_at IS NULL",
        [&id],
        |row| row.get(0),
    )?;
    let linked_providers = rows_as_json(
        conn,
        "SELECT provider, subject, email, linked_at, last_used_at FROM oidc_identities
         WHERE user_id = ?1 ORDER BY provider",
        &id,
    )?;
    let sessions = rows_as_json(
        conn,
        "SELECT created_at, last_seen_at, ip, user_agent, stage FROM sessions
         WHERE user_id = ?1 ORDER BY created_at",
        &id,
    )?;
    let personal_tokens = rows_as_json(
        conn,
        "SELECT id, workspace_id, name, access, created_at, last_used_at, revoked_at
         FROM personal_tokens WHERE user_id = ?1 ORDER BY created_at",
        &id,
    )?;
    let ai_client_grants = rows_as_json(
        conn,
        "SELECT g.id, c.name AS client, g.workspace_id, g.scope, g.created_at,
                g.last_used_at, g.revoked_at
         FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id
         WHERE g.user_id = ?1 ORDER BY g.created_at",
        &id,
    )?;
    let agents_paired = rows_as_json(
        conn,
        "SELECT id, workspace_id, name, paired_at, last_seen_at, revoked_at
         FROM agents WHERE paired_by = ?1 ORDER BY paired_at",
        &id,
    )?;
    Ok(json!({
        "profile": profile,
        "two_factor": {
            "enabled": profile["two_factor_enabled_at"].is_i64(),
            "backup_codes_left": backup_codes_left,
        },
        "linked_sign_in_providers": linked_providers,
        "sessions": sessions,
        "personal_tokens": personal_tokens,
        "ai_client_grants": ai_client_grants,
        "agents_paired": agents_paired,
    }))
}

/// Each row of `sql` (run with the user's id) as a JSON object keyed by its column names.
fn rows_as_json(conn: &Connection, sql: &str, user: &str) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(String::from).collect();
    stmt.query_map([user], |row| {
        let mut object = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let value = match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => json!(n),
                ValueRef::Real(x) => json!(x),
                ValueRef::Text(text) => json!(String::from_utf8_lossy(text)),
                // No query here selects a blob: hashes and secrets are the only ones.
                ValueRef::Blob(_) => Value::Null,
            };
            object.insert(name.clone(), value);
        }
        Ok(Value::Object(object))
    })?
    .collect()
}
