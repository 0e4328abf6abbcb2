//! PII detectors: a pattern finds candidates, a check (Luhn, mod 97, Verhoeff, GSTIN check
//! character) keeps only real ones, so order numbers and timestamps are left alone.

use std::sync::OnceLock;

use regex::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, Match, MatchKind, PatternSet, meta};

/// What kind of personal data a detector found; also the placeholder's stem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Email,
    Phone,
    Card,
    IpAddress,
    Secret,
    Iban,
    Pan,
    Aadhaar,
    Gstin,
    DateOfBirth,
}

impl Category {
    pub const ALL: [Self; 10] = [
        Self::Email,
        Self::Phone,
        Self::Card,
        Self::IpAddress,
        Self::Secret,
        Self::Iban,
        Self::Pan,
        Self::Aadhaar,
        Self::Gstin,
        Self::DateOfBirth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::Card => "CARD",
            Self::IpAddress => "IP",
            Self::Secret => "SECRET",
            Self::Iban => "IBAN",
            Self::Pan => "PAN",
            Self::Aadhaar => "AADHAAR",
            Self::Gstin => "GSTIN",
            Self::DateOfBirth => "DOB",
        }
    }
}

/// A detected value's byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub category: Category,
}

struct Detector {
    category: Category,
    pattern: &'static str,
    /// Which capture group is the value (0: the whole match).
    group: usize,
    check: fn(&str) -> bool,
}

const fn d(
    category: Category,
    pattern: &'static str,
    group: usize,
    check: fn(&str) -> bool,
) -> Detector {
    Detector {
        category,
        pattern,
        group,
        check,
    }
}

/// In priority order: where two match at the same place and length, the earlier wins.
const DETECTORS: [Detector; 11] = [
    // Letters of any script: an internationalised address (`zoë@exämple.de`) is masked too.
    d(
        Category::Email,
        r"(?i)\b[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.\p{L}{2,}",
        0,
        always,
    ),
    // Secrets before numbers, so a token's digits are not read as a card.
    d(
        Category::Secret,
        r"(?i)\b(?:bearer\s+[a-z0-9._~+/-]{20,}=*|(?:sk|pk|rk)_(?:live|test)_[a-z0-9]{16,}|gh[pousr]_[a-z0-9]{36,}|akia[0-9a-z]{16}|xox[abpr]-[a-z0-9-]{10,}|sbx_[a-z]+_[a-z0-9_-]{20,})",
        0,
        always,
    ),
    d(
        Category::Iban,
        r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        0,
        iban_ok,
    ),
    d(
        Category::Gstin,
        r"\b[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b",
        0,
        gstin_ok,
    ),
    d(
        Category::Pan,
        r"\b[A-Z]{3}[PCHABGJLFT][A-Z][0-9]{4}[A-Z]\b",
        0,
        always,
    ),
    d(
        Category::Card,
        r"\b(?:[0-9][ -]?){12,18}[0-9]\b",
        0,
        card_ok,
    ),
    d(
        Category::Aadhaar,
        r"\b[2-9][0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}\b",
        0,
        aadhaar_ok,
    ),
    d(
        Category::DateOfBirth,
        r"(?i)\b(?:dob|d\.o\.b\.?|date[ _-]of[ _-]birth|birth[ _-]?date|born)\b\W{0,3}([0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4})",
        1,
        always,
    ),
    d(
        Category::IpAddress,
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\b",
        0,
        always,
    ),
    d(
        Category::IpAddress,
        r"(?i)\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{1,4}\b|(?i)\b(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}\b",
        0,
        ipv6_ok,
    ),
    d(
        Category::Phone,
        r"(?:\+|\b00)[1-9][0-9]{0,2}[ .-]?(?:\(?[0-9]{1,4}\)?[ .-]?){2,5}[0-9]{2,4}\b|\b0[0-9]{2,4}[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}\b|\(\d{3}\) ?\d{3}-\d{4}\b",
        0,
        phone_ok,
    ),
];

/// Every detector's pattern in one automaton, so a text is scanned once whatever the
/// number of detectors: `first` finds where the next candidate starts, `every` which
/// patterns match there (each is then run alone, anchored at that position).
///
/// Word boundaries are ASCII ones: Unicode boundaries make the fast engine give up on any
/// text with a non-ASCII letter (ten times slower), and next to such a letter an ASCII
/// boundary masks more, never less.
struct Engine {
    first: meta::Regex,
    every: meta::Regex,
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let patterns: Vec<String> = DETECTORS
            .iter()
            .map(|d| d.pattern.replace(r"\b", r"(?-u:\b)"))
            .collect();
        let build = |kind| {
            meta::Regex::builder()
                .configure(meta::Config::new().match_kind(kind))
                .build_many(&patterns)
                .expect("detector patterns are valid")
        };
        Engine {
            first: build(MatchKind::LeftmostFirst),
            every: build(MatchKind::All),
        }
    })
}

