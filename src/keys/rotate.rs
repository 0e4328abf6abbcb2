//! The rotation itself: starting one, resuming one that stopped, and finishing.

use std::path::PathBuf;

use super::KeysError;
use crate::audit::{Action, Actor, Chain, Entry, RotationSigner};
use crate::clock::SharedClock;
use crate::crypto::{DerivedKey, KeyPurpose, KeyRing, KeySource, MasterKey};
use crate::store::{
    ConnectionSettings, DataDir, InstallInfo, KeyInUse, PendingKey, PendingRotation, Rekeying,
    StoreError,
};

/// Whether the rotation also moves the install to a new master key, and where that key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewMasterKey {
    Keep,
    /// A key file the operator made (32 random bytes, owner-only).
    Load(PathBuf),
    /// Make a new random key file here first (0600; never over an existing file).
    Generate(PathBuf),
}

/// Everything a rotation starts from, read before any database is opened.
pub struct Install {
    pub layout: DataDir,
    pub info: InstallInfo,
    /// Where the server reads its master key.
    pub source: KeySource,
    /// Derived from the master key at `source`.
    pub keys: KeyRing,
    pub settings: ConnectionSettings,
    pub clock: SharedClock,
}

/// What a finished run did.
#[derive(Debug)]
pub struct Rotated {
    /// The control database's key version now.
    pub control_key_version: u32,
    /// Workspace databases the rotation moved, in this run or an earlier one that stopped.
    pub workspaces: usize,
    pub master_key: MasterKeyChange,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MasterKeyChange {
    Kept,
    /// The new key is where the server reads it; the old one is gone from there.
    Installed {
        source: KeySource,
        fingerprint: String,
        /// The file it came from, when this run put it in place.
        new_key: Option<PathBuf>,
    },
    /// Every database is under the new key, but the key could not be written where the
    /// server reads it. The rotation stays unfinished (nothing opens the install) until the
    /// operator puts `new_key` there and runs `keys rotate` again.
    InstallByHand {
        source: KeySource,
        new_key: PathBuf,
        fingerprint: String,
        reason: String,
    },
}

/// Starts a rotation, or finishes the one the install file says is under way.
pub fn rotate(install: Install, request: NewMasterKey) -> Result<Rotated, KeysError> {
    let Some(pending) = install.info.rotation.clone() else {
        return start(install, request);
    };
    match (pending.master_key_fingerprint, request) {
        (Some(fingerprint), _) if fingerprint == install.keys.fingerprint() => {
            finish_installed(&install)
        }
        (Some(fingerprint), NewMasterKey::Load(path)) => {
            let new = KeyRing::new(MasterKey::load(&path)?, install.info.salt);
            if new.fingerprint() != fingerprint {
                return Err(KeysError::NeedsNewMasterKey { fingerprint });
            }
            Rotation::new(&install, Some((new, path))).resume()
        }
        (Some(fingerprint), _) => Err(KeysError::NeedsNewMasterKey { fingerprint }),
        (None, NewMasterKey::Keep) => Rotation::new(&install, None).resume(),
        (None, _) => Err(KeysError::KeepsMasterKey),
    }
}

/// A new rotation: checks, then the records of step 1, then the moves.
fn start(install: Install, request: NewMasterKey) -> Result<Rotated, KeysError> {
    let new = match request {
        NewMasterKey::Keep => None,
        NewMasterKey::Load(path) => Some((MasterKey::load(&path)?, path)),
        NewMasterKey::Generate(path) => Some((MasterKey::create(&path)?, path)),
    };
    let new = new.map(|(key, path)| (KeyRing::new(key, install.info.salt), path));
    if let Some((ring, _)) = &new
        && ring.fingerprint() == install.keys.fingerprint()
    {
        return Err(KeysError::SameMasterKey);
    }
    let master_key_fingerprint = new.as_ref().map(|(ring, _)| ring.fingerprint());
    let rotation = Rotation::new(&install, new);
    let (mut control, _) = Rekeying::control(
        &install.layout,
        &rotation.old_control_key(),
        None,
        install.settings,
    )?;
    if control.key_version()? != install.info.control_key_version {
        return Err(StoreError::Corrupt("recorded key version does not match").into());
    }
    if rotation.new.is_some() {
        rotation.check_chains(&control)?;
    }
    control.mark_workspaces_pending()?;
    let mut info = install.info.clone();
    info.rotation = Some(PendingRotation {
        control_key_version: info.control_key_version + 1,
        master_key_fingerprint,
    });
    info.replace(&install.layout.install_file())?;
    rotation.run(control, KeyInUse::Recorded)
}

/// The key file already holds the new master key, so every database is under it: only the
/// install file's record is left (step 5).
fn finish_installed(install: &Install) -> Result<Rotated, KeysError> {
    let to = install.info.control_key_version + 1;
    let key = install.keys.derive(KeyPurpose::ControlDb, to);
    let (control, _) = Rekeying::control(&install.layout, &key, None, install.settings)?;
    if control.key_version()? != to || !control.pending_workspaces()?.is_empty() {
        return Err(StoreError::Corrupt("key rotation records disagree").into());
    }
    let workspaces = control.workspace_keys()?.len();
    drop(control);
    record_finished(install, to)?;
    Ok(Rotated {
        control_key_version: to,
        workspaces,
        master_key: MasterKeyChange::Installed {
            source: install.source.clone(),
            fingerprint: install.keys.fingerprint(),
            new_key: None,
        },
    })
}

/// The install file without the record, at the control database's new version.
fn record_finished(install: &Install, control_key_version: u32) -> Result<(), StoreError> {
    let info = InstallInfo {
        salt: install.info.salt,
        control_key_version,
        rotation: None,
    };
    info.replace(&install.layout.install_file())
}

/// One run of a rotation that moves databases from the keys under `install.keys` to the
/// next versions under the target master key: the new one, or the same.
struct Rotation<'a> {
    install: &'a Install,
    /// The new master key's ring and the file it came from, for a master-key rotation.
    new: Option<(KeyRing, PathBuf)>,
    signer: RotationSigner,
}

