//! Search hits' snippets: a piece of the shown record's text around the first of its words
//! that is a word of the query. Found with one Aho-Corasick pass over each text (ASCII case
//! folded), so a page of hits costs a scan of their text and no copy of it.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, MatchKind};

const SNIPPET_CHARS: usize = 200;
/// How much of the snippet comes before the word found.
const LEAD_CHARS: usize = SNIPPET_CHARS / 4;

/// The query's words, ready to be found in each hit's text.
pub struct Snippets {
    /// The query's ASCII words, matched ignoring ASCII case.
    ascii: Option<AhoCorasick>,
    /// Its other words, lowercase: matched word by word.
    other: HashSet<String>,
}

impl Snippets {
    /// Splits `query` as the search index splits text into words.
    pub fn for_query(query: &str) -> Self {
        let words: HashSet<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let (ascii, other): (Vec<String>, Vec<String>) =
            words.into_iter().partition(|w| w.is_ascii());
        let ascii = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&ascii)
            .ok()
            .filter(|_| !ascii.is_empty());
        Self {
            ascii,
            other: other.into_iter().collect(),
        }
    }

    /// Up to `SNIPPET_CHARS` characters of `text`, beginning shortly before the first of its
    /// words that is a word of the query (the start, when none is).
    pub fn cut(&self, text: &str) -> String {
        let at = self.first_word_at(text).unwrap_or(0);
        let start = text[..at].chars().count().saturating_sub(LEAD_CHARS);
        let piece: String = text.chars().skip(start).take(SNIPPET_CHARS).collect();
        match start {
            0 => piece,
            _ => format!("…{piece}"),
        }
    }

    /// The byte offset of the first whole word of `text` that is a query word.
    fn first_word_at(&self, text: &str) -> Option<usize> {
        let whole = |start: usize, end: usize| {
            let before = text[..start].chars().next_back();
            let after = text[end..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        };
        let ascii = self.ascii.as_ref().and_then(|finder| {
            finder
                .find_iter(text)
                .find(|m| whole(m.start(), m.end()))
                .map(|m| m.start())
        });
        if self.other.is_empty() {
            return ascii;
        }
        let other = text
            .split(|c: char| !c.is_alphanumeric())
            .find(|word| !word.is_ascii() && self.other.contains(&word.to_lowercase()))
            .map(|word| word.as_ptr() as usize - text.as_ptr() as usize);
        match (ascii, other) {
            (Some(a), Some(o)) => Some(a.min(o)),
            (a, o) => a.or(o),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_begins_shortly_before_the_first_whole_word_of_the_query() {
        let snippets = Snippets::for_query("Falcon ÉTÉ");
        let text = format!(
            "{} the falconry and the FALCON project, été",
            "x ".repeat(60)
        );
        // "falconry" holds the word but is another; "FALCON" is it, whatever its case.
        let at = text.find("FALCON project").unwrap();
        assert_eq!(
            snippets.cut(&text),
            format!("…{}", &text[at - LEAD_CHARS..])
        );
        assert_eq!(snippets.cut("l'été dernier"), "l'été dernier");
        let accented_first = format!("{} été then falcon", "y ".repeat(40));
        let at = accented_first.find("été").unwrap();
        assert_eq!(
            snippets.cut(&accented_first),
            format!("…{}", &accented_first[at - LEAD_CHARS..])
        );
    }

    #[test]
    fn without_the_word_the_snippet_is_the_texts_start() {
        let snippets = Snippets::for_query("falcon");
        let text = "z".repeat(300);
        assert_eq!(snippets.cut(&text), "z".repeat(SNIPPET_CHARS));
        assert_eq!(Snippets::for_query("!!!").cut("short"), "short");
        // Counted in characters, not bytes.
        let wide = "é".repeat(300);
        assert_eq!(snippets.cut(&wide).chars().count(), SNIPPET_CHARS);
    }
}
