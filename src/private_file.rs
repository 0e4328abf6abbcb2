//! Owner-only files that must survive a crash: written once, or replaced in one step, and on
//! disk before the call returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Creates `path` (0600) holding `bytes`; fails with `AlreadyExists` rather than replace a
/// file that is there.
pub fn create(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = new_file(path, 0o600)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` with `bytes`: the new file is written and synced beside the old one, then
/// renamed over it, and the directory is synced, so a crash leaves the old file or the new
/// one, never half of either. The new file keeps the old one's owner and owner permission
/// bits (0600 when there was none); a path that is not a regular file is refused.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name.to_string_lossy()),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file path",
            ));
        }
    };
    let old = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Some(meta),
        Ok(_) => return Err(io::Error::other("not a regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let temp = dir.join(format!(".{name}.new"));
    // A temp file left by a crash is stale: nothing refers to it.
    if let Err(e) = fs::remove_file(&temp)
        && e.kind() != io::ErrorKind::NotFound
    {
        return Err(e);
    }
    let mode = old.as_ref().map_or(0o600, |meta| meta.mode() & 0o700);
    let written = (|| {
        let mut file = new_file(&temp, mode)?;
        if let Some(meta) = &old {
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    File::open(dir)?.sync_all()
}

fn new_file(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn create_never_replaces_and_replace_keeps_an_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("install.toml");
        create(&path, b"one").unwrap();
        assert_eq!(
            create(&path, b"two").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(mode(&path), 0o600);

        replace(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        replace(&path, b"three").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(mode(&path), 0o400, "a stricter mode is kept");

        let fresh = dir.path().join("master.key");
        replace(&fresh, b"new").unwrap();
        assert_eq!(mode(&fresh), 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temp file is left behind");
    }

    #[test]
    fn a_stale_temp_file_is_ignored_and_a_symlink_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("install.toml");
        fs::write(dir.path().join(".install.toml.new"), b"half").unwrap();
        replace(&path, b"whole").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(replace(&link, b"other").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"whole");
    }
}
