//! One cgroup per instance: the layer that catches everything.
//!
//! Membership is inherited by every fork and cannot be left without privileges, so a cgroup
//! holds even `env -i` + `setsid` double-forked escapees; `cgroup.kill` ends all members at once
//! and `cgroup.events` says when none is left. The instance cgroup is made under this process's
//! own v2 cgroup (so no other part of the tree is touched), named `tether-<instance id>`, and
//! removed when the instance ends, with any instance cgroup nested in it (see [`nested`]). A
//! `pids.max` limit comes from the v2 `pids` controller when the parent offers it, else from the
//! v1 `pids` hierarchy of a hybrid host (see [`pids`]).

pub mod mounts;
pub mod nested;
pub mod pids;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use nested::{instance_id_of, nested_instance_dirs, remove_tree_when_empty};
use pids::PidsLimit;

/// Prefix of every instance cgroup's directory name; the sweep looks for it.
pub const NAME_PREFIX: &str = "tether-";

/// Why the cgroup layer is not in force for an instance.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The host has no usable v2 hierarchy for this process.
    #[error("no cgroup v2 hierarchy: {0}")]
    NoHierarchy(String),
    /// There is one, but this process may not create cgroups in it.
    #[error("cgroup v2 hierarchy not writable: {0}")]
    NotWritable(String),
    /// Creating or opening the instance's cgroup failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An instance cgroup is not removed, and must not be: something is still in it.
    #[error("not removing {path}: {why}")]
    Held {
        /// The cgroup directory.
        path: PathBuf,
        /// What is still in it.
        why: String,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The cgroup of one running instance.
#[derive(Debug)]
pub struct InstanceCgroup {
    /// The v2 directory, `<own cgroup>/tether-<instance>`.
    dir: PathBuf,
    /// `cgroup.procs` of `dir`, opened before the server is forked so that the child only has
    /// to `write("0")` (async-signal-safe) to join.
    procs: File,
    /// The directory itself, open, for a child to be born in it (`clone3(CLONE_INTO_CGROUP)`)
    /// instead of moving in through `procs`.
    dir_fd: File,
    /// A process-count limit, when one was asked for and could be set.
    pids: Option<PidsLimit>,
}

impl InstanceCgroup {
    /// Creates the instance cgroup under this process's own v2 cgroup. `max_procs` sets
    /// `pids.max`; when no pids controller can carry it, the cgroup is still made and the
    /// returned warning says why the limit is not enforced.
    pub fn create(instance: &str, max_procs: Option<u32>) -> Result<(InstanceCgroup, Option<String>), CgroupError> {
        let location = mounts::locate_v2().map_err(CgroupError::NoHierarchy)?;
        if location.mount.read_only {
            return Err(CgroupError::NotWritable(format!(
                "{} is mounted read-only",
                location.mount.mount_point.display()
            )));
        }
        mounts::writable(&location.own_dir).map_err(CgroupError::NotWritable)?;
        let dir = location.own_dir.join(format!("{NAME_PREFIX}{instance}"));
        fs::create_dir(&dir).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                CgroupError::NotWritable(format!("mkdir {}: {e}", dir.display()))
            }
            _ => CgroupError::Io {
                action: "creating cgroup",
                path: dir.clone(),
                source: e,
            },
        })?;
        let procs = match OpenOptions::new().write(true).open(dir.join("cgroup.procs")) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                return Err(io_err("opening", &dir.join("cgroup.procs"))(e));
            }
        };
        let dir_fd = match File::open(&dir) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                return Err(io_err("opening", &dir)(e));
            }
        };
        let mut warning = None;
        let pids = match max_procs {
            None => None,
            Some(max) => match PidsLimit::create(&location, &dir, instance, max) {
                Ok(limit) => Some(limit),
                Err(why) => {
                    warning = Some(format!("--max-procs {max} is not enforced: {why}"));
                    None
                }
            },
        };
        Ok((
            InstanceCgroup {
                dir,
                procs,
                dir_fd,
                pids,
            },
            warning,
        ))
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pids limit in force, if any, for reports.
    pub fn pids_limit(&self) -> Option<&PidsLimit> {
        self.pids.as_ref()
    }

    /// Fds a freshly forked child writes `"0"` to, to join this cgroup (and its pids limit)
    /// before it execs, so that nothing it starts is ever outside.
    pub fn join_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.procs.as_raw_fd()];
        fds.extend(self.other_join_fds());
        fds
    }

    /// The fd of the v2 directory, to be born in (see `crate::fork::fork_into_cgroup`).
    pub fn dir_fd(&self) -> RawFd {
        self.dir_fd.as_raw_fd()
    }

    /// [`InstanceCgroup::join_fds`] but the v2 one: what a child born in the v2 cgroup still
    /// joins by a write (a v1 pids cgroup).
    pub fn other_join_fds(&self) -> Vec<RawFd> {
        self.pids.as_ref().and_then(PidsLimit::procs_fd).into_iter().collect()
    }

    /// Pids of the members (processes, not threads).
    pub fn members(&self) -> Vec<i32> {
        members_of(&self.dir)
    }

    /// True while any process is in the cgroup.
    pub fn populated(&self) -> bool {
        populated(&self.dir)
    }

    /// SIGKILLs every member at once.
    pub fn kill(&self) -> io::Result<()> {
        kill_dir(&self.dir)
    }

    /// Removes the cgroup (and the pids one) once it is empty, retrying briefly while the
    /// kernel still releases the last members, with the instance cgroups of shims that ran
    /// inside it. Leaves nothing behind on success.
    pub fn remove(self) -> Result<(), CgroupError> {
        let v2 = remove_tree_when_empty(&self.dir, Duration::from_secs(2));
        let v1 = self.pids.map_or(Ok(()), PidsLimit::remove);
        v2.and(v1)
    }
}

