//! The manifest: what a backup holds, with a MAC under a key derived from the master key,
//! so a changed manifest (or a backup made under another master key) is refused.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{BackupError, BackupId};
use crate::crypto::{DerivedKey, KeyRing, SALT_LEN};
use crate::ids::WorkspaceId;

pub const MANIFEST_FILE: &str = "manifest.json";
const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    pub app_version: String,
    /// The install's key-derivation salt (not secret): with the master key it gives the
    /// MAC key and every database key.
    pub salt: String,
    pub control_key_version: u32,
    /// The age recipients the files are encrypted to.
    pub recipients: Vec<String>,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path inside the backup: `install.toml.age`, `control.db.age`,
    /// `workspaces/<id>.db.age`.
    pub name: String,
    pub kind: FileKind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workspace: Option<WorkspaceId>,
    /// The key version of the database inside.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key_version: Option<u32>,
    /// Size of the encrypted file.
    pub bytes: u64,
    /// SHA-256 of the encrypted file, hex.
    pub sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Install,
    Control,
    Workspace,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    manifest: Manifest,
    mac: String,
}

/// A manifest as read from disk, before its MAC is checked.
pub struct Unverified {
    manifest: Manifest,
    mac: Vec<u8>,
}

impl Manifest {
    pub fn new(id: &BackupId, created_at: i64, salt: &[u8; SALT_LEN]) -> Self {
        Self {
            format: FORMAT,
            id: id.to_string(),
            created_at,
            app_version: env!("CARGO_PKG_VERSION").to_string(),
            salt: hex::encode(salt),
            control_key_version: 0,
            recipients: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn salt(&self) -> Option<[u8; SALT_LEN]> {
        hex::decode(&self.salt).ok()?.try_into().ok()
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Writes `manifest.json` into `dir`, signed with `key`, and syncs it.
    pub fn write(&self, dir: &Path, key: &DerivedKey) -> Result<(), BackupError> {
        let signed = Signed {
            manifest: self.clone(),
            mac: hex::encode(mac(self, key).finalize().into_bytes()),
        };
        let path = dir.join(MANIFEST_FILE);
        let body = serde_json::to_vec_pretty(&signed).expect("a manifest serializes");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(BackupError::io(&path))?;
        file.write_all(&body)
            .and_then(|()| file.sync_all())
            .map_err(BackupError::io(&path))
    }

    /// The MAC key for manifests under this master key and salt.
    pub fn mac_key(keys: &KeyRing) -> DerivedKey {
        keys.derive(super::MAC_KEY.0, super::MAC_KEY.1)
    }
}

impl Unverified {
    pub fn parse(bytes: &[u8], id: &BackupId) -> Result<Self, BackupError> {
        let bad = || BackupError::BadManifest(id.to_string());
        let signed: Signed = serde_json::from_slice(bytes).map_err(|_| bad())?;
        let mac = hex::decode(&signed.mac).map_err(|_| bad())?;
        if signed.manifest.id != id.as_str() || signed.manifest.format != FORMAT {
            return Err(bad());
        }
        Ok(Self {
            manifest: signed.manifest,
            mac,
        })
    }

    pub fn read(dir: &Path, id: &BackupId) -> Result<Self, BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::NotFound(id.to_string()));
            }
            Err(e) => return Err(BackupError::io(&path)(e)),
        };
        Self::parse(&bytes, id)
    }

    /// The salt the MAC key is derived with; untrusted until `verify` passes.
    pub fn claimed_salt(&self) -> Result<[u8; SALT_LEN], BackupError> {
        self.manifest
            .salt()
            .ok_or_else(|| BackupError::BadManifest(self.manifest.id.clone()))
    }

    /// Checks the MAC in constant time.
    pub fn verify(self, key: &DerivedKey) -> Result<Manifest, BackupError> {
        match mac(&self.manifest, key).verify_slice(&self.mac) {
            Ok(()) => Ok(self.manifest),
            Err(_) => Err(BackupError::ManifestMac(self.manifest.id)),
        }
    }
}

fn mac(manifest: &Manifest, key: &DerivedKey) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes a key of any length");
    mac.update(b"strongbox-backup-manifest-v1");
    mac.update(&serde_json::to_vec(manifest).expect("a manifest serializes"));
    mac
}
