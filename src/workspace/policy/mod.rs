//! A workspace's privacy policy: its masking rules and whether agents must redact on the
//! device before they upload. Kept in the workspace's own database; the SQL is in `repo`.

mod repo;

pub use repo::{load, put_rule, remove_rule, set_require_redaction};

use sha2::{Digest, Sha256};

use crate::privacy::{Masker, MaskingRule, PrivacyError, RuleAction};

pub const MAX_RULES: usize = 500;
pub const MAX_TERM_CHARS: usize = 200;
pub const MAX_ALIAS_CHARS: usize = 100;

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
        hash_rules(&mut hash, &self.rules);
        hex::encode(&hash.finalize()[..8])
    }

    pub fn masker(&self) -> Result<Masker, PrivacyError> {
        Masker::new(self.rules.clone())
    }
}

/// A rule as someone typed it, checked: a trimmed term and alias of sensible length with
/// no control characters.
pub fn parse_rule(term: &str, action: &str, alias: &str) -> Option<MaskingRule> {
    use crate::text::label;
    let term = label(term, MAX_TERM_CHARS)?;
    let action = match action {
        "alias" => RuleAction::Alias(label(alias, MAX_ALIAS_CHARS)?.to_string()),
        "redact" => RuleAction::Redact,
        _ => return None,
    };
    Some(MaskingRule {
        term: term.to_string(),
        action,
    })
}

/// Feeds `rules` into `hash`, each part length-prefixed so no two rule lists hash alike.
pub(crate) fn hash_rules(hash: &mut Sha256, rules: &[MaskingRule]) {
    for rule in rules {
        let (kind, alias) = match &rule.action {
            RuleAction::Alias(alias) => ("alias", alias.as_str()),
            RuleAction::Redact => ("redact", ""),
        };
        for part in [rule.term.as_str(), kind, alias] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rules_are_refused() {
        assert!(parse_rule("  ", "redact", "").is_none());
        assert!(parse_rule("term", "alias", " ").is_none());
        assert!(parse_rule("term", "shout", "").is_none());
        assert!(parse_rule("line\nbreak", "redact", "").is_none());
        assert!(parse_rule(&"x".repeat(MAX_TERM_CHARS + 1), "redact", "").is_none());
    }
}
