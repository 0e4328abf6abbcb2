//! Backup ids: the UTC time the backup was made and a random suffix, so they sort by age
//! and can name a directory or an object prefix safely.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;

use super::BackupError;

const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupId(String);

impl BackupId {
    pub fn new(now: i64) -> Self {
        let time = crate::clock::format_utc(now, TIME_FORMAT);
        let suffix = hex::encode(*crate::crypto::random_bytes::<3>());
        Self(format!("{time}-{suffix}"))
    }

    /// When the backup was made, in Unix seconds.
    pub fn created_at(&self) -> i64 {
        let time = &self.0[..self.0.len() - 7];
        NaiveDateTime::parse_from_str(time, TIME_FORMAT)
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BackupId {
    type Err = BackupError;

    /// Only what `new` makes: `YYYYMMDDTHHMMSSZ-xxxxxx`, lowercase hex.
    fn from_str(s: &str) -> Result<Self, BackupError> {
        let (time, suffix) = s.split_once('-').ok_or(BackupError::BadId)?;
        let time_ok = NaiveDateTime::parse_from_str(time, TIME_FORMAT).is_ok() && time.len() == 16;
        let suffix_ok = suffix.len() == 6
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match time_ok && suffix_ok {
            true => Ok(Self(s.to_string())),
            false => Err(BackupError::BadId),
        }
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_time_and_only_well_formed_ones_parse() {
        let id = BackupId::new(1_700_000_000);
        assert!(id.as_str().starts_with("20231114T221320Z-"), "{id}");
        assert_eq!(id.created_at(), 1_700_000_000);
        assert_eq!(id.as_str().parse::<BackupId>().unwrap(), id);
        for bad in [
            "",
            "../../etc",
            "20231114T221320Z",
            "20231114T221320Z-ABCDEF",
            "20231114T221320Z-1234567",
            "20231314T221320Z-123456",
            "20231114T221320Z-12345/",
        ] {
            assert!(bad.parse::<BackupId>().is_err(), "{bad}");
        }
    }
}
