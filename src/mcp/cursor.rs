//! Page cursors: the offset of the next page, sealed with an HMAC over the credential, the
//! workspace and the tool it was given for. A cursor is opaque to the client, refused from
//! any other token, workspace or tool, and says nothing about masked values: it is a
//! function of those three and the offset alone, so a right and a wrong guess that reach
//! the same page get the same cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Principal;

/// Bytes of the MAC kept in a cursor: 128 bits, beyond guessing.
const TAG_BYTES: usize = 16;
const OFFSET_BYTES: usize = 4;
/// The deepest page a cursor may point at.
pub const MAX_OFFSET: u32 = 100_000;

#[derive(Clone)]
pub struct Cursors {
    key: Hmac<Sha256>,
}

impl Cursors {
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: Hmac::new_from_slice(key).expect("HMAC accepts any key length"),
        }
    }

    fn tag(&self, principal: &Principal, tool: &str, offset: [u8; OFFSET_BYTES]) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        for part in [
            principal.credential.as_bytes(),
            principal.workspace.to_string().as_bytes(),
            tool.as_bytes(),
        ] {
            // Length-prefixed, so no two different triples feed the MAC the same bytes.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&offset);
        mac
    }

    /// The cursor for the page at `offset` of `tool`'s answers to `principal`.
    pub fn seal(&self, principal: &Principal, tool: &str, offset: u32) -> String {
        let offset = offset.to_be_bytes();
        let tag = self.tag(principal, tool, offset).finalize().into_bytes();
        let mut sealed = offset.to_vec();
        sealed.extend_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The offset a cursor points at, if this server sealed it for this principal and tool.
    pub fn open(&self, principal: &Principal, tool: &str, cursor: &str) -> Option<u32> {
        let sealed = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        if sealed.len() != OFFSET_BYTES + TAG_BYTES {
            return None;
        }
        let (offset, tag) = sealed.split_at(OFFSET_BYTES);
        let offset: [u8; OFFSET_BYTES] = offset.try_into().ok()?;
        self.tag(principal, tool, offset)
            .verify_truncated_left(tag)
            .ok()?;
        Some(u32::from_be_bytes(offset)).filter(|o| *o <= MAX_OFFSET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserId;
    use crate::ids::WorkspaceId;

    fn principal(credential: &str) -> Principal {
        Principal {
            workspace: WorkspaceId::new_random(),
            user: UserId::new_random(),
            credential: credential.into(),
        }
    }

    #[test]
    fn a_cursor_opens_only_for_the_principal_workspace_and_tool_it_was_sealed_for() {
        let cursors = Cursors::new(b"test key");
        let alice = principal("token:1");
        let sealed = cursors.seal(&alice, "search", 20);
        assert_eq!(cursors.open(&alice, "search", &sealed), Some(20));
        assert_eq!(cursors.open(&alice, "query", &sealed), None);
        let other_token = Principal {
            credential: "token:2".into(),
            ..alice.clone()
        };
        assert_eq!(cursors.open(&other_token, "search", &sealed), None);
        let other_workspace = Principal {
            workspace: WorkspaceId::new_random(),
            ..alice.clone()
        };
        assert_eq!(cursors.open(&other_workspace, "search", &sealed), None);
        assert_eq!(
            Cursors::new(b"other key").open(&alice, "search", &sealed),
            None
        );
    }

    #[test]
    fn a_changed_or_made_up_cursor_is_refused() {
        let cursors = Cursors::new(b"test key");
        let alice = principal("token:1");
        let sealed = cursors.seal(&alice, "search", 20);
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        bytes[3] = 40;
        assert_eq!(
            cursors.open(&alice, "search", &URL_SAFE_NO_PAD.encode(&bytes)),
            None
        );
        for made_up in ["20", "", "!!!", &sealed[..sealed.len() - 2]] {
            assert_eq!(cursors.open(&alice, "search", made_up), None, "{made_up}");
        }
    }

    #[test]
    fn the_same_page_gets_the_same_cursor() {
        let cursors = Cursors::new(b"test key");
        let alice = principal("token:1");
        assert_eq!(
            cursors.seal(&alice, "search", 10),
            cursors.seal(&alice, "search", 10)
        );
        assert_ne!(
            cursors.seal(&alice, "search", 10),
            cursors.seal(&alice, "search", 20)
        );
    }
}
