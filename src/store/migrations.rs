//! Ordered, embedded schema migrations tracked in `PRAGMA user_version`.
//! A shipped migration is never edited; fixes go forward in a new file.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

pub struct Schema {
    pub name: &'static str,
    pub steps: &'static [(u32, &'static str)],
}

impl Schema {
    pub fn latest(&self) -> u32 {
        self.steps.last().map_or(0, |(version, _)| *version)
    }
}

pub const CONTROL: Schema = Schema {
    name: "control",
    steps: &[
        (1, include_str!("migrations/control/0001_init.sql")),
        (2, include_str!("migrations/control/0002_accounts.sql")),
        (3, include_str!("migrations/control/0003_workspaces.sql")),
        (4, include_str!("migrations/control/0004_agents.sql")),
        (
            5,
            include_str!("migrations/control/0005_personal_tokens.sql"),
        ),
        (
            6,
            include_str!("migrations/control/0006_refresh_successors.sql"),
        ),
        (7, include_str!("migrations/control/0007_oauth_clients.sql")),
        (8, include_str!("migrations/control/0008_oauth_grants.sql")),
        (9, include_str!("migrations/control/0009_mcp_sessions.sql")),
        (10, include_str!("migrations/shared/audit_log.sql")),
        (11, include_str!("migrations/control/0011_job_runs.sql")),
        (12, include_str!("migrations/control/0012_key_rotation.sql")),
        (13, include_str!("migrations/control/0013_oidc.sql")),
    ],
};

pub const WORKSPACE: Schema = Schema {
    name: "workspace",
    steps: &[
        (1, include_str!("migrations/workspace/0001_init.sql")),
        (2, include_str!("migrations/workspace/0002_records.sql")),
        (
            3,
            include_str!("migrations/workspace/0003_masking_and_sync.sql"),
        ),
        (4, include_str!("migrations/workspace/0004_usage.sql")),
        (5, include_str!("migrations/shared/audit_log.sql")),
        (6, include_str!("migrations/workspace/0006_shown_index.sql")),
    ],
};

/// Applies every step newer than the database's version in one transaction. An up-to-date
/// database is only read: no write lock is taken on the common path.
pub fn migrate(conn: &mut Connection, schema: &Schema, path: &Path) -> Result<(), StoreError> {
    if schema_version(conn, schema, path)? == schema.latest() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let current = schema_version(&tx, schema, path)?;
    for (version, sql) in schema.steps.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; the version is a compiled-in integer.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        tracing::info!(schema = schema.name, version, "applied migration");
    }
    tx.commit()?;
    Ok(())
}

/// The database's schema version, refusing one newer than this binary knows.
fn schema_version(conn: &Connection, schema: &Schema, path: &Path) -> Result<u32, StoreError> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > schema.latest() {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: current,
            supported: schema.latest(),
        });
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_without_gaps() {
        for schema in [&CONTROL, &WORKSPACE] {
            for (index, (version, _)) in schema.steps.iter().enumerate() {
                assert_eq!(*version as usize, index + 1, "{} schema", schema.name);
            }
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_newer_databases_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&mut conn, &CONTROL, path).unwrap();
        migrate(&mut conn, &CONTROL, path).unwrap();
        conn.execute_batch("PRAGMA user_version = 999").unwrap();
        assert!(matches!(
            migrate(&mut conn, &CONTROL, path),
            Err(StoreError::SchemaTooNew { found: 999, .. })
        ));
    }
}
