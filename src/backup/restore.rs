//! Checking a backup and restoring it. Everything is checked (the manifest's MAC, every
//! file's size and SHA-256, and, with the age identity, every database decrypted and
//! checked through) before anything is written where the data dir goes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;

use super::archive::{self, Identities, UnsealError};
use super::drill::{self, DrillAccount};
use super::manifest::{FileKind, MANIFEST_FILE, Manifest, Unverified};
use super::offsite::Offsite;
use super::run::{INSTALL_NAME, create_private_dir, sync_dir};
use super::{BackupError, BackupId};
use crate::audit::{Action, Actor, AuditLog, Chain, Entry};
use crate::clock::{Clock, SystemClock};
use crate::crypto::{KeyPurpose, KeyRing, MasterKey};
use crate::store::{self, DataDir, InstallInfo, OpenMode, Store, StoreSettings};

/// Where a backup is read from.
pub enum Source<'a> {
    /// The local backup directory.
    Local(&'a Path),
    Offsite(&'a Offsite),
}

/// A backup whose manifest and files have been checked.
pub struct Checked {
    pub manifest: Manifest,
    dir: PathBuf,
    /// A download of an off-site backup, removed when dropped.
    _download: Option<TempDir>,
}

/// Checks the manifest's MAC with the master key in `master_key_file` and every file's
/// size and SHA-256. An off-site backup is first downloaded under `scratch`.
pub fn check(
    source: Source<'_>,
    id: &BackupId,
    master_key_file: &Path,
    scratch: &Path,
) -> Result<Checked, BackupError> {
    let (unverified, dir, download) = match source {
        Source::Local(backups) => {
            let dir = backups.join(id.as_str());
            (Unverified::read(&dir, id)?, dir, None)
        }
        Source::Offsite(offsite) => {
            let bytes = offsite.read_manifest(id)?;
            let unverified = Unverified::parse(&bytes, id)?;
            let download = scratch_dir(scratch, ".strongbox-download-")?;
            let path = download.path().to_path_buf();
            fs::write(path.join(MANIFEST_FILE), &bytes).map_err(BackupError::io(&path))?;
            (unverified, path, Some(download))
        }
    };
    let keys = key_ring(master_key_file, unverified.claimed_salt()?)?;
    let manifest = unverified.verify(&Manifest::mac_key(&keys))?;
    if let Source::Offsite(offsite) = source {
        let names: Vec<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
        offsite.download(id, &names, &dir)?;
    }
    for file in &manifest.files {
        let path = dir.join(&file.name);
        let stored = match archive::digest(&path) {
            Ok(stored) => stored,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::FileMissing {
                    id: id.to_string(),
                    file: file.name.clone(),
                });
            }
            Err(e) => return Err(BackupError::io(&path)(e)),
        };
        if stored.bytes != file.bytes || hex::encode(stored.sha256) != file.sha256 {
            return Err(BackupError::FileChanged {
                id: id.to_string(),
                file: file.name.clone(),
            });
        }
    }
    Ok(Checked {
        manifest,
        dir,
        _download: download,
    })
}

/// Decrypts every file into `into` laid out as a data dir, and checks each database
/// through with its derived key.
pub fn unpack(
    checked: &Checked,
    master_key_file: &Path,
    identities: &Identities,
    into: &Path,
) -> Result<(), BackupError> {
    let manifest = &checked.manifest;
    let id = manifest.id.clone();
    let salt = manifest
        .salt()
        .ok_or_else(|| BackupError::BadManifest(id.clone()))?;
    let keys = key_ring(master_key_file, salt)?;
    let layout = DataDir::new(into);
    for file in &manifest.files {
        let dest = match (file.kind, file.workspace) {
            (FileKind::Install, _) => layout.install_file(),
            (FileKind::Control, _) => layout.control_db(),
            (FileKind::Workspace, Some(workspace)) => {
                create_private_dir(&layout.workspace_dir(workspace))?;
                layout.workspace_db(workspace)
            }
            (FileKind::Workspace, None) => return Err(BackupError::BadManifest(id)),
        };
        archive::unseal(&checked.dir.join(&file.name), &dest, identities).map_err(|e| match e {
            UnsealError::WrongIdentity => BackupError::WrongIdentity(id.clone()),
            UnsealError::Damaged => BackupError::Undecryptable {
                id: id.clone(),
                file: file.name.clone(),
            },
            UnsealError::Io(source) => BackupError::Io {
                path: dest.clone(),
                source,
            },
        })?;
        let bad_copy = |source| BackupError::BadCopy {
            id: id.clone(),
            file: file.name.clone(),
            source,
        };
        let version = file.key_version.unwrap_or(0);
        match (file.kind, file.workspace) {
            (FileKind::Install, _) => {
                let install = InstallInfo::load(&dest).map_err(bad_copy)?;
                if install.salt != salt
                    || install.control_key_version != manifest.control_key_version
                {
                    return Err(BackupError::BadManifest(id));
                }
            }
            (FileKind::Control, _) => {
                let key = keys.derive(KeyPurpose::ControlDb, version);
                store::check_database_copy(&dest, &key, version, None).map_err(bad_copy)?;
            }
            (FileKind::Workspace, workspace) => {
                let key = keys.derive(
                    KeyPurpose::WorkspaceDb(workspace.expect("matched above")),
                    version,
                );
                store::check_database_copy(&dest, &key, version, workspace).map_err(bad_copy)?;
            }
        }
    }
    if !manifest.files.iter().any(|f| f.name == INSTALL_NAME) {
        return Err(BackupError::BadManifest(id));
    }
    Ok(())
}

