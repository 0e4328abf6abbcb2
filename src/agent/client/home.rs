//! Where the agent keeps what it must remember between runs: which server and agent it is
//! (`agent.json`), its refresh secret (the OS credential store on Windows, else a 0600
//! file), and one sync state file per folder. Files are replaced atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

const PAIRING_FILE: &str = "agent.json";
const LOCK_FILE: &str = "agent.lock";
#[cfg(not(windows))]
const SECRET_FILE: &str = "refresh.secret";

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("this device is not paired yet: run `strongbox-agent pair` first")]
    NotPaired,
    #[error("no configuration directory could be found; pass --home")]
    NoConfigDir,
    #[error("the agent's files in {path} cannot be read or written")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the agent's file {0} is damaged")]
    Damaged(PathBuf),
    #[error("another strongbox-agent is using {0}; wait for it or stop it")]
    Busy(PathBuf),
    #[cfg(windows)]
    #[error("the Windows credential store refused the request")]
    Keyring(#[from] keyring::Error),
}

/// What pairing established; not secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    pub server: Url,
    pub agent_id: String,
    pub workspace_id: String,
}

/// The home's lock; released when dropped (or when the process ends).
pub struct HomeLock {
    _file: File,
}

pub struct AgentHome {
    dir: PathBuf,
}

impl AgentHome {
    /// `dir`, or the user's configuration directory.
    pub fn new(dir: Option<PathBuf>) -> Result<Self, HomeError> {
        let dir = match dir {
            Some(dir) => dir,
            None => dirs::config_dir()
                .ok_or(HomeError::NoConfigDir)?
                .join("strongbox-agent"),
        };
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pairing(&self) -> Result<Pairing, HomeError> {
        let path = self.dir.join(PAIRING_FILE);
        let text = match fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(HomeError::NotPaired),
            other => other.map_err(|source| io_error(&path, source))?,
        };
        serde_json::from_str(&text).map_err(|_| HomeError::Damaged(path))
    }

    /// Saves the pairing and its first refresh secret.
    pub fn save_pairing(&self, pairing: &Pairing, refresh_secret: &str) -> Result<(), HomeError> {
        self.save_refresh_secret(pairing, refresh_secret)?;
        let json =
            serde_json::to_vec_pretty(pairing).map_err(|_| HomeError::Damaged(self.dir.clone()))?;
        self.write_private(PAIRING_FILE, &json)
    }

    #[cfg(not(windows))]
    pub fn refresh_secret(&self, _pairing: &Pairing) -> Result<Zeroizing<String>, HomeError> {
        let path = self.dir.join(SECRET_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Zeroizing::new(text.trim().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(HomeError::NotPaired),
            Err(source) => Err(io_error(&path, source)),
        }
    }

    /// Replaces the refresh secret; called the moment the server hands out a new one.
    #[cfg(not(windows))]
    pub fn save_refresh_secret(&self, _pairing: &Pairing, secret: &str) -> Result<(), HomeError> {
        self.write_private(SECRET_FILE, secret.as_bytes())
    }

    #[cfg(windows)]
    pub fn refresh_secret(&self, pairing: &Pairing) -> Result<Zeroizing<String>, HomeError> {
        match credential(pairing)?.get_password() {
            Ok(secret) => Ok(Zeroizing::new(secret)),
            Err(keyring::Error::NoEntry) => Err(HomeError::NotPaired),
            Err(e) => Err(e.into()),
        }
    }

    #[cfg(windows)]
    pub fn save_refresh_secret(&self, pairing: &Pairing, secret: &str) -> Result<(), HomeError> {
        Ok(credential(pairing)?.set_password(secret)?)
    }

    /// Holds the home for this process until the lock is dropped: two agents rotating the
    /// same refresh secret would look like a stolen copy to the server.
    pub fn lock(&self) -> Result<HomeLock, HomeError> {
        create_private_dir(&self.dir).map_err(|source| io_error(&self.dir, source))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| io_error(&path, source))?;
        match file.try_lock() {
            Ok(()) => Ok(HomeLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(HomeError::Busy(self.dir.clone())),
            Err(std::fs::TryLockError::Error(source)) => Err(io_error(&path, source)),
        }
    }

    /// The sync state file for one folder, named by a hash of its path.
    pub fn state_path(&self, folder: &Path) -> PathBuf {
        let canonical = folder
            .canonicalize()
            .unwrap_or_else(|_| folder.to_path_buf());
        let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
        self.dir
            .join(format!("state-{}.json", hex::encode(&digest[..8])))
    }

    /// Writes a file only the user can read, replacing any old one in one step: a crash
    /// leaves the old file or the new one, never half of either.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), HomeError> {
        create_private_dir(&self.dir).map_err(|source| io_error(&self.dir, source))?;
        let path = self.dir.join(name);
        let temp = self.dir.join(format!("{name}.tmp"));
        let write = || -> io::Result<()> {
            let mut file = private_file(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &path)?;
            sync_dir(&self.dir)
        };
        write().map_err(|source| io_error(&path, source))
    }
}

fn io_error(path: &Path, source: io::Error) -> HomeError {
    HomeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(windows)]
fn credential(pairing: &Pairing) -> Result<keyring::Entry, HomeError> {
    Ok(keyring::Entry::new(
        "strongbox-agent",
        &format!("{}@{}", pairing.agent_id, pairing.server),
    )?)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Makes a rename durable (directories cannot be opened for syncing on Windows).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_and_secret_round_trip_in_private_files() {
        let temp = std::env::temp_dir().join(format!("sbx-agent-home-{}", std::process::id()));
        let home = AgentHome::new(Some(temp.clone())).unwrap();
        assert!(matches!(home.pairing(), Err(HomeError::NotPaired)));
        let pairing = Pairing {
            server: "https://box.example.com".parse().unwrap(),
            agent_id: "a".into(),
            workspace_id: "w".into(),
        };
        home.save_pairing(&pairing, "sbx_ars_first").unwrap();
        assert_eq!(home.pairing().unwrap(), pairing);
        assert_eq!(*home.refresh_secret(&pairing).unwrap(), "sbx_ars_first");
        home.save_refresh_secret(&pairing, "sbx_ars_second")
            .unwrap();
        assert_eq!(*home.refresh_secret(&pairing).unwrap(), "sbx_ars_second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for name in [PAIRING_FILE, SECRET_FILE] {
                let mode = fs::metadata(temp.join(name)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{name}");
            }
        }
        fs::remove_dir_all(temp).unwrap();
    }
}
