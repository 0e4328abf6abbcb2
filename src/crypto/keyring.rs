use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::MasterKey;
use crate::ids::WorkspaceId;

pub const MASTER_KEY_LEN: usize = 32;
pub const SALT_LEN: usize = 32;
const DERIVED_KEY_LEN: usize = 32;

/// What a derived key is for. Each purpose gets its own HKDF `info`, so no two uses can
/// ever share key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPurpose {
    ControlDb,
    WorkspaceDb(WorkspaceId),
    AgentJwt,
    BackupManifestMac,
    CsrfToken,
    /// Signs audit-log heads and sweep anchors.
    AuditMac,
    /// Binds MCP cursors to the credential and workspace they were given to.
    McpCursor,
}

impl KeyPurpose {
    fn name(&self) -> &'static str {
        match self {
            Self::ControlDb => "control-db",
            Self::WorkspaceDb(_) => "workspace-db",
            Self::AgentJwt => "agent-jwt",
            Self::BackupManifestMac => "backup-manifest-mac",
            Self::CsrfToken => "csrf-token",
            Self::AuditMac => "audit-mac",
            Self::McpCursor => "mcp-cursor",
        }
    }

    fn subject(&self) -> String {
        match self {
            Self::WorkspaceDb(id) => id.to_string(),
            Self::ControlDb => "control".into(),
            Self::AgentJwt => "signing".into(),
            Self::BackupManifestMac => "manifest".into(),
            Self::CsrfToken => "forms".into(),
            Self::AuditMac => "chains".into(),
            Self::McpCursor => "pages".into(),
        }
    }

    /// The key id, which is also the HKDF `info` string: `strongbox/<purpose>/<id>/v<n>`.
    /// It names the key without revealing anything about it, so it may be logged.
    pub fn key_id(&self, version: u32) -> String {
        format!("strongbox/{}/{}/v{version}", self.name(), self.subject())
    }
}

/// The master key together with the per-install salt: everything needed to derive keys.
pub struct KeyRing {
    master: MasterKey,
    salt: [u8; SALT_LEN],
}

impl KeyRing {
    pub fn new(master: MasterKey, salt: [u8; SALT_LEN]) -> Self {
        Self { master, salt }
    }

