//! The export archive: one JSON document with everything the workspace holds, built in
//! memory and streamed to the person who asked; it never touches the disk in plaintext.

use rusqlite::Connection;
use serde::Serialize;

use super::model::{Member, Workspace};

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
    }
}