impl<'a> Rotation<'a> {
    fn new(install: &'a Install, new: Option<(KeyRing, PathBuf)>) -> Self {
        let target = new.as_ref().map(|(ring, _)| ring);
        let signer = RotationSigner::new(&install.keys, target, install.clock.clone());
        Self {
            install,
            new,
            signer,
        }
    }

    fn target(&self) -> &KeyRing {
        self.new
            .as_ref()
            .map_or(&self.install.keys, |(ring, _)| ring)
    }

    fn control_versions(&self) -> (u32, u32) {
        let from = self.install.info.control_key_version;
        (from, from + 1)
    }

    fn old_control_key(&self) -> DerivedKey {
        let (from, _) = self.control_versions();
        self.install.keys.derive(KeyPurpose::ControlDb, from)
    }

    /// Every chain must verify under the MAC key in use before a new master key re-signs
    /// them; a broken one stops the rotation before anything changed.
    fn check_chains(&self, control: &Rekeying) -> Result<(), KeysError> {
        self.check_chain(control, Chain::System)?;
        for key in control.workspace_keys()? {
            let id = key.workspace;
            let purpose = KeyPurpose::WorkspaceDb(id);
            let recorded = self.install.keys.derive(purpose, key.key_version);
            let layout = &self.install.layout;
            Rekeying::workspace(layout, id, &recorded, None, self.install.settings)
                .map_err(KeysError::from)
                .and_then(|(db, _)| self.check_chain(&db, Chain::Workspace(id)))
                .map_err(|e| e.in_workspace(id))?;
        }
        Ok(())
    }

    fn check_chain(&self, db: &Rekeying, chain: Chain) -> Result<(), KeysError> {
        match db.read(|conn| self.signer.verify(conn, chain).map_err(StoreError::from))? {
            Ok(_) => Ok(()),
            Err(broken) => Err(KeysError::BrokenChain { chain, broken }),
        }
    }

    /// Goes on with a rotation the install file records.
    fn resume(self) -> Result<Rotated, KeysError> {
        let (_, to) = self.control_versions();
        let pending = self.target().derive(KeyPurpose::ControlDb, to);
        let (control, key) = Rekeying::control(
            &self.install.layout,
            &self.old_control_key(),
            Some(&pending),
            self.install.settings,
        )?;
        self.run(control, key)
    }

