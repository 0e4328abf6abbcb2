//! A workspace's privacy policy: its masking rules and whether agents must redact on the
//! device before they upload. Kept in the workspace's own database.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::privacy::{Masker, MaskingRule, PrivacyError, RuleAction};

pub const MAX_RULES: usize = 500;
pub const MAX_TERM_CHARS: usize = 200;
pub const MAX_ALIAS_CHARS: usize = 100;
const REQUIRE_REDACTION_KEY: &str = "require_redaction";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<MaskingRule>,
    pub require_redaction: bool,
}

impl Policy {
    /// Names this exact policy: it changes whenever a rule or the requirement changes, so
    /// a batch redacted under an older policy is recognised.
    pub fn version(&self) -> String {
        let mut hash = Sha256::new();
        hash.update([u8::from(self.require_redaction)]);
        for rule in &self.rules {
            let (kind, alias) = match &rule.action {
                RuleAction::Alias(alias) => ("alias", alias.as_str()),
                RuleAction::Redact => ("redact", ""),
            };
            for part in [rule.term.as_str(), kind, alias] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part.as_bytes());
            }
        }
        hex::encode(&hash.finalize()[..8])
    }

    pub fn masker(&self) -> Result<Masker, PrivacyError> {
        Masker::new(self.rules.clone())
    }
}

/// A rule as someone typed it, checked: a trimmed term and alias of sensible length with
/// no control characters.
pub fn parse_rule(term: &str, action: &str, alias: &str) -> Option<MaskingRule> {
    let text_ok = |s: &str, max: usize| {
        !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
    };
    let term = term.trim();
    if !text_ok(term, MAX_TERM_CHARS) {
        return None;
    }
    let action = match action {
        "alias" if text_ok(alias.trim(), MAX_ALIAS_CHARS) => {
            RuleAction::Alias(alias.trim().to_string())
        }
        "redact" => RuleAction::Redact,
        _ => return None,
    };
    Some(MaskingRule {
        term: term.to_string(),
        action,
    })
}

pub fn load(conn: &Connection) -> rusqlite::Result<Policy> {
    let mut stmt =
        conn.prepare("SELECT term, action, alias FROM masking_rules ORDER BY term COLLATE NOCASE")?;
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
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [REQUIRE_REDACTION_KEY],
            |row| row.get(0),
        )
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

    #[test]
    fn bad_rules_are_refused() {
        assert!(parse_rule("  ", "redact", "").is_none());
        assert!(parse_rule("term", "alias", " ").is_none());
        assert!(parse_rule("term", "shout", "").is_none());
        assert!(parse_rule("line\nbreak", "redact", "").is_none());
        assert!(parse_rule(&"x".repeat(MAX_TERM_CHARS + 1), "redact", "").is_none());
    }
}
