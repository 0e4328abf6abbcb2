//! age encryption of one file at a time, hashing the encrypted bytes as they are written
//! or read, so the manifest can name exactly what is stored.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::BackupError;

/// What is stored of one file: its size and SHA-256, as the manifest records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// The age recipients backups are encrypted to.
pub struct Recipients(Vec<age::x25519::Recipient>);

impl Recipients {
    pub fn parse(keys: &[String]) -> Result<Self, BackupError> {
        let parsed: Vec<_> = keys.iter().filter_map(|k| k.parse().ok()).collect();
        // The config validates every key; an empty list is the one thing left to refuse.
        match parsed.is_empty() || parsed.len() != keys.len() {
            true => Err(BackupError::NoRecipients),
            false => Ok(Self(parsed)),
        }
    }
}

/// The age identities a restore or a full verify decrypts with, read from a file the
/// operator keeps off the server.
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl Identities {
    pub fn load(path: &Path) -> Result<Self, BackupError> {
        let file = File::open(path).map_err(BackupError::io(path))?;
        let unusable = || BackupError::BadIdentityFile(path.to_path_buf());
        let identities = age::IdentityFile::from_buffer(BufReader::new(file))
            .map_err(|_| unusable())?
            .into_identities()
            .map_err(|_| unusable())?;
        match identities.is_empty() {
            true => Err(unusable()),
            false => Ok(Self(identities)),
        }
    }
}

/// Encrypts `source` to every recipient into `dest`, a new owner-only file.
pub fn seal(source: &Path, dest: &Path, recipients: &Recipients) -> Result<Stored, BackupError> {
    let mut input = File::open(source).map_err(BackupError::io(source))?;
    let output = create_new(dest).map_err(BackupError::io(dest))?;
    let output = HashingWriter::new(BufWriter::new(output));
    let encryptor =
        age::Encryptor::with_recipients(recipients.0.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| BackupError::NoRecipients)?;
    let write_err = BackupError::io(dest);
    let result = (|| {
        let mut writer = encryptor.wrap_output(output)?;
        io::copy(&mut input, &mut writer)?;
        let output = writer.finish()?;
        let (buffered, stored) = output.finish();
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(stored)
    })();
    result.map_err(write_err)
}

/// Decrypts `source` into `dest`, a new owner-only file.
pub fn unseal(source: &Path, dest: &Path, identities: &Identities) -> Result<(), UnsealError> {
    let input = BufReader::new(File::open(source).map_err(UnsealError::Io)?);
    let decryptor = age::Decryptor::new_buffered(input).map_err(|_| UnsealError::Damaged)?;
    let mut reader = decryptor
        .decrypt(
            identities
                .0
                .iter()
                .map(|i| i.as_ref() as &dyn age::Identity),
        )
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => UnsealError::WrongIdentity,
            _ => UnsealError::Damaged,
        })?;
    let mut output = BufWriter::new(create_new(dest).map_err(UnsealError::Io)?);
    // A payload that fails its authentication tag surfaces as a read error.
    io::copy(&mut reader, &mut output).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => UnsealError::Damaged,
        _ => UnsealError::Io(e),
    })?;
    let file = output
        .into_inner()
        .map_err(|e| UnsealError::Io(e.into_error()))?;
    file.sync_all().map_err(UnsealError::Io)
}

#[derive(Debug)]
pub enum UnsealError {
    WrongIdentity,
    Damaged,
    Io(io::Error),
}

/// The size and SHA-256 of a stored file.
pub fn digest(path: &Path) -> Result<Stored, io::Error> {
    let mut file = File::open(path)?;
    let mut hashing = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hashing)?;
    Ok(hashing.finish().1)
}

fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Passes writes through, counting and hashing them.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (W, Stored) {
        let stored = Stored {
            bytes: self.bytes,
            sha256: self.hasher.finalize().into(),
        };
        (self.inner, stored)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
