//! Key material: the master key, HKDF derivations with explicit key ids, and randomness.

pub mod jwt;
mod keyring;
mod master_key;
pub mod password;
pub mod token;

pub use keyring::{DerivedKey, KeyPurpose, KeyRing, MASTER_KEY_LEN, SALT_LEN};
pub use master_key::{KeyError, KeySource, MasterKey};

use rand::TryRngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// Fills a buffer from the operating system's CSPRNG.
///
/// Failure of the OS generator is unrecoverable for a security product, so it aborts
/// loudly instead of degrading.
pub fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut buf = Zeroizing::new([0u8; N]);
    OsRng
        .try_fill_bytes(buf.as_mut())
        .expect("the operating system's random number generator failed");
    buf
}
