//! Making a backup: snapshot each database, encrypt it to the recipients, sign the
//! manifest, then copy it off-site and prune what the retention lets go.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::archive::{self, Recipients, Stored};
use super::manifest::{FileEntry, FileKind, Manifest};
use super::offsite::Offsite;
use super::retention::{self, Candidate};
use super::{BackupError, BackupId, list};
use crate::audit::{Action, Actor, AuditLog, Chain, Entry};
use crate::config;
use crate::ids::WorkspaceId;
use crate::store::{Database, InstallInfo, Store, StoreError};

pub const INSTALL_NAME: &str = "install.toml.age";
pub const CONTROL_NAME: &str = "control.db.age";

pub fn workspace_name(id: WorkspaceId) -> String {
    format!("workspaces/{id}.db.age")
}

/// What a run made.
#[derive(Debug)]
pub struct BackupReport {
    pub id: BackupId,
    pub files: usize,
    /// Encrypted bytes written.
    pub bytes: u64,
    pub elapsed: Duration,
    pub offsite: bool,
    pub pruned: usize,
}

impl BackupReport {
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        self.bytes as f64 / 1_000_000.0 / secs
    }
}

/// Backs up every database into a new directory under `[backup] dir`, copies it
/// off-site, prunes old backups and records the run in the system audit log.
/// `should_stop` is asked between databases; a stopped run keeps nothing.
pub fn run(
    store: &Store,
    audit: &AuditLog,
    settings: &config::Backup,
    now: i64,
    should_stop: &dyn Fn() -> bool,
) -> Result<BackupReport, BackupError> {
    let recipients = Recipients::parse(&settings.recipients)?;
    let started = Instant::now();
    let dir = &settings.dir;
    create_private_dir(dir)?;
    remove_partials(dir)?;
    let id = BackupId::new(now);
    let partial = dir.join(format!("{id}.partial"));
    create_private_dir(&partial.join("workspaces"))?;
    let written = write_backup(
        store,
        settings,
        &recipients,
        &partial,
        &id,
        now,
        should_stop,
    );
    let manifest = match written {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let done = dir.join(id.as_str());
    fs::rename(&partial, &done).map_err(BackupError::io(&done))?;
    sync_dir(dir)?;
    let names: Vec<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    let offsite = match &settings.offsite {
        Some(target) => {
            Offsite::new(target)?.upload(&done, &id, &names)?;
            true
        }
        None => false,
    };
    let pruned = prune(store, settings, now)?;
    let report = BackupReport {
        id,
        files: manifest.files.len(),
        bytes: manifest.total_bytes(),
        elapsed: started.elapsed(),
        offsite,
        pruned,
    };
    let entry = Entry::new(Actor::system(), Action::BackupCompleted)
        .target("backup", &report.id)
        .detail("files", report.files)
        .detail("bytes", report.bytes)
        .detail("offsite", report.offsite)
        .detail("pruned", report.pruned);
    audit.record(Chain::System, entry)?;
    Ok(report)
}

fn write_backup(
    store: &Store,
    settings: &config::Backup,
    recipients: &Recipients,
    partial: &Path,
    id: &BackupId,
    now: i64,
    should_stop: &dyn Fn() -> bool,
) -> Result<Manifest, BackupError> {
    let install_file = store.layout().install_file();
    let install = InstallInfo::load(&install_file)?;
    let mut manifest = Manifest::new(id, now, &install.salt);
    manifest.control_key_version = install.control_key_version;
    manifest.recipients = settings.recipients.clone();

    let stored = archive::seal(&install_file, &partial.join(INSTALL_NAME), recipients)?;
    manifest
        .files
        .push(entry(INSTALL_NAME, FileKind::Install, None, None, stored));
    let stored = snapshot_and_seal(store.control(), partial, CONTROL_NAME, recipients)?;
    let version = Some(install.control_key_version);
    manifest.files.push(entry(
        CONTROL_NAME,
        FileKind::Control,
        None,
        version,
        stored,
    ));
    // Listed after the control snapshot, so every workspace it names has its file here.
    for key in store.workspace_keys()? {
        if should_stop() {
            return Err(BackupError::Stopped);
        }
        let db = match store.workspace(key.workspace) {
            Err(StoreError::WorkspaceNotFound) => continue,
            other => other?,
        };
        let name = workspace_name(key.workspace);
        let stored = snapshot_and_seal(&db, partial, &name, recipients)?;
        let (workspace, version) = (Some(key.workspace), Some(key.key_version));
        manifest.files.push(entry(
            &name,
            FileKind::Workspace,
            workspace,
            version,
            stored,
        ));
    }
    manifest.write(
        partial,
        &store.derive_key(super::MAC_KEY.0, super::MAC_KEY.1),
    )?;
    sync_dir(&partial.join("workspaces"))?;
    sync_dir(partial)?;
    Ok(manifest)
}

/// Snapshots the database beside its final name (still encrypted with its own key),
/// encrypts that to the recipients, and removes the snapshot.
fn snapshot_and_seal(
    db: &Database,
    partial: &Path,
    name: &str,
    recipients: &Recipients,
) -> Result<Stored, BackupError> {
    let snapshot = partial.join(format!("{name}.snapshot"));
    let sealed = db
        .snapshot_to(&snapshot)
        .map_err(BackupError::from)
        .and_then(|()| archive::seal(&snapshot, &partial.join(name), recipients));
    let removed = fs::remove_file(&snapshot).map_err(BackupError::io(&snapshot));
    let stored = sealed?;
    removed?;
    tracing::info!(file = name, bytes = stored.bytes, "backed up");
    Ok(stored)
}

fn entry(
    name: &str,
    kind: FileKind,
    workspace: Option<WorkspaceId>,
    key_version: Option<u32>,
    stored: Stored,
) -> FileEntry {
    FileEntry {
        name: name.to_string(),
        kind,
        workspace,
        key_version,
        bytes: stored.bytes,
        sha256: hex::encode(stored.sha256),
    }
}

/// Deletes the backups, here and off-site, that the retention lets go. Runs only after a
/// backup succeeded, so the newest good backup is the one just made.
fn prune(store: &Store, settings: &config::Backup, now: i64) -> Result<usize, BackupError> {
    let key = store.derive_key(super::MAC_KEY.0, super::MAC_KEY.1);
    let local: Vec<Candidate> = list::local(&settings.dir, &key)?
        .into_iter()
        .map(|listed| Candidate {
            good: listed.is_complete(&settings.dir),
            id: listed.id,
        })
        .collect();
    let mut pruned = 0;
    for id in retention::to_prune(&local, now, settings.retention_days) {
        let path = settings.dir.join(id.as_str());
        fs::remove_dir_all(&path).map_err(BackupError::io(&path))?;
        tracing::info!(backup = %id, "pruned local backup");
        pruned += 1;
    }
    if let Some(target) = &settings.offsite {
        let offsite = Offsite::new(target)?;
        let remote: Vec<Candidate> = list::offsite(&offsite, &key)?
            .into_iter()
            .map(|listed| Candidate {
                good: listed.manifest.is_ok(),
                id: listed.id,
            })
            .collect();
        for id in retention::to_prune(&remote, now, settings.retention_days) {
            offsite.delete(&id)?;
            tracing::info!(backup = %id, "pruned off-site backup");
        }
    }
    Ok(pruned)
}

/// Directories left by a run that died before it finished; they hold only encrypted data.
fn remove_partials(dir: &Path) -> Result<(), BackupError> {
    for entry in fs::read_dir(dir).map_err(BackupError::io(dir))? {
        let path = entry.map_err(BackupError::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "partial") {
            fs::remove_dir_all(&path).map_err(BackupError::io(&path))?;
        }
    }
    Ok(())
}

pub(super) fn create_private_dir(path: &Path) -> Result<(), BackupError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(BackupError::io(path))
}

pub(super) fn sync_dir(path: &Path) -> Result<(), BackupError> {
    fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(BackupError::io(path))
}