/// Checks a backup all through without keeping anything: `check`, then `unpack` into a
/// scratch directory that is removed afterwards.
pub fn verify_full(
    source: Source<'_>,
    id: &BackupId,
    master_key_file: &Path,
    identities: &Identities,
    scratch: &Path,
) -> Result<Manifest, BackupError> {
    let checked = check(source, id, master_key_file, scratch)?;
    let unpacked = scratch_dir(scratch, ".strongbox-verify-")?;
    unpack(&checked, master_key_file, identities, unpacked.path())?;
    Ok(checked.manifest)
}

pub struct RestoreRequest<'a> {
    pub source: Source<'a>,
    pub id: &'a BackupId,
    pub master_key_file: &'a Path,
    pub identities: &'a Identities,
    /// The new data dir.
    pub to: &'a Path,
    /// Move a non-empty `to` aside instead of refusing.
    pub force: bool,
    /// Put the master key in the new data dir (where the server looks when no other
    /// source is configured).
    pub place_master_key: Option<PathBuf>,
    /// Add the restore drill's account to the restored copy (see `drill`).
    pub drill_account: bool,
}

pub struct Restored {
    pub manifest: Manifest,
    /// Where a non-empty target was moved to, with `force`.
    pub moved_aside: Option<PathBuf>,
    /// The drill's account, when one was asked for.
    pub drill_account: Option<DrillAccount>,
}

/// Checks the backup all through into a staging directory beside `to`, and only then
/// moves it into place and records the restore in the restored system log.
pub fn restore(request: RestoreRequest<'_>) -> Result<Restored, BackupError> {
    let to = request.to;
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&parent)?;
    let checked = check(request.source, request.id, request.master_key_file, &parent)?;
    let staging = scratch_dir(&parent, ".strongbox-restore-")?;
    unpack(
        &checked,
        request.master_key_file,
        request.identities,
        staging.path(),
    )?;
    if let Some(name) = &request.place_master_key {
        let dest = staging.path().join(name);
        fs::copy(request.master_key_file, &dest).map_err(BackupError::io(&dest))?;
    }
    let moved_aside = clear_target(to, request.id, request.force)?;
    let staged = staging.keep();
    fs::rename(&staged, to).map_err(BackupError::io(to))?;
    sync_dir(&parent)?;
    let drill_account = record_restore(
        to,
        request.master_key_file,
        &checked.manifest,
        request.drill_account,
    )?;
    Ok(Restored {
        manifest: checked.manifest,
        moved_aside,
        drill_account,
    })
}

/// Makes room for the restored data dir: an empty or missing `to` is fine; a non-empty one
/// is refused, or with `force` moved aside (never deleted).
fn clear_target(to: &Path, id: &BackupId, force: bool) -> Result<Option<PathBuf>, BackupError> {
    let empty = match fs::read_dir(to) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackupError::io(to)(e)),
    };
    if empty {
        fs::remove_dir(to).map_err(BackupError::io(to))?;
        return Ok(None);
    }
    if !force {
        return Err(BackupError::TargetNotEmpty(to.to_path_buf()));
    }
    let mut aside = to.as_os_str().to_owned();
    aside.push(format!(".before-restore-{id}"));
    let aside = PathBuf::from(aside);
    fs::rename(to, &aside).map_err(BackupError::io(&aside))?;
    Ok(Some(aside))
}

/// The restored install's system log says where it came from; then the drill's account is
/// added, if asked for.
fn record_restore(
    to: &Path,
    master_key_file: &Path,
    manifest: &Manifest,
    drill_account: bool,
) -> Result<Option<DrillAccount>, BackupError> {
    let layout = DataDir::new(to);
    let install = InstallInfo::load(&layout.install_file())?;
    let keys = KeyRing::new(MasterKey::load(master_key_file)?, install.salt);
    let settings = StoreSettings::from(&crate::config::Storage::default());
    let store = Store::open(layout, keys, &install, settings, OpenMode::Existing)?;
    let store = Arc::new(store);
    let audit = AuditLog::new(Arc::clone(&store), Arc::new(SystemClock));
    let entry = Entry::new(Actor::system(), Action::BackupRestored)
        .target("backup", &manifest.id)
        .detail("backup_created_at", manifest.created_at)
        .detail("files", manifest.files.len());
    audit.record(Chain::System, entry)?;
    drill_account
        .then(|| drill::add_account(&store, &audit, SystemClock.now()))
        .transpose()
}

fn key_ring(
    master_key_file: &Path,
    salt: [u8; crate::crypto::SALT_LEN],
) -> Result<KeyRing, BackupError> {
    Ok(KeyRing::new(MasterKey::load(master_key_file)?, salt))
}

/// An owner-only scratch directory under `parent`, removed when dropped.
fn scratch_dir(parent: &Path, prefix: &str) -> Result<TempDir, BackupError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(BackupError::io(parent))
}
