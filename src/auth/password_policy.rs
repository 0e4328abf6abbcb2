//! What a new password must be: long enough, not absurdly long, and not one of the most
//! common passwords (nor one of them with digits or symbols tacked on, or repeated).

use std::collections::HashSet;
use std::sync::OnceLock;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Argon2 hashes any length, but a bound keeps a request from costing arbitrary work.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("use at least 12 characters")]
    TooShort,
    #[error("use at most 1024 bytes")]
    TooLong,
    #[error("this password is too common; choose another")]
    Common,
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common-passwords.txt")
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .collect()
    })
}

pub fn check_new_password(password: &str) -> Result<(), WeakPassword> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if is_common(&password.to_lowercase()) {
        return Err(WeakPassword::Common);
    }
    Ok(())
}

fn is_common(lower: &str) -> bool {
    let list = common_passwords();
    if list.contains(lower) {
        return true;
    }
    // "iloveyou1234", "password!!!!": a common word with padding at the end.
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if stem.len() >= 4 && list.contains(stem) {
        return true;
    }
    // "passwordpassword", "abcabcabcabc": one short or common unit repeated.
    if let Some(unit) = repeated_unit(lower)
        && (unit.chars().count() <= 4 || list.contains(unit))
    {
        return true;
    }
    is_digit_run(lower)
}

fn repeated_unit(s: &str) -> Option<&str> {
    (1..=s.len() / 2)
        .filter(|len| s.len().is_multiple_of(*len) && s.is_char_boundary(*len))
        .map(|len| &s[..len])
        .find(|unit| unit.repeat(s.len() / unit.len()) == s)
}

/// "123456789012", "987654321098": consecutive digits counting up or down.
fn is_digit_run(s: &str) -> bool {
    let digits: Vec<u8> = s.bytes().collect();
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let steps: Vec<u8> = digits.windows(2).map(|w| (w[1] + 10 - w[0]) % 10).collect();
    steps.iter().all(|&d| d == 1) || steps.iter().all(|&d| d == 9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_common_passwords_are_refused() {
        assert_eq!(check_new_password("short"), Err(WeakPassword::TooShort));
        assert_eq!(
            check_new_password(&"x".repeat(1025)),
            Err(WeakPassword::TooLong)
        );
        for common in [
            "password1234",
            "Password1234",
            "qwertyuiop12",
            "iloveyou1234",
            "passwordpassword",
            "abcabcabcabc",
            "aaaaaaaaaaaa",
            "123456789012",
            "987654321098",
        ] {
            assert_eq!(
                check_new_password(common),
                Err(WeakPassword::Common),
                "{common}"
            );
        }
    }

    #[test]
    fn ordinary_strong_passwords_pass() {
        for good in [
            "correct horse battery staple",
            "vN7#pQ2!xL9@wE4$",
            "tiramisu-on-a-tuesday",
        ] {
            assert_eq!(check_new_password(good), Ok(()), "{good}");
        }
    }
}
