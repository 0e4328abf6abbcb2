//! Listing backups, here and off-site, with what their manifests say.

use std::fs;
use std::path::Path;

use super::manifest::{Manifest, Unverified};
use super::offsite::Offsite;
use super::{BackupError, BackupId};
use crate::crypto::DerivedKey;

/// One backup and its manifest, or why the manifest cannot be trusted.
pub struct Listed {
    pub id: BackupId,
    pub manifest: Result<Manifest, BackupError>,
}

impl Listed {
    /// The manifest verifies and every file it names is in `dir` at its recorded size.
    /// (`backup verify` also checks every byte.)
    pub fn is_complete(&self, dir: &Path) -> bool {
        let Ok(manifest) = &self.manifest else {
            return false;
        };
        let backup = dir.join(self.id.as_str());
        manifest
            .files
            .iter()
            .all(|file| fs::metadata(backup.join(&file.name)).is_ok_and(|m| m.len() == file.bytes))
    }
}

/// The backups in the local backup directory, oldest first. A missing directory holds
/// none.
pub fn local(dir: &Path, mac_key: &DerivedKey) -> Result<Vec<Listed>, BackupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io(dir)(e)),
    };
    let mut listed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(BackupError::io(dir))?;
        let Some(Ok(id)) = entry.file_name().to_str().map(str::parse::<BackupId>) else {
            continue;
        };
        let manifest =
            Unverified::read(&entry.path(), &id).and_then(|unverified| unverified.verify(mac_key));
        listed.push(Listed { id, manifest });
    }
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(listed)
}

/// The backups off-site, oldest first.
pub fn offsite(offsite: &Offsite, mac_key: &DerivedKey) -> Result<Vec<Listed>, BackupError> {
    let mut listed = Vec::new();
    for id in offsite.list()? {
        let manifest = offsite
            .read_manifest(&id)
            .and_then(|bytes| Unverified::parse(&bytes, &id))
            .and_then(|unverified| unverified.verify(mac_key));
        listed.push(Listed { id, manifest });
    }
    Ok(listed)
}