    /// Steps 2 to 5.
    fn run(self, mut control: Rekeying, key: KeyInUse) -> Result<Rotated, KeysError> {
        let workspaces = control.workspace_keys()?.len();
        for pending in control.pending_workspaces()? {
            self.move_workspace(&mut control, pending)?;
        }
        self.move_control(control, key, workspaces)?;
        let master_key = self.install_master_key();
        let (_, to) = self.control_versions();
        if !matches!(master_key, MasterKeyChange::InstallByHand { .. }) {
            record_finished(self.install, to)?;
        }
        Ok(Rotated {
            control_key_version: to,
            workspaces,
            master_key,
        })
    }

    fn move_workspace(&self, control: &mut Rekeying, pending: PendingKey) -> Result<(), KeysError> {
        let id = pending.workspace;
        let purpose = KeyPurpose::WorkspaceDb(id);
        let recorded = self.install.keys.derive(purpose, pending.from);
        let next = self.target().derive(purpose, pending.to);
        let layout = &self.install.layout;
        // The database is closed (its WAL checkpointed) before the control row says it moved.
        let moved = Rekeying::workspace(layout, id, &recorded, Some(&next), self.install.settings)
            .map_err(KeysError::from)
            .and_then(|(mut db, key)| {
                let entry = self.entry(purpose, pending.from, pending.to);
                let chain = Chain::Workspace(id);
                self.move_database(&mut db, key, &next, pending.to, chain, entry)
            });
        moved.map_err(|e| e.in_workspace(id))?;
        control.record_workspace_moved(pending)?;
        Ok(())
    }

    fn move_control(
        &self,
        mut control: Rekeying,
        key: KeyInUse,
        workspaces: usize,
    ) -> Result<(), KeysError> {
        let (from, to) = self.control_versions();
        let next = self.target().derive(KeyPurpose::ControlDb, to);
        let entry = self
            .entry(KeyPurpose::ControlDb, from, to)
            .detail("workspaces", workspaces)
            .detail("master_key_fingerprint", self.target().fingerprint());
        self.move_database(&mut control, key, &next, to, Chain::System, entry)
    }

    /// The database's `keys.rotated` row: versions and key ids, never key material.
    fn entry(&self, purpose: KeyPurpose, from: u32, to: u32) -> Entry {
        Entry::new(Actor::system(), Action::KeysRotated)
            .target("key", purpose.key_id(to))
            .detail("from_version", from)
            .detail("to_version", to)
            .detail("master_key_changed", self.new.is_some())
    }

    /// Rekeys `db` unless an earlier run did, then (in one transaction inside it) has its
    /// chain re-signed and `entry` appended and records `to`, unless an earlier run did.
    fn move_database(
        &self,
        db: &mut Rekeying,
        key: KeyInUse,
        next: &DerivedKey,
        to: u32,
        chain: Chain,
        entry: Entry,
    ) -> Result<(), KeysError> {
        if key == KeyInUse::Recorded {
            db.rekey(next)?;
        }
        if db.key_version()? != to {
            db.finish(to, |tx| {
                match self
                    .signer
                    .finish(tx, chain, entry)
                    .map_err(StoreError::from)?
                {
                    Ok(()) => Ok(()),
                    Err(broken) => Err(KeysError::BrokenChain { chain, broken }),
                }
            })?;
        }
        tracing::info!(%chain, version = to, "database moved to its next key");
        Ok(())
    }

    /// Step 4: puts the new master key where the server reads it, if it can.
    fn install_master_key(&self) -> MasterKeyChange {
        let Some((ring, new_key)) = &self.new else {
            return MasterKeyChange::Kept;
        };
        let source = self.install.source.clone();
        let fingerprint = ring.fingerprint();
        let reason = match &source {
            KeySource::SystemdCredential(_) => {
                "it is a systemd credential, a copy the service manager makes".to_string()
            }
            _ => match ring.master_key().replace_file(source.path()) {
                Ok(()) => {
                    return MasterKeyChange::Installed {
                        source,
                        fingerprint,
                        new_key: Some(new_key.clone()),
                    };
                }
                Err(e) => e.to_string(),
            },
        };
        MasterKeyChange::InstallByHand {
            source,
            new_key: new_key.clone(),
            fingerprint,
            reason,
        }
    }
}
