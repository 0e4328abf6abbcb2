//! Personal tokens in product words, and the token text's format.

use std::fmt;
use std::str::FromStr;

use crate::auth::UserId;
use crate::ids::{MembershipId, WorkspaceId};

pub const TOKEN_PREFIX: &str = "sbx_pat_";
/// The public id: 16 lowercase hex characters.
const ID_CHARS: usize = 16;
/// The secret: 256 bits as 43 base64url characters.
const SECRET_CHARS: usize = 43;
pub const MAX_NAME_CHARS: usize = 100;

/// A token's public half: shown in lists and logs, never enough to use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenId(String);

impl TokenId {
    pub fn new_random() -> Self {
        Self(hex::encode(*crate::crypto::random_bytes::<8>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TokenId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let ok = s.len() == ID_CHARS && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(s.to_string())).ok_or(())
    }
}

/// Splits `sbx_pat_<id>_<secret>` into its id, checking the whole shape first so junk
/// never reaches the database.
pub fn parse_token(text: &str) -> Option<TokenId> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = (rest.get(..ID_CHARS)?, rest.get(ID_CHARS..)?);
    let secret = secret.strip_prefix('_')?;
    let secret_ok = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    secret_ok.then_some(())?;
    id.parse().ok()
}

/// What a token allows, before the person's role is taken into account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read_write",
        }
    }
}

impl FromStr for Access {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "read" => Ok(Self::Read),
            "read_write" => Ok(Self::ReadWrite),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalToken {
    pub id: TokenId,
    pub workspace: WorkspaceId,
    pub user: UserId,
    /// The membership its person made it in; `None` once that membership ended. The token
    /// works only while this is the person's current membership.
    pub membership: Option<MembershipId>,
    /// The owner's email, for the list admins see.
    pub user_email: String,
    pub name: String,
    pub access: Access,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_parse() {
        let secret = "a".repeat(SECRET_CHARS);
        let good = format!("{TOKEN_PREFIX}0123456789abcdef_{secret}");
        assert_eq!(parse_token(&good).unwrap().as_str(), "0123456789abcdef");
        // The secret's alphabet includes `_` and `-`.
        assert!(
            parse_token(&format!(
                "{TOKEN_PREFIX}0123456789abcdef_{}",
                "_-".repeat(21) + "x"
            ))
            .is_some()
        );
        for bad in [
            format!("{TOKEN_PREFIX}0123456789ABCDEF_{secret}"),
            format!("{TOKEN_PREFIX}0123456789abcdef{secret}"),
            format!("{TOKEN_PREFIX}0123456789abcdef_{secret}x"),
            format!("sbx_ars_0123456789abcdef_{secret}"),
            format!("{TOKEN_PREFIX}0123456789abcdé_{secret}"),
            String::new(),
        ] {
            assert!(parse_token(&bad).is_none(), "{bad}");
        }
    }
}
