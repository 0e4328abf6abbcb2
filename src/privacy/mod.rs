//! The privacy engine, shared by the server and the desktop agent: a workspace's masking
//! rules (a term shown under a readable alias, or redacted) and PII detectors, applied to
//! text. The result is the masked text and a count per category, never the values.

mod detectors;

pub use detectors::{Category, Found, aadhaar_ok, card_ok, detect, gstin_ok, iban_ok};

use detectors::is_birth_date_field;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

/// What happens to a term a workspace names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleAction {
    /// Shown under a readable alias, which AI clients can use in queries.
    Alias(String),
    /// Replaced by `[REDACTED]`.
    Redact,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskingRule {
    pub term: String,
    pub action: RuleAction,
}

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("a masking rule's term is empty")]
    EmptyTerm,
    #[error("the masking rules could not be compiled")]
    Build(#[from] aho_corasick::BuildError),
}

/// Masked text and how many values of each kind were replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masked {
    pub text: String,
    pub counts: BTreeMap<&'static str, usize>,
}

pub const ALIAS_COUNT: &str = "TERM_ALIAS";
pub const REDACTED_COUNT: &str = "TERM_REDACTED";
const REDACTED: &str = "[REDACTED]";

/// The version of what the masker shows. Bump it with any change that can show some text
/// differently (a detector, a check, placeholder numbering): every workspace's shown index
/// is tagged with it and rebuilt when it differs, so text masked by an older binary is
/// never served. `tests::the_masking_version_names_what_the_masker_shows` pins it to the
/// masked form of a sample.
pub const MASKING_VERSION: u32 = 1;

/// A count category by its name (`EMAIL`, `TERM_ALIAS`…), as stored with counts.
pub fn count_category(name: &str) -> Option<&'static str> {
    [ALIAS_COUNT, REDACTED_COUNT]
        .into_iter()
        .chain(Category::ALL.map(Category::as_str))
        .find(|known| *known == name)
}

/// A workspace's rules, compiled once and applied to any number of texts.
pub struct Masker {
    rules: Vec<MaskingRule>,
    terms: Option<AhoCorasick>,
    /// The aliases, for counting them in text already masked.
    aliases: Option<AhoCorasick>,
}

#[derive(Clone, Copy)]
enum Kind {
    Term(usize),
    Pii(Category),
}

#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    kind: Kind,
}