/// Whether a JSON field holds a date of birth by its name alone: `dob`, `birth_date`,
/// `dateOfBirth`… holding something shaped like a date.
pub(super) fn is_birth_date_field(key: &str, value: &str) -> bool {
    static LABEL: OnceLock<Regex> = OnceLock::new();
    static DATE: OnceLock<Regex> = OnceLock::new();
    let label = LABEL.get_or_init(|| {
        Regex::new(r"(?i)^(?:dob|d\.o\.b\.?|date[ _-]?of[ _-]?birth|birth[ _-]?date|birthday|born(?:[ _-]?on)?)$")
            .expect("label pattern is valid")
    });
    let date = DATE.get_or_init(|| {
        Regex::new(r"^[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}$").expect("date pattern is valid")
    });
    label.is_match(key.trim()) && date.is_match(value.trim())
}

fn always(_: &str) -> bool {
    true
}

/// The decimal digits of `value`, in order. Checks run on every candidate, so nothing here
/// allocates.
fn digits(value: &str) -> impl DoubleEndedIterator<Item = u32> + Clone + '_ {
    value
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
}

/// Payment cards: 13 to 19 digits passing the Luhn check.
pub fn card_ok(value: &str) -> bool {
    if !(13..=19).contains(&digits(value).count()) {
        return false;
    }
    let sum: u32 = digits(value)
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN: country, check digits, and the ISO 7064 mod-97 check.
pub fn iban_ok(value: &str) -> bool {
    let compact = value.chars().filter(|c| !c.is_whitespace());
    if !(15..=34).contains(&compact.clone().count()) {
        return false;
    }
    // The first four characters move to the end; letters count as 10 to 35.
    let rearranged = compact.clone().skip(4).chain(compact.take(4));
    let mut remainder: u32 = 0;
    for c in rearranged {
        let Some(value) = c.to_digit(36) else {
            return false;
        };
        let shift = if value < 10 { 10 } else { 100 };
        remainder = (remainder * shift + value) % 97;
    }
    remainder == 1
}

/// Aadhaar: 12 digits, not starting with 0 or 1, passing the Verhoeff check.
pub fn aadhaar_ok(value: &str) -> bool {
    const D: [[usize; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[usize; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if digits(value).count() != 12 || digits(value).next().is_none_or(|first| first < 2) {
        return false;
    }
    let check = digits(value)
        .rev()
        .enumerate()
        .fold(0, |c, (i, d)| D[c][P[i % 8][d as usize]]);
    check == 0
}

/// GSTIN: the 15th character is the check character over the first 14 (base 36).
pub fn gstin_ok(value: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let bytes = value.as_bytes();
    if bytes.len() != 15 {
        return false;
    }
    let mut sum = 0usize;
    for (i, b) in bytes[..14].iter().enumerate() {
        let Some(code) = ALPHABET.iter().position(|a| a == b) else {
            return false;
        };
        let product = code * if i % 2 == 0 { 1 } else { 2 };
        sum += product / 36 + product % 36;
    }
    let check = (36 - sum % 36) % 36;
    bytes[14] == ALPHABET[check]
}

fn ipv6_ok(value: &str) -> bool {
    value.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Phones: 7 to 15 digits (E.164), and not a card-length run that failed Luhn.
fn phone_ok(value: &str) -> bool {
    (7..=15).contains(&digits(value).count())
}

/// Every detected value, non-overlapping: where candidates overlap, the one starting first
/// (then the longer) wins, and a candidate failing its check leaves room for the others.
pub fn detect(text: &str) -> Vec<Found> {
    let engine = engine();
    let mut at_start = PatternSet::new(DETECTORS.len());
    let mut captures = engine.first.create_captures();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(candidate) = engine.first.search(&Input::new(text).range(at..)) {
        let start = candidate.start();
        at_start.clear();
        engine.every.which_overlapping_matches(
            &Input::new(text).range(start..).anchored(Anchored::Yes),
            &mut at_start,
        );
        match best_at(engine, &at_start, &candidate, &mut captures, text) {
            Some((value, end)) => {
                found.push(value);
                at = end;
            }
            // Nothing real starts here: look again one character on.
            None => at = start + text[start..].chars().next().map_or(1, char::len_utf8),
        }
        if at > text.len() {
            break;
        }
    }
    found
}

/// The longest value that one of the `matching` detectors finds starting exactly where
/// `candidate` does and that passes its check, and where its whole match ends.
fn best_at(
    engine: &Engine,
    matching: &PatternSet,
    candidate: &Match,
    captures: &mut Captures,
    text: &str,
) -> Option<(Found, usize)> {
    let start = candidate.start();
    let mut best: Option<(Found, usize)> = None;
    for pattern in matching.iter() {
        let detector = &DETECTORS[pattern.as_usize()];
        let input = Input::new(text)
            .range(start..)
            .anchored(Anchored::Pattern(pattern));
        let engine = &engine.first;
        let (value, end) = match detector.group {
            // The search that found the candidate already ran this pattern from here.
            0 if pattern == candidate.pattern() => (candidate.range(), candidate.end()),
            0 => {
                let Some(m) = engine.search(&input) else {
                    continue;
                };
                (m.range(), m.end())
            }
            group => {
                engine.search_captures(&input, captures);
                let (Some(whole), Some(value)) = (captures.get_match(), captures.get_group(group))
                else {
                    continue;
                };
                (value.range(), whole.end())
            }
        };
        let longer = best.is_none_or(|(b, _)| value.end > b.end);
        if longer && (detector.check)(&text[value.clone()]) {
            best = Some((
                Found {
                    start: value.start,
                    end: value.end,
                    category: detector.category,
                },
                end,
            ));
        }
    }
    best
}
