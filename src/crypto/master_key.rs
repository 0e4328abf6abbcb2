use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use zeroize::Zeroizing;

use super::{MASTER_KEY_LEN, random_bytes};

pub const MASTER_KEY_FILE: &str = "master.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "master key file {path} is readable by group or others (mode {mode:04o}); it must be 0600 or stricter: chmod 600 {path}"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("master key file {path} holds {len} bytes; a master key is exactly 32 random bytes")]
    WrongLength { path: PathBuf, len: u64 },
    #[error("master key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("master key file {path} does not exist")]
    Missing { path: PathBuf },
    #[error("refusing to overwrite the existing master key at {path}")]
    AlreadyExists { path: PathBuf },
    #[error("cannot access master key file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the master key comes from, in order of precedence: an explicit path in the config,
/// a systemd credential, or the key file in the data dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    ConfigPath(PathBuf),
    SystemdCredential(PathBuf),
    DataDir(PathBuf),
}

impl KeySource {
    pub fn resolve(configured: Option<&Path>, data_dir: &Path) -> Self {
        if let Some(path) = configured {
            return Self::ConfigPath(path.to_path_buf());
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(MASTER_KEY_FILE);
            if path.exists() {
                return Self::SystemdCredential(path);
            }
        }
        Self::DataDir(data_dir.join(MASTER_KEY_FILE))
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::ConfigPath(p) | Self::SystemdCredential(p) | Self::DataDir(p) => p,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::ConfigPath(_) => "config path",
            Self::SystemdCredential(_) => "systemd credential",
            Self::DataDir(_) => "data dir",
        }
    }
}

/// The 32-byte root of every key. Zeroized on drop, never printed.
pub struct MasterKey(Zeroizing<[u8; MASTER_KEY_LEN]>);

impl MasterKey {
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(super) fn expose(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// Reads a key file after checking that only its owner can read it and that it has the
    /// exact length. The checks run on the opened handle, so the file checked is the file
    /// read; nothing is read from a file that fails them.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io_err = |source: io::Error| match source.kind() {
            io::ErrorKind::NotFound => KeyError::Missing { path: path.into() },
            _ => KeyError::Io {
                path: path.into(),
                source,
            },
        };
        // Non-blocking, so a FIFO planted at the path cannot hang start-up.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile { path: path.into() });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.into(),
                mode,
            });
        }
        if meta.len() != MASTER_KEY_LEN as u64 {
            return Err(KeyError::WrongLength {
                path: path.into(),
                len: meta.len(),
            });
        }
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        file.read_exact(key.as_mut()).map_err(io_err)?;
        Ok(Self(key))
    }

    /// Creates a new random key file with mode 0600. Never replaces an existing file.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        let key = random_bytes::<MASTER_KEY_LEN>();
        crate::private_file::create(path, key.as_ref()).map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => KeyError::AlreadyExists { path: path.into() },
            _ => KeyError::Io {
                path: path.into(),
                source,
            },
        })?;
        Ok(Self(key))
    }

    /// Writes this key over the file at `path` in one durable step, keeping the file's owner
    /// and mode: how a key rotation puts the new key where the server reads it.
    pub fn replace_file(&self, path: &Path) -> io::Result<()> {
        crate::private_file::replace(path, self.expose())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn created_key_is_owner_only_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        let created = MasterKey::create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(MasterKey::load(&path).unwrap().expose(), created.expose());
    }

    #[test]
    fn create_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        let first = MasterKey::create(&path).unwrap();
        assert!(matches!(
            MasterKey::create(&path),
            Err(KeyError::AlreadyExists { .. })
        ));
        assert_eq!(MasterKey::load(&path).unwrap().expose(), first.expose());
    }

    #[test]
    fn load_refuses_open_modes_and_wrong_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        MasterKey::create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            MasterKey::load(&path),
            Err(KeyError::TooOpen { mode: 0o640, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, [1u8; 31]).unwrap();
        assert!(matches!(
            MasterKey::load(&path),
            Err(KeyError::WrongLength { len: 31, .. })
        ));
        assert!(matches!(
            MasterKey::load(&dir.path().join("absent")),
            Err(KeyError::Missing { .. })
        ));
    }
}