impl Masker {
    pub fn new(rules: Vec<MaskingRule>) -> Result<Self, PrivacyError> {
        if rules.iter().any(|r| r.term.trim().is_empty()) {
            return Err(PrivacyError::EmptyTerm);
        }
        let terms = match rules.is_empty() {
            true => None,
            false => Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .ascii_case_insensitive(true)
                    .build(rules.iter().map(|r| r.term.as_str()))?,
            ),
        };
        let aliases: Vec<&str> = rules
            .iter()
            .filter_map(|r| match &r.action {
                RuleAction::Alias(alias) if !alias.trim().is_empty() => Some(alias.as_str()),
                _ => None,
            })
            .collect();
        // Aliases are counted as they are written into masked text: exactly.
        let aliases = match aliases.is_empty() {
            true => None,
            false => Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(aliases)?,
            ),
        };
        Ok(Self {
            rules,
            terms,
            aliases,
        })
    }

    /// Counts, per category, the masked values `shown` carries: placeholders such as
    /// `[EMAIL_1]`, `[REDACTED]` and this masker's aliases (whole words). For answers built
    /// from text already masked (an aggregate's group keys, collection and field names),
    /// whose raw text is not at hand; a raw text that happens to read like a placeholder
    /// or an alias is counted too.
    pub fn shown_counts(&self, shown: &str) -> BTreeMap<&'static str, usize> {
        let mut tally = Tally::default();
        let mut rest = shown;
        while let Some(open) = rest.find('[') {
            rest = &rest[open + 1..];
            let Some(close) = rest.find(']') else { break };
            let inside = &rest[..close];
            let category = match inside {
                "REDACTED" => Some(REDACTED_COUNT),
                _ => placeholder_category(inside),
            };
            if let Some(category) = category {
                tally.count(category);
                rest = &rest[close + 1..];
            }
        }
        if let Some(aliases) = &self.aliases {
            for m in aliases.find_iter(shown) {
                if whole_word(shown, m.start(), m.end()) {
                    tally.count(ALIAS_COUNT);
                }
            }
        }
        tally.counts
    }

    /// Replaces every term and every detected value. Equal values get equal placeholders
    /// within one text (`[EMAIL_1]` twice for the same address).
    pub fn mask(&self, text: &str) -> Masked {
        let mut tally = Tally::default();
        let text = self.mask_text(text, &mut tally);
        Masked {
            text,
            counts: tally.counts,
        }
    }

    /// Masks a JSON value: every string, every object key, and every number whose digits
    /// are personal data (a phone or card number stored as a number becomes a placeholder
    /// string), numbering placeholders across the whole value. A field named like a date of
    /// birth (`dob`, `birth_date`…) holding a date is masked even though its value carries
    /// no label of its own.
    pub fn mask_json(&self, value: &Value) -> (Value, BTreeMap<&'static str, usize>) {
        let mut tally = Tally::default();
        let masked = self.mask_value(None, value, &mut tally);
        (masked, tally.counts)
    }

    fn mask_value(&self, key: Option<&str>, value: &Value, tally: &mut Tally) -> Value {
        match value {
            Value::String(text) if key.is_some_and(|k| is_birth_date_field(k, text)) => {
                Value::String(tally.placeholder_string(Category::DateOfBirth, text.trim()))
            }
            Value::String(text) => Value::String(self.mask_text(text, tally)),
            Value::Number(number) => {
                let text = number.to_string();
                let masked = self.mask_text(&text, tally);
                match masked == text {
                    true => value.clone(),
                    false => Value::String(masked),
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.mask_value(key, item, tally))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.mask_text(k, tally), self.mask_value(Some(k), v, tally)))
                    .collect(),
            ),
            Value::Bool(_) | Value::Null => value.clone(),
        }
    }

    fn mask_text(&self, text: &str, tally: &mut Tally) -> String {
        let mut spans: Vec<Span> = self.term_spans(text);
        spans.extend(detect(text).into_iter().map(|f| Span {
            start: f.start,
            end: f.end,
            kind: Kind::Pii(f.category),
        }));
        // Leftmost first, then longest; overlapping later spans are dropped.
        spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut out = String::with_capacity(text.len());
        let mut cursor = 0;
        for span in spans {
            if span.start < cursor {
                continue;
            }
            out.push_str(&text[cursor..span.start]);
            let value = &text[span.start..span.end];
            match span.kind {
                Kind::Term(index) => match &self.rules[index].action {
                    RuleAction::Alias(alias) => {
                        out.push_str(alias);
                        tally.count(ALIAS_COUNT);
                    }
                    RuleAction::Redact => {
                        out.push_str(REDACTED);
                        tally.count(REDACTED_COUNT);
                    }
                },
                Kind::Pii(category) => tally.placeholder(category, value, &mut out),
            }
            cursor = span.end;
        }
        out.push_str(&text[cursor..]);
        out
    }

    /// Whole-word occurrences of the rules' terms.
    fn term_spans(&self, text: &str) -> Vec<Span> {
        let Some(terms) = &self.terms else {
            return Vec::new();
        };
        terms
            .find_iter(text)
            .filter(|m| whole_word(text, m.start(), m.end()))
            .map(|m| Span {
                start: m.start(),
                end: m.end(),
                kind: Kind::Term(m.pattern().as_usize()),
            })
            .collect()
    }
}

/// Whether `text[start..end]` stands as a whole word: no letter or digit right before or
/// after it.
fn whole_word(text: &str, start: usize, end: usize) -> bool {
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    !is_word(text[..start].chars().next_back()) && !is_word(text[end..].chars().next())
}

/// The category of a placeholder's inside (`EMAIL_1`), if it is one.
fn placeholder_category(inside: &str) -> Option<&'static str> {
    let (stem, number) = inside.rsplit_once('_')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Category::ALL
        .into_iter()
        .map(Category::as_str)
        .find(|known| *known == stem)
}

/// Counts per category and the placeholder number given to each value seen so far.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<&'static str, usize>,
    /// Per category, each value's number; a category's next number is one more than its
    /// count of values.
    numbers: HashMap<Category, HashMap<String, usize>>,
}

impl Tally {
    fn count(&mut self, category: &'static str) {
        *self.counts.entry(category).or_default() += 1;
    }

    /// Writes `[EMAIL_1]`, `[EMAIL_2]`… to `out`: the same value always gets the same
    /// number.
    fn placeholder(&mut self, category: Category, value: &str, out: &mut String) {
        self.count(category.as_str());
        let numbers = self.numbers.entry(category).or_default();
        let number = match numbers.get(value) {
            Some(number) => *number,
            None => {
                let next = numbers.len() + 1;
                numbers.insert(value.to_string(), next);
                next
            }
        };
        let _ = write!(out, "[{}_{number}]", category.as_str());
    }

    /// The placeholder for `value`, as a string of its own.
    fn placeholder_string(&mut self, category: Category, value: &str) -> String {
        let mut out = String::new();
        self.placeholder(category, value, &mut out);
        out
    }
}

#[cfg(test)]
mod tests;
