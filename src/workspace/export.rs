//! The export archive: one JSON document with everything the workspace holds, built in
//! memory and streamed to the person who asked; it never touches the disk in plaintext.

use rusqlite::Connection;
use serde::Serialize;

use super::model::{Member, Workspace};
use super::records::Record;

pub const FORMAT: &str = "strongbox-export";
pub const VERSION: u32 = 1;

#[derive(Serialize)]
pub struct Archive {
    format: &'static str,
    version: u32,
    exported_at: i64,
    workspace: WorkspaceInfo,
    members: Vec<MemberInfo>,
    /// The workspace database's own settings (`meta`), key by key.
    settings: Vec<Setting>,
    /// Every live record, collection by collection.
    records: Vec<RecordOut>,
}

#[derive(Serialize)]
struct RecordOut {
    collection: String,
    id: String,
    version: i64,
    updated_at: i64,
    data: serde_json::Value,
}

#[derive(Serialize)]
struct WorkspaceInfo {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct MemberInfo {
    email: String,
    role: &'static str,
}

#[derive(Serialize)]
struct Setting {
    key: String,
    value: String,
}

/// Reads the workspace database's contents through a read-only handle.
pub fn settings(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT key, value FROM meta ORDER BY key")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

pub fn archive(
    workspace: &Workspace,
    members: Vec<Member>,
    settings: Vec<(String, String)>,
    records: Vec<Record>,
    now: i64,
) -> Archive {
    Archive {
        format: FORMAT,
        version: VERSION,
        exported_at: now,
        workspace: WorkspaceInfo {
            id: workspace.id.to_string(),
            name: workspace.name.clone(),
        },
        members: members
            .into_iter()
            .map(|m| MemberInfo {
                email: m.email.to_string(),
                role: m.role.as_str(),
            })
            .collect(),
        settings: settings
            .into_iter()
            .map(|(key, value)| Setting { key, value })
            .collect(),
        records: records
            .into_iter()
            .map(|r| RecordOut {
                collection: r.collection,
                id: r.id,
                version: r.version,
                updated_at: r.updated_at,
                data: r.data,
            })
            .collect(),
    }
}
