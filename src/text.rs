//! Short labels people type: names of workspaces, devices, tokens and clients, masking
//! terms. One rule for all of them.

/// `raw` trimmed, if it is 1 to `max_chars` characters with no control characters.
pub fn label(raw: &str, max_chars: usize) -> Option<&str> {
    let text = raw.trim();
    let ok = !text.is_empty()
        && text.chars().count() <= max_chars
        && !text.chars().any(char::is_control);
    ok.then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(label("  Front desk ", 20), Some("Front desk"));
        assert_eq!(label("   ", 20), None);
        assert_eq!(label("abc", 2), None);
        assert_eq!(
            label("é".repeat(3).as_str(), 3),
            Some("ééé"),
            "characters, not bytes"
        );
        assert_eq!(label("line\nbreak", 20), None);
    }
}
