//! `pids.max` for an instance: a cap on how many processes its tree may hold (fork bombs,
//! runaway worker pools).
//!
//! Pure v2 hosts carry it in the instance cgroup itself when the parent enables the `pids`
//! controller. Hybrid hosts (systemd's "unified" layout) keep `pids` on a v1 hierarchy: there the
//! server also joins a `tether-<instance>` cgroup of that hierarchy. Both are joined before exec.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mounts::{self, V2Location};
use super::NAME_PREFIX;

/// Where the limit lives.
#[derive(Debug)]
pub enum PidsLimit {
    /// `pids.max` of the v2 instance cgroup; nothing more to join.
    V2 {
        /// The limit, for reports.
        max: u32,
    },
    /// A separate cgroup in the v1 `pids` hierarchy.
    V1 {
        /// Its directory.
        dir: PathBuf,
        /// Its `cgroup.procs`, opened before fork.
        procs: File,
        /// The limit, for reports.
        max: u32,
    },
}

impl PidsLimit {
    /// Sets `max` for the instance whose v2 cgroup is `v2_dir`, trying v2 first, then v1.
    pub fn create(location: &V2Location, v2_dir: &Path, instance: &str, max: u32) -> Result<PidsLimit, String> {
        let v2_err = match try_v2(location, v2_dir, max) {
            Ok(()) => return Ok(PidsLimit::V2 { max }),
            Err(e) => e,
        };
        try_v1(instance, max).map_err(|v1_err| format!("v2: {v2_err}; v1: {v1_err}"))
    }

    /// The fd a forked child writes `"0"` to, to join, when the limit lives in a cgroup of
    /// its own (v1).
    pub fn procs_fd(&self) -> Option<RawFd> {
        match self {
            PidsLimit::V2 { .. } => None,
            PidsLimit::V1 { procs, .. } => Some(procs.as_raw_fd()),
        }
    }

    /// The limit.
    pub fn max(&self) -> u32 {
        match self {
            PidsLimit::V2 { max, .. } | PidsLimit::V1 { max, .. } => *max,
        }
    }

    /// Which hierarchy enforces it, for reports.
    pub fn describe(&self) -> String {
        match self {
            PidsLimit::V2 { max, .. } => format!("pids.max={max} (cgroup v2)"),
            PidsLimit::V1 { dir, max, .. } => format!("pids.max={max} (cgroup v1 {})", dir.display()),
        }
    }

    /// Removes the v1 cgroup once empty, with the v1 cgroups of limited shims that ran inside
    /// it (the v2 limit goes with its cgroup).
    pub fn remove(self) -> Result<(), super::CgroupError> {
        match self {
            PidsLimit::V2 { .. } => Ok(()),
            PidsLimit::V1 { dir, procs, .. } => {
                drop(procs);
                super::remove_tree_when_empty(&dir, Duration::from_secs(2))
            }
        }
    }
}

fn write_file(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("writing {value:?} to {}: {e}", path.display()))
}

fn try_v2(location: &V2Location, v2_dir: &Path, max: u32) -> Result<(), String> {
    let pids_max = v2_dir.join("pids.max");
    if !pids_max.exists() {
        let offered = fs::read_to_string(location.own_dir.join("cgroup.controllers")).unwrap_or_default();
        if !offered.split_whitespace().any(|c| c == "pids") {
            return Err(format!(
                "the pids controller is not available in {}",
                location.own_dir.display()
            ));
        }
        // Enabling it below our own cgroup fails when that cgroup holds processes and is not
        // the root (the "no internal processes" rule); then v1 is the fallback.
        write_file(&location.own_dir.join("cgroup.subtree_control"), "+pids")?;
    }
    write_file(&pids_max, &max.to_string())
}

fn try_v1(instance: &str, max: u32) -> Result<PidsLimit, String> {
    let (mount, own) = mounts::locate_v1("pids")?;
    if mount.read_only {
        return Err(format!("{} is mounted read-only", mount.mount_point.display()));
    }
    let dir = own.join(format!("{NAME_PREFIX}{instance}"));
    fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let result = write_file(&dir.join("pids.max"), &max.to_string()).and_then(|()| {
        OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| format!("opening {}/cgroup.procs: {e}", dir.display()))
    });
    match result {
        Ok(procs) => Ok(PidsLimit::V1 { dir, procs, max }),
        Err(e) => {
            let _ = fs::remove_dir(&dir);
            Err(e)
        }
    }
}
