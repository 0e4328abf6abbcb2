//! Backups: a consistent copy of every database, encrypted with age to the configured
//! recipients, with a manifest whose MAC is keyed from the master key; listing, checking,
//! restoring, retention and the off-site copy.
//!
//! A backup is a directory `<id>/` under `[backup] dir`: `install.toml.age`,
//! `control.db.age`, `workspaces/<id>.db.age` and `manifest.json`. Each `.age` file holds
//! a database still encrypted with its own SQLCipher key, so reading a backup takes both
//! an age identity (kept off the server) and the master key.

mod archive;
mod drill;
mod error;
mod id;
mod list;
mod manifest;
mod offsite;
mod restore;
mod retention;
mod run;

pub use archive::Identities;
pub use drill::DrillAccount;
pub use error::BackupError;
pub use id::BackupId;
pub use list::{Listed, local as list_local, offsite as list_offsite};
pub use manifest::{FileEntry, FileKind, MANIFEST_FILE, Manifest};
pub use offsite::Offsite;
pub use restore::{Checked, RestoreRequest, Restored, Source, check, restore, verify_full};
pub use run::{BackupReport, run};

use crate::crypto::KeyPurpose;

/// The key manifests are signed with, as `Store::derive_key` takes it.
pub const MAC_KEY: (KeyPurpose, u32) = (KeyPurpose::BackupManifestMac, 1);
