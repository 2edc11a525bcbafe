//! One sweep at a time per ledger: an exclusive `flock` on `sweep.lock` in the state directory.
//!
//! Two concurrent sweeps would not harm each other (every kill re-checks identity), but their
//! reports would be confusing and their kills doubled. The lock is released by the kernel when
//! the holder exits, however it exits.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// A held sweep lock; released on drop.
pub struct SweepLock {
    /// The locked file.
    _lock: Flock<File>,
}

impl SweepLock {
    /// Takes the lock, waiting for a sweep in progress to finish.
    pub fn take(state_dir: &Path) -> io::Result<SweepLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(state_dir.join("sweep.lock"))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        Ok(SweepLock { _lock: lock })
    }
}
