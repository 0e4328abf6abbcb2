//! The on-disk layout of a data directory and the install file beside the databases.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::crypto::{SALT_LEN, random_bytes};
use crate::ids::WorkspaceId;

pub const CONTROL_DB: &str = "control.db";
pub const INSTALL_FILE: &str = "install.toml";
const WORKSPACES_DIR: &str = "workspaces";
const WORKSPACE_DB: &str = "workspace.db";
const LOCKS_DIR: &str = "locks";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallState {
    Empty,
    Ready,
    /// The salt is gone; a new one would make every database unreadable.
    NoInstallFile,
    /// The control database is gone; an empty one would orphan every workspace.
    NoControlDb,
}

#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn control_db(&self) -> PathBuf {
        self.root.join(CONTROL_DB)
    }

    pub fn install_file(&self) -> PathBuf {
        self.root.join(INSTALL_FILE)
    }

    pub fn workspace_dir(&self, id: WorkspaceId) -> PathBuf {
        self.root.join(WORKSPACES_DIR).join(id.to_string())
    }

    pub fn workspace_db(&self, id: WorkspaceId) -> PathBuf {
        self.workspace_dir(id).join(WORKSPACE_DB)
    }

    /// Where the scheduled jobs keep their lock files.
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join(LOCKS_DIR)
    }

    /// Creates the locks dir (0700) if it is missing.
    pub fn create_locks_dir(&self) -> Result<(), StoreError> {
        create_private_dir(&self.locks_dir())
    }

    /// Which parts of an install are present, judged by the two files that must exist
    /// together: the install file (salt) and the control database.
    pub fn state(&self) -> InstallState {
        match (self.install_file().exists(), self.control_db().exists()) {
            (true, true) => InstallState::Ready,
            (false, false) => InstallState::Empty,
            (false, true) => InstallState::NoInstallFile,
            (true, false) => InstallState::NoControlDb,
        }
    }

    /// Refuses a data dir that group or others can enter or list. A missing dir passes:
    /// `create` makes it with the right mode.
    pub fn check_permissions(&self) -> Result<(), StoreError> {
        let meta = match fs::metadata(&self.root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(&self.root)(e)),
        };
        if !meta.is_dir() {
            return Err(StoreError::NotADirectory {
                path: self.root.clone(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::UnsafeDataDir {
                path: self.root.clone(),
                mode,
            });
        }
        Ok(())
    }

    /// Creates the data dir and its workspaces dir, both 0700.
    pub fn create(&self) -> Result<(), StoreError> {
        create_private_dir(&self.root)?;
        create_private_dir(&self.root.join(WORKSPACES_DIR))
    }

    pub fn create_workspace_dir(&self, id: WorkspaceId) -> Result<(), StoreError> {
        create_private_dir(&self.workspace_dir(id))
    }

    /// Removes the workspace's directory and everything in it; a directory already gone
    /// is not an error.
    pub fn remove_workspace_dir(&self, id: WorkspaceId) -> Result<(), StoreError> {
        let dir = self.workspace_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(dir)(e)),
        }
    }
}

fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(StoreError::io(path))
}

/// Install-wide facts that must be known before the control database can be opened.
/// Not secret, but losing it makes the databases unreadable: it is backed up with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallInfo {
    pub salt: [u8; SALT_LEN],
    pub control_key_version: u32,
    /// A key rotation that has begun and not finished: nothing opens the databases until
    /// `strongbox keys rotate` finishes it.
    pub rotation: Option<PendingRotation>,
}

/// What an unfinished key rotation moves to. Written before any database is rekeyed, so
/// every key a database can be under is named by a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRotation {
    /// The control database's next version: `control_key_version + 1`.
    pub control_key_version: u32,
    /// The new master key's public fingerprint, when the rotation changes the master key.
    pub master_key_fingerprint: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallFile {
    salt: String,
    control_key_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation: Option<RotationFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationFile {
    control_key_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    master_key_fingerprint: Option<String>,
}

impl InstallInfo {
    pub fn generate() -> Self {
        Self {
            salt: *random_bytes::<SALT_LEN>(),
            control_key_version: 1,
            rotation: None,
        }
    }

    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidInstallFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let text = fs::read_to_string(path).map_err(StoreError::io(path))?;
        let file: InstallFile = toml::from_str(&text).map_err(|_| invalid("not valid TOML"))?;
        let salt = hex::decode(&file.salt)
            .ok()
            .and_then(|bytes| <[u8; SALT_LEN]>::try_from(bytes).ok())
            .ok_or_else(|| invalid("salt must be 64 hex digits"))?;
        if file.control_key_version == 0 {
            return Err(invalid("control_key_version must be at least 1"));
        }
        let rotation = match file.rotation {
            None => None,
            Some(r) if r.control_key_version != file.control_key_version + 1 => {
                return Err(invalid("a rotation moves to the next control key version"));
            }
            Some(r) => Some(PendingRotation {
                control_key_version: r.control_key_version,
                master_key_fingerprint: r.master_key_fingerprint,
            }),
        };
        Ok(Self {
            salt,
            control_key_version: file.control_key_version,
            rotation,
        })
    }

    /// Writes the file once, 0600; an existing file is never replaced.
    pub fn create(&self, path: &Path) -> Result<(), StoreError> {
        crate::private_file::create(path, self.render().as_bytes()).map_err(StoreError::io(path))
    }

    /// Replaces the file in one durable step (see `private_file::replace`): only a key
    /// rotation does this, to record where it is going and then where it arrived.
    pub fn replace(&self, path: &Path) -> Result<(), StoreError> {
        crate::private_file::replace(path, self.render().as_bytes()).map_err(StoreError::io(path))
    }

    fn render(&self) -> String {
        let rotation = self.rotation.as_ref().map(|r| RotationFile {
            control_key_version: r.control_key_version,
            master_key_fingerprint: r.master_key_fingerprint.clone(),
        });
        let body = toml::to_string(&InstallFile {
            salt: hex::encode(self.salt),
            control_key_version: self.control_key_version,
            rotation,
        })
        .expect("install file serializes");
        format!(
            "# Strongbox install file: the key-derivation salt and the control key version.\n\
             # Not secret, but the databases cannot be opened without it. Do not edit.\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_file_round_trips_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INSTALL_FILE);
        let info = InstallInfo::generate();
        info.create(&path).unwrap();
        assert_eq!(InstallInfo::load(&path).unwrap(), info);
        assert!(InstallInfo::generate().create(&path).is_err());
        assert_eq!(InstallInfo::load(&path).unwrap(), info);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_pending_rotation_round_trips_and_must_name_the_next_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INSTALL_FILE);
        let mut info = InstallInfo::generate();
        info.create(&path).unwrap();
        info.rotation = Some(PendingRotation {
            control_key_version: 2,
            master_key_fingerprint: Some("0123456789abcdef".into()),
        });
        info.replace(&path).unwrap();
        assert_eq!(InstallInfo::load(&path).unwrap(), info);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        info.rotation = Some(PendingRotation {
            control_key_version: 3,
            master_key_fingerprint: None,
        });
        info.replace(&path).unwrap();
        assert!(matches!(
            InstallInfo::load(&path),
            Err(StoreError::InvalidInstallFile { .. })
        ));
    }

    #[test]
    fn open_data_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.check_permissions().unwrap();
        data.create().unwrap();
        data.check_permissions().unwrap();
        fs::set_permissions(data.root(), fs::Permissions::from_mode(0o750)).unwrap();
        assert!(matches!(
            data.check_permissions(),
            Err(StoreError::UnsafeDataDir { mode: 0o750, .. })
        ));
    }
}
