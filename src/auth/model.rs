//! Accounts, sessions and one-time links, in product words.

use std::fmt;
use std::str::FromStr;

use crate::crypto::token::SecretHash;

pub use crate::ids::UserId;

/// An email address, trimmed and lowercased when built, so one mailbox is one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

pub const MAX_EMAIL_BYTES: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Option<Self> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= MAX_EMAIL_BYTES
            && validator::ValidateEmail::validate_email(&email)
            && !email.contains(['\r', '\n']);
        valid.then_some(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::parse(s).ok_or(())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    /// False for an account made by a provider sign-in until its owner sets a password;
    /// `password_hash` then holds the hash of a random value nobody knows.
    pub has_password: bool,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    /// Set while the account is closing: deletion happens at this time unless cancelled.
    pub closes_at: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStage {
    /// The password was right; the second factor is still owed.
    MfaPending,
    Active,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MfaPending => "mfa_pending",
            Self::Active => "active",
        }
    }
}

impl FromStr for SessionStage {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "mfa_pending" => Ok(Self::MfaPending),
            "active" => Ok(Self::Active),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub id_hash: SecretHash,
    /// Fixed for the session's life; CSRF tokens are bound to it.
    pub csrf_anchor: [u8; 32],
    pub user_id: UserId,
    pub stage: SessionStage,
    pub created_at: i64,
    pub rotated_at: i64,
    pub last_seen_at: i64,
    pub ip: String,
    pub user_agent: String,
}

/// What a one-time link is for; each kind has its own prefix and lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    Setup,
    Verify,
    Reset,
    Magic,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::Verify => "verify",
            Self::Reset => "reset",
            Self::Magic => "magic",
        }
    }

    /// The token prefix, so a reset token can never be used as a magic link.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Setup => "sbx_setup_",
            Self::Verify => "sbx_verify_",
            Self::Reset => "sbx_reset_",
            Self::Magic => "sbx_magic_",
        }
    }

    /// Email links last 15 minutes; the setup link, printed to the operator, a day.
    pub fn ttl_seconds(self) -> i64 {
        match self {
            Self::Setup => 24 * 60 * 60,
            Self::Verify | Self::Reset | Self::Magic => 15 * 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "no-at-sign",
            "a@b\r\nBcc: x@y.z",
            &format!("{}@x.io", "a".repeat(260)),
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?}");
        }
    }
}
