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
        (
            14,
            include_str!("migrations/control/0014_membership_ids.sql"),
        ),
        (
            15,
            include_str!("migrations/control/0015_unused_oauth_clients.sql"),
        ),
        (
            16,
            include_str!("migrations/shared/audit_log_no_replace.sql"),
        ),
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
        (
            7,
            include_str!("migrations/shared/audit_log_no_replace.sql"),
        ),
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

    /// Migration 14 on a database with history: `ann` joined before making each of her
    /// credentials; `bob` made his, then left and joined again; `cat` made hers and left.
    #[test]
    fn membership_ids_carry_each_credential_to_the_membership_it_was_made_in() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let path = Path::new(":memory:");
        let before = Schema {
            name: "control",
            steps: CONTROL.steps.split_at(13).0,
        };
        migrate(&mut conn, &before, path).unwrap();
        conn.execute_batch(
            "INSERT INTO workspaces (id, key_version, created_at) VALUES ('w', 1, 0);
             INSERT INTO users (id, email, password_hash, created_at)
                 VALUES ('ann', 'a@x', '', 0), ('bob', 'b@x', '', 0), ('cat', 'c@x', '', 0);
             INSERT INTO memberships (workspace_id, user_id, role, created_at)
                 VALUES ('w', 'ann', 'owner', 100), ('w', 'bob', 'admin', 300);
             INSERT INTO oauth_clients (id, name, redirect_uris, scope, created_at)
                 VALUES ('c', 'Client', '[]', 'mcp:read', 0);",
        )
        .unwrap();
        // Each person makes one of each credential at second 200.
        for user in ["ann", "bob", "cat"] {
            conn.execute_batch(&format!(
                "INSERT INTO personal_tokens
                     (id, secret_hash, workspace_id, user_id, name, access, created_at)
                     VALUES ('{user}', x'00', 'w', '{user}', 't', 'read', 200);
                 INSERT INTO oauth_grants
                     (id, client_id, user_id, workspace_id, scope, resource, created_at)
                     VALUES ('{user}', 'c', '{user}', 'w', 'mcp:read', 'r', 200);
                 INSERT INTO pairing_codes
                     (code_hash, workspace_id, device_name, created_by, created_at, expires_at)
                     VALUES (x'{}', 'w', 'd', '{user}', 200, 9999);
                 INSERT INTO agents (id, workspace_id, name, paired_at, paired_by)
                     VALUES ('{user}', 'w', 'd', 200, '{user}');",
                hex::encode(user),
            ))
            .unwrap();
        }
        migrate(&mut conn, &CONTROL, path).unwrap();

        let membership = |user: &str| -> i64 {
            conn.query_row(
                "SELECT id FROM memberships WHERE user_id = ?1",
                [user],
                |row| row.get(0),
            )
            .unwrap()
        };
        let (ann, bob) = (membership("ann"), membership("bob"));
        assert_ne!(ann, bob);
        let linked = |sql: &str| -> Vec<(String, Option<i64>)> {
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)));
            rows.unwrap().map(Result::unwrap).collect()
        };
        let expected = vec![
            ("ann".to_string(), Some(ann)),
            ("bob".to_string(), None),
            ("cat".to_string(), None),
        ];
        for sql in [
            "SELECT user_id, membership_id FROM personal_tokens ORDER BY user_id",
            "SELECT user_id, membership_id FROM oauth_grants ORDER BY user_id",
            "SELECT created_by, membership_id FROM pairing_codes ORDER BY created_by",
            "SELECT paired_by, membership_id FROM agents ORDER BY paired_by",
        ] {
            assert_eq!(linked(sql), expected, "{sql}");
        }

        // Ending a membership clears the links to it, and its id is never given out again.
        conn.execute_batch(
            "DELETE FROM memberships WHERE user_id = 'ann';
             INSERT INTO memberships (workspace_id, user_id, role, created_at)
                 VALUES ('w', 'ann', 'owner', 400);",
        )
        .unwrap();
        assert!(membership("ann") > ann.max(bob));
        let dead: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM personal_tokens WHERE membership_id IS NULL)
                      + (SELECT count(*) FROM oauth_grants WHERE membership_id IS NULL)
                      + (SELECT count(*) FROM pairing_codes WHERE membership_id IS NULL)
                      + (SELECT count(*) FROM agents WHERE membership_id IS NULL)",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(dead, 12);
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