/// Pids in `dir/cgroup.procs`.
pub fn members_of(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// True when `dir/cgroup.events` says `populated 1`, or when it cannot be read but members are
/// listed.
pub fn populated(dir: &Path) -> bool {
    match fs::read_to_string(dir.join("cgroup.events")) {
        Ok(t) => t.lines().any(|l| l.trim() == "populated 1"),
        Err(_) => !members_of(dir).is_empty(),
    }
}

/// Kills every member of the cgroup at `dir` and of the cgroups below it: `cgroup.kill` where
/// the kernel has it (≥ 5.14), else [`kill_members`] (members are ours by construction: only
/// processes forked inside the cgroup are in it).
pub fn kill_dir(dir: &Path) -> io::Result<()> {
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() {
        let mut f = OpenOptions::new().write(true).open(&kill_file)?;
        return f.write_all(b"1");
    }
    kill_members(dir);
    Ok(())
}

/// Kernels before 5.14, and v1 directories: SIGKILL to each member of `dir` and of every
/// cgroup below it, whatever its name (`cgroup.procs` lists only a cgroup's own members, and a
/// server may make sub-cgroups of its own), through a pidfd, re-checking membership after
/// opening it, so a member that left and whose pid was recycled is never hit; until none is
/// left, or a hundred passes.
pub fn kill_members(dir: &Path) {
    for _ in 0..100 {
        let mut dirs = nested::descendant_dirs(dir);
        dirs.push(dir.to_path_buf());
        let mut any = false;
        for d in &dirs {
            for pid in members_of(d) {
                any = true;
                if let Ok(fd) = crate::process::pidfd::Pidfd::open(pid) {
                    if members_of(d).contains(&pid) {
                        let _ = fd.signal(nix::sys::signal::Signal::SIGKILL);
                    }
                }
            }
        }
        if !any {
            return;
        }
    }
}

/// Waits until no process is left in the cgroup at `dir`, or `patience` runs out; true when
/// it emptied.
///
/// A v2 cgroup is waited on through `cgroup.events`, which the kernel flags (POLLPRI) when its
/// `populated` line changes; a v1 directory, which has no such file, is re-read every 2 ms.
pub fn wait_empty(dir: &Path, patience: Duration) -> bool {
    use std::io::{Read, Seek};
    let deadline = Instant::now() + patience;
    let mut events = fs::File::open(dir.join("cgroup.events")).ok();
    loop {
        let busy = match events.as_mut() {
            Some(f) => {
                // Reading through the same fd also re-arms its notification.
                let mut text = String::new();
                let read = f.rewind().and_then(|()| f.read_to_string(&mut text));
                read.is_err() || text.lines().any(|l| l.trim() == "populated 1")
            }
            None => populated(dir),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if !busy {
            return true;
        }
        if left.is_zero() {
            return false;
        }
        match events.as_ref() {
            Some(f) => {
                use nix::poll::{PollFd, PollFlags, PollTimeout};
                // Bounded anyway: a missed notification costs 100 ms, not the whole patience.
                let ms = u16::try_from(left.as_millis().min(100)).unwrap_or(100);
                let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(f), PollFlags::POLLPRI)];
                let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
            }
            None => std::thread::sleep(left.min(Duration::from_millis(2))),
        }
    }
}

/// Removes an empty cgroup directory, retrying on EBUSY until `patience` runs out. A directory
/// that is already gone is fine.
pub fn remove_dir_when_empty(dir: &Path, patience: Duration) -> io::Result<()> {
    let deadline = Instant::now() + patience;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{require, Feature};

    #[test]
    #[allow(clippy::disallowed_methods)] // The test starts the member it waits for.
    fn wait_empty_returns_when_the_last_member_exits_and_not_before() {
        if !require(Feature::Cgroup, "skipping: the v1/re-read path is the only one here") {
            return;
        }
        let id = crate::ids::random_id().unwrap();
        let (cg, _) = InstanceCgroup::create(&id, None).unwrap();
        let mut child = std::process::Command::new("sleep").arg("0.3").spawn().unwrap();
        fs::write(cg.dir().join("cgroup.procs"), child.id().to_string()).unwrap();
        assert!(cg.populated());
        assert!(
            !wait_empty(cg.dir(), Duration::from_millis(20)),
            "emptied while sleep ran"
        );
        // Reaped by a thread, as the shim's loop would: the cgroup empties at exit, not at reap.
        let reaper = std::thread::spawn(move || child.wait());
        assert!(wait_empty(cg.dir(), Duration::from_secs(20)), "never emptied");
        assert!(reaper.join().unwrap().is_ok());
        cg.remove().unwrap();
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // The test starts the member it kills.
    fn the_kill_without_cgroup_kill_reaches_sub_cgroups_of_any_name() {
        if !require(Feature::Cgroup, "skipping: no cgroup to make sub-cgroups in") {
            return;
        }
        use std::os::unix::process::ExitStatusExt;
        let id = crate::ids::random_id().unwrap();
        let (cg, _) = InstanceCgroup::create(&id, None).unwrap();
        // What a server could do: a sub-cgroup of its own naming, a process moved into it.
        let own = cg.dir().join("workers").join("a");
        fs::create_dir_all(&own).unwrap();
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        fs::write(own.join("cgroup.procs"), child.id().to_string()).unwrap();
        assert!(members_of(cg.dir()).is_empty() && members_of(&own) == vec![child.id() as i32]);
        // The fallback itself, as on a kernel without cgroup.kill.
        kill_members(cg.dir());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        fs::remove_dir(&own).unwrap();
        fs::remove_dir(own.parent().unwrap()).unwrap();
        cg.remove().unwrap();
    }
}
