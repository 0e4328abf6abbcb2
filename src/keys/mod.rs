//! Key rotation: `strongbox keys rotate` moves every database to its next key version and,
//! when asked, the whole install to a new master key. It runs only while the server is
//! stopped (`app::rotate_keys` holds the server's lock).
//!
//! A process killed at any point leaves every database under a key that a record names, so
//! the next run finishes what the last one began:
//!
//! 1. Before any database changes, the control database names each workspace's next version
//!    (`pending_key_version`), then the install file names the control database's next
//!    version and the new master key's fingerprint (`[rotation]`). While that record is
//!    there, nothing but `keys rotate` opens the install.
//! 2. Each workspace database in turn: rekeyed (one SQLCipher transaction: a crash rolls it
//!    back), then, in one transaction inside it, its audit chain re-signed (new master key
//!    only), a `keys.rotated` row and its new version recorded; then its control row moves
//!    to the new version. A database that refuses its recorded key but takes the pending
//!    one was rekeyed by a run that stopped: it is finished from there.
//! 3. The control database, the same way, with the system log's `keys.rotated` row.
//! 4. With a new master key: the key file is replaced in one step. Where the process cannot
//!    write it (a systemd credential, a read-only path), the operator puts the key there and
//!    runs `keys rotate` again, which sees the new key in place and goes on.
//! 5. The install file is replaced without the record, naming the new control version.
//!
//! Keys derived from the master key and never stored (agent JWT signing, CSRF) change with
//! it: agents fetch new access tokens with their refresh secrets, open forms need a reload.

mod error;
mod rotate;

pub use error::KeysError;
pub use rotate::{Install, MasterKeyChange, NewMasterKey, Rotated, rotate};
