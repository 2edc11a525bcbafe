//! A throw-away cgroup, `tether-doctor-<random id>`, made only to prove that cgroups can be
//! made here, and removed again.
//!
//! The name carries Tether's cgroup prefix, so that one left by a doctor killed between `mkdir`
//! and `rmdir` says whose it is. No sweep removes it (a sweep touches only the cgroups its
//! ledger's rows name, and this is no instance's): it is empty, and `rmdir` removes it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::{remove_dir_when_empty, NAME_PREFIX};

/// A probe cgroup that exists until [`ScratchCgroup::remove`] (or, best effort, drop).
#[derive(Debug)]
pub struct ScratchCgroup {
    /// Its directory.
    path: PathBuf,
    /// Set once removed, so drop does not try again.
    removed: bool,
}

impl ScratchCgroup {
    /// Makes `<parent>/tether-doctor-<random id>`. On failure returns the path it tried, for
    /// messages, with the error.
    pub fn create(parent: &Path) -> Result<ScratchCgroup, (PathBuf, io::Error)> {
        let id = crate::ids::random_id().map_err(|e| (parent.to_path_buf(), e))?;
        let path = parent.join(format!("{NAME_PREFIX}doctor-{id}"));
        match std::fs::create_dir(&path) {
            Ok(()) => Ok(ScratchCgroup { path, removed: false }),
            Err(e) => Err((path, e)),
        }
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes it (rmdir), retrying briefly while the kernel is still releasing it.
    pub fn remove(mut self) -> io::Result<()> {
        self.removed = true;
        remove_dir_when_empty(&self.path, Duration::from_millis(500))
    }
}

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        if !self.removed {
            let _ = remove_dir_when_empty(&self.path, Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_removes_a_plain_directory() {
        // A temporary directory stands in for a cgroup: mkdir and rmdir are the same calls.
        let parent = std::env::temp_dir().join(format!("tether-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&parent).unwrap();
        let probe = ScratchCgroup::create(&parent).unwrap();
        let name = probe.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("tether-doctor-"));
        assert!(crate::ids::is_valid_id(&name["tether-doctor-".len()..]));
        let path = probe.path().to_path_buf();
        probe.remove().unwrap();
        assert!(!path.exists());
        drop(ScratchCgroup::create(&parent).unwrap());
        assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0, "drop removes the probe");
        std::fs::remove_dir(&parent).unwrap();
    }
}
