//! The masking policy's SQL, on a workspace's database.

use rusqlite::{Connection, OptionalExtension, params};

use super::{MAX_RULES, Policy};
use crate::privacy::{MaskingRule, RuleAction};

const REQUIRE_REDACTION_KEY: &str = "require_redaction";

pub fn load(conn: &Connection) -> rusqlite::Result<Policy> {
    let mut stmt = conn.prepare_cached(
        "SELECT term, action, alias FROM masking_rules ORDER BY term COLLATE NOCASE",
    )?;
    let rows = stmt.query_map([], |row| {
        let action: String = row.get(1)?;
        let alias: Option<String> = row.get(2)?;
        Ok(MaskingRule {
            term: row.get(0)?,
            action: match (action.as_str(), alias) {
                ("alias", Some(alias)) => RuleAction::Alias(alias),
                _ => RuleAction::Redact,
            },
        })
    })?;
    let rules = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let require: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([REQUIRE_REDACTION_KEY], |row| row.get(0))
        .optional()?;
    Ok(Policy {
        rules,
        require_redaction: require.as_deref() == Some("true"),
    })
}

/// Adds a rule, or replaces the one for the same term (terms match case-insensitively).
/// `false` if the workspace already has the most rules allowed.
pub fn put_rule(conn: &Connection, rule: &MaskingRule, now: i64) -> rusqlite::Result<bool> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM masking_rules WHERE term <> ?1",
        [&rule.term],
        |row| row.get(0),
    )?;
    if count as usize >= MAX_RULES {
        return Ok(false);
    }
    let (action, alias) = match &rule.action {
        RuleAction::Alias(alias) => ("alias", Some(alias.as_str())),
        RuleAction::Redact => ("redact", None),
    };
    conn.execute(
        "INSERT INTO masking_rules (term, action, alias, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (term) DO UPDATE SET term = excluded.term, action = excluded.action,
             alias = excluded.alias",
        params![rule.term, action, alias, now],
    )?;
    Ok(true)
}

/// `false` if no rule has that term.
pub fn remove_rule(conn: &Connection, term: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM masking_rules WHERE term = ?1", [term.trim()])? == 1)
}

pub fn set_require_redaction(conn: &Connection, required: bool) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![REQUIRE_REDACTION_KEY, required.to_string()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::policy::parse_rule;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate_workspace_for_tests(&mut conn);
        conn
    }

    #[test]
    fn rules_round_trip_and_the_version_follows_every_change() {
        let conn = db();
        let empty = load(&conn).unwrap();
        assert_eq!(empty, Policy::default());
        let alias = parse_rule(" Acme Corp ", "alias", "Client A").unwrap();
        assert!(put_rule(&conn, &alias, 1).unwrap());
        let with_rule = load(&conn).unwrap();
        assert_eq!(with_rule.rules, vec![alias]);
        assert_ne!(with_rule.version(), empty.version());

        // The same term in another case replaces the rule rather than adding one.
        let redact = parse_rule("acme corp", "redact", "").unwrap();
        assert!(put_rule(&conn, &redact, 2).unwrap());
        let replaced = load(&conn).unwrap();
        assert_eq!(replaced.rules, vec![redact]);
        assert_ne!(replaced.version(), with_rule.version());

        set_require_redaction(&conn, true).unwrap();
        let required = load(&conn).unwrap();
        assert!(required.require_redaction);
        assert_ne!(required.version(), replaced.version());

        assert!(remove_rule(&conn, "ACME CORP").unwrap());
        assert!(!remove_rule(&conn, "acme corp").unwrap());
    }
}