    pub fn derive(&self, purpose: KeyPurpose, version: u32) -> DerivedKey {
        let hk = Hkdf::<Sha256>::new(Some(&self.salt), self.master.expose());
        let mut okm = Zeroizing::new([0u8; DERIVED_KEY_LEN]);
        // expand only fails for outputs longer than 255 hash lengths.
        hk.expand(purpose.key_id(version).as_bytes(), okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        DerivedKey(okm)
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    /// A short public fingerprint that tells operators which master key is loaded.
    /// It is derived under its own info string, so it is not a hash of the key itself.
    pub fn fingerprint(&self) -> String {
        let hk = Hkdf::<Sha256>::new(Some(&self.salt), self.master.expose());
        let mut out = [0u8; 8];
        hk.expand(b"strongbox/fingerprint/master/v1", &mut out)
            .expect("8 bytes is a valid HKDF-SHA256 output length");
        hex::encode(out)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyRing([redacted])")
    }
}

/// A 256-bit key derived for one purpose. Zeroized on drop, never printed.
pub struct DerivedKey(Zeroizing<[u8; DERIVED_KEY_LEN]>);

impl DerivedKey {
    pub fn expose(&self) -> &[u8; DERIVED_KEY_LEN] {
        &self.0
    }

    /// The SQLCipher raw-key literal (`x'…'`), which skips PBKDF2 on open.
    pub fn sqlcipher_raw_key(&self) -> Zeroizing<String> {
        let hex = self.hex();
        let mut literal = Zeroizing::new(String::with_capacity(hex.len() + 3));
        literal.push_str("x'");
        literal.push_str(std::str::from_utf8(hex.as_ref()).expect("hex is ASCII"));
        literal.push('\'');
        literal
    }

    /// The whole `PRAGMA key` statement, built in one zeroizing buffer so no plain copy
    /// of the key is left behind in freed memory.
    pub fn sqlcipher_key_pragma(&self) -> Zeroizing<String> {
        self.sqlcipher_pragma("key")
    }

    /// `PRAGMA rekey`, which re-encrypts an open database under this key: the same raw
    /// form, so the new key skips PBKDF2 too.
    pub fn sqlcipher_rekey_pragma(&self) -> Zeroizing<String> {
        self.sqlcipher_pragma("rekey")
    }

    /// `PRAGMA <name> = "x'…'";` in a buffer sized up front, so it never reallocates and
    /// leaves a copy behind.
    fn sqlcipher_pragma(&self, name: &str) -> Zeroizing<String> {
        const PREFIX: &str = "PRAGMA ";
        const EQUALS: &str = " = \"";
        const SUFFIX: &str = "\";";
        let literal = self.sqlcipher_raw_key();
        let mut pragma = Zeroizing::new(String::with_capacity(
            PREFIX.len() + name.len() + EQUALS.len() + literal.len() + SUFFIX.len(),
        ));
        for part in [PREFIX, name, EQUALS, &literal, SUFFIX] {
            pragma.push_str(part);
        }
        pragma
    }

    fn hex(&self) -> Zeroizing<[u8; DERIVED_KEY_LEN * 2]> {
        let mut hex = Zeroizing::new([0u8; DERIVED_KEY_LEN * 2]);
        hex::encode_to_slice(&self.0[..], &mut hex[..])
            .expect("the buffer is exactly twice the key length");
        hex
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(master: u8, salt: u8) -> KeyRing {
        KeyRing::new(MasterKey::from_bytes([master; 32]), [salt; 32])
    }

    #[test]
    fn every_purpose_and_version_gets_a_distinct_key() {
        let ring = ring(7, 9);
        let a = WorkspaceId::new_random();
        let b = WorkspaceId::new_random();
        let keys = [
            ring.derive(KeyPurpose::ControlDb, 1),
            ring.derive(KeyPurpose::ControlDb, 2),
            ring.derive(KeyPurpose::WorkspaceDb(a), 1),
            ring.derive(KeyPurpose::WorkspaceDb(b), 1),
            ring.derive(KeyPurpose::AgentJwt, 1),
            ring.derive(KeyPurpose::BackupManifestMac, 1),
        ];
        for (i, x) in keys.iter().enumerate() {
            for y in &keys[i + 1..] {
                assert_ne!(x.expose(), y.expose());
            }
        }
    }

    #[test]
    fn derivation_depends_on_master_key_and_salt() {
        let base = ring(1, 1).derive(KeyPurpose::ControlDb, 1);
        assert_eq!(
            base.expose(),
            ring(1, 1).derive(KeyPurpose::ControlDb, 1).expose()
        );
        assert_ne!(
            base.expose(),
            ring(2, 1).derive(KeyPurpose::ControlDb, 1).expose()
        );
        assert_ne!(
            base.expose(),
            ring(1, 2).derive(KeyPurpose::ControlDb, 1).expose()
        );
    }

    #[test]
    fn debug_output_never_shows_key_material() {
        let key = ring(0xab, 0xcd).derive(KeyPurpose::AgentJwt, 1);
        let hex = hex::encode(key.expose());
        assert!(!format!("{key:?}").contains(&hex));
        assert_eq!(format!("{:?}", ring(0xab, 0xcd)), "KeyRing([redacted])");
    }

    #[test]
    fn sqlcipher_forms_carry_the_key_as_hex() {
        let key = ring(3, 4).derive(KeyPurpose::ControlDb, 1);
        let hex = hex::encode(key.expose());
        assert_eq!(*key.sqlcipher_raw_key(), format!("x'{hex}'"));
        assert_eq!(
            *key.sqlcipher_key_pragma(),
            format!("PRAGMA key = \"x'{hex}'\";")
        );
        assert_eq!(
            *key.sqlcipher_rekey_pragma(),
            format!("PRAGMA rekey = \"x'{hex}'\";")
        );
    }

    #[test]
    fn key_ids_follow_the_documented_shape() {
        let id: WorkspaceId = "6f1c2b1e-0000-4000-8000-000000000001".parse().unwrap();
        assert_eq!(
            KeyPurpose::WorkspaceDb(id).key_id(3),
            "strongbox/workspace-db/6f1c2b1e-0000-4000-8000-000000000001/v3"
        );
        assert_eq!(
            KeyPurpose::ControlDb.key_id(1),
            "strongbox/control-db/control/v1"
        );
    }
}
