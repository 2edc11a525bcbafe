//! The cgroup v2 layer on this host: is there a hierarchy, may Tether create cgroups in it, and
//! does an instance cgroup get `cgroup.kill`.
//!
//! Writability is proven, not inferred from modes: the doctor creates a probe cgroup under its
//! own v2 cgroup, exactly where a shim would create an instance cgroup, and keeps it until the
//! `pids` checks have looked inside it (see [`super::pids`]). When the kernel refuses, the
//! errno and the ownership of the directory say why, and the advice follows from that.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cgroup::mounts::{self, CgroupMount, V2Location};

use super::kernel::KernelFacts;
use super::layout::{self, Layout};
use super::scratch_cgroup::ScratchCgroup;
use crate::host::check::{Check, CheckId, Status};

/// Advice for hosts where a process cannot have its own cgroups.
pub const DELEGATE: &str =
    "run Tether in a cgroup delegated to you: `systemd-run --user --scope -p Delegate=yes tether …`, or run it as root";
/// Advice for containers that see a cgroup they may not change.
pub const CONTAINER: &str = "give the container a private, writable cgroup (e.g. `docker run --cgroupns=private \
     --privileged …`, or a systemd unit with `Delegate=yes`), or run Tether outside it";

/// What the doctor learned about cgroup v2, with the probe cgroup still in place.
#[derive(Debug)]
pub struct V2Probe {
    /// The hierarchy and this process's cgroup in it, when there is one.
    pub location: Option<V2Location>,
    /// The finding about the hierarchy.
    pub v2: Check,
    /// The finding about writability; [`V2Probe::finish`] completes it.
    pub writable: Check,
    /// The probe cgroup, when one could be made.
    pub probe: Option<ScratchCgroup>,
}

impl V2Probe {
    /// Removes the probe cgroup and returns the writability finding, saying whether the
    /// removal worked.
    pub fn finish(self) -> (Check, Check) {
        let mut writable = self.writable;
        if let Some(probe) = self.probe {
            remove_probe(probe, &mut writable);
        }
        (self.v2, writable)
    }
}

/// Removes the probe and says so in `check`; a probe that stays behind degrades the finding.
pub fn remove_probe(probe: ScratchCgroup, check: &mut Check) {
    let path = probe.path().to_path_buf();
    match probe.remove() {
        Ok(()) => check.detail.push_str(", then removed it (rmdir)"),
        Err(e) => {
            if check.status == Status::Ok {
                check.status = Status::Degraded;
            }
            check
                .detail
                .push_str(&format!(", but rmdir {} failed: {e}", path.display()));
            let by_hand = format!("remove it by hand: `rmdir {}`", path.display());
            check.advice = Some(match check.advice.take() {
                Some(fix) => format!("{fix}; also {by_hand}"),
                None => by_hand,
            });
        }
    }
}

/// Advice when there is no v2 hierarchy to use.
pub fn no_v2_advice(layout: Layout) -> String {
    match layout {
        Layout::V1Only => "mount cgroup2 beside v1: `mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 \
                           /sys/fs/cgroup/unified`, or boot with `systemd.unified_cgroup_hierarchy=1`"
            .to_string(),
        Layout::None => "mount it: `mount -t cgroup2 cgroup2 /sys/fs/cgroup`".to_string(),
        // Mounted, yet this process's cgroup is not under the mount.
        Layout::PureV2 | Layout::Hybrid => CONTAINER.to_string(),
    }
}

/// Finds the v2 hierarchy and tries to create a probe cgroup in this process's own cgroup.
pub fn probe(cgroup_mounts: &[CgroupMount]) -> V2Probe {
    let layout = Layout::of(cgroup_mounts);
    let location = match mounts::locate_v2() {
        Ok(loc) => V2Location {
            own_dir: tidy(&loc.own_dir),
            ..loc
        },
        Err(why) => {
            let detail = format!("{}: {why}", layout.describe());
            let advice = no_v2_advice(layout);
            return V2Probe {
                location: None,
                v2: Check::not_ok(CheckId::CgroupV2, Status::Missing, detail, advice.clone()),
                writable: Check::not_ok(
                    CheckId::CgroupWritable,
                    Status::Missing,
                    "no cgroup v2 hierarchy to write to (see cgroup_v2)",
                    advice,
                ),
                probe: None,
            };
        }
    };
    let mut detail = format!(
        "{}: cgroup2 mounted at {}{} (/proc/self/mountinfo)",
        layout.describe(),
        location.mount.mount_point.display(),
        if location.mount.read_only { " read-only" } else { "" },
    );
    let v1 = layout::v1_hierarchies(cgroup_mounts);
    if !v1.is_empty() {
        detail.push_str(&format!(", v1 hierarchies: {}", v1.join(" ")));
    }
    detail.push_str(&format!(
        "; own cgroup {} (/proc/self/cgroup)",
        location.own_dir.display()
    ));
    let (writable, probe) = prove_writable(&location);
    V2Probe {
        v2: Check::ok(CheckId::CgroupV2, detail),
        location: Some(location),
        writable,
        probe,
    }
}

fn prove_writable(location: &V2Location) -> (Check, Option<ScratchCgroup>) {
    let own = &location.own_dir;
    if location.mount.read_only {
        let mp = location.mount.mount_point.display();
        return (
            Check::not_ok(
                CheckId::CgroupWritable,
                Status::Missing,
                format!("{mp} is mounted read-only (/proc/self/mountinfo)"),
                format!("remount it read-write: `mount -o remount,rw {mp}`; in a container: {CONTAINER}"),
            ),
            None,
        );
    }
    let probe = match ScratchCgroup::create(own) {
        Ok(p) => p,
        Err((path, e)) => return (refused(own, &path, &e), None),
    };
    // Moving a process in needs write access to cgroup.procs of the probe and of the common
    // ancestor (our own cgroup), which is what the kernel checks on the move.
    let joinable = mounts::writable(own).and_then(|()| {
        let procs = probe.path().join("cgroup.procs");
        OpenOptions::new()
            .write(true)
            .open(&procs)
            .map(drop)
            .map_err(|e| format!("opening {} for writing: {e}", procs.display()))
    });
    let detail = match joinable {
        Ok(()) => format!(
            "created {} (mkdir), {}/cgroup.procs writable (access(2)) and its cgroup.procs opened for writing",
            probe.path().display(),
            own.display()
        ),
        Err(why) => {
            let detail = format!(
                "created {} (mkdir), but no process could be moved in: {why}{}",
                probe.path().display(),
                ownership(own)
            );
            let mut writable = Check::not_ok(CheckId::CgroupWritable, Status::Missing, detail, DELEGATE);
            remove_probe(probe, &mut writable);
            return (writable, None);
        }
    };
    (Check::ok(CheckId::CgroupWritable, detail), Some(probe))
}

/// The finding when mkdir of the probe failed: read-only, not ours, or refused even to root.
fn refused(own: &Path, path: &Path, e: &io::Error) -> Check {
    let attempt = format!("mkdir {}: {e}", path.display());
    let euid = nix::unistd::geteuid();
    let (detail, advice) = match e.raw_os_error() {
        Some(libc::EROFS) => (format!("{attempt} (read-only file system)"), CONTAINER.to_string()),
        Some(libc::EACCES | libc::EPERM) if !euid.is_root() => (
            format!(
                "{attempt}: not root (euid {euid}) and {} is not delegated to you{}",
                own.display(),
                ownership(own)
            ),
            DELEGATE.to_string(),
        ),
        Some(libc::EACCES | libc::EPERM) => (
            format!("{attempt}: refused even to root, as in a container or user namespace without a delegated cgroup"),
            CONTAINER.to_string(),
        ),
        _ => (attempt, DELEGATE.to_string()),
    };
    Check::not_ok(CheckId::CgroupWritable, Status::Missing, detail, advice)
}

/// `dir` without a trailing `/` or `//` (a cgroup at the mount's root comes back as `mount/`).
pub fn tidy(dir: &Path) -> PathBuf {
    dir.components().collect()
}

/// `" (owned by uid N)"` for messages about permissions.
fn ownership(dir: &Path) -> String {
    std::fs::metadata(dir)
        .map(|m| format!(" ({} is owned by uid {})", dir.display(), m.uid()))
        .unwrap_or_default()
}

/// Whether an instance cgroup here gets `cgroup.kill`: looked up in the probe cgroup, else in
/// this process's own cgroup; only the root cgroup (which never has the file) falls back to
/// the kernel version, and says so.
pub fn check_kill(v2: &V2Probe, kernel: Option<&KernelFacts>) -> Check {
    let Some(location) = &v2.location else {
        return Check::not_ok(
            CheckId::CgroupKill,
            Status::Missing,
            "no cgroup v2 hierarchy (see cgroup_v2)",
            v2.v2.advice.clone().unwrap_or_default(),
        );
    };
    let dir = v2
        .probe
        .as_ref()
        .map_or(location.own_dir.as_path(), ScratchCgroup::path);
    let file = dir.join("cgroup.kill");
    if file.exists() {
        return Check::ok(CheckId::CgroupKill, format!("{} exists", file.display()));
    }
    const FALLBACK: &str = "until then Tether SIGKILLs the members one at a time through pidfds, which a fast \
                            fork loop can outrun";
    let release = kernel.map_or("unknown", |k| k.release.as_str());
    let is_root_cgroup = v2.probe.is_none() && location.own_dir == location.mount.mount_point;
    if is_root_cgroup {
        // The root cgroup never has cgroup.kill, and no child could be made to look in.
        let new_enough = kernel.and_then(|k| k.has("cgroup.kill"));
        let detail = format!(
            "not seen: the root cgroup {} has no cgroup.kill and no child cgroup could be made; kernel {release} {}",
            location.own_dir.display(),
            match new_enough {
                Some(true) => "is ≥ 5.14, so instance cgroups would have it",
                Some(false) => "is < 5.14, so instance cgroups would lack it",
                None => "could not be compared with 5.14",
            }
        );
        return match new_enough {
            Some(true) => Check::ok(CheckId::CgroupKill, detail),
            _ => Check::not_ok(
                CheckId::CgroupKill,
                Status::Degraded,
                detail,
                format!("upgrade to Linux ≥ 5.14; {FALLBACK}"),
            ),
        };
    }
    Check::not_ok(
        CheckId::CgroupKill,
        Status::Degraded,
        format!(
            "{} does not exist (kernel {release}; cgroup.kill came in 5.14)",
            file.display()
        ),
        format!("upgrade to Linux ≥ 5.14; {FALLBACK}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidies_root_cgroup_paths() {
        assert_eq!(
            tidy(Path::new("/sys/fs/cgroup/unified/")),
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert_eq!(tidy(Path::new("/sys/fs/cgroup//a/")), PathBuf::from("/sys/fs/cgroup/a"));
    }

    #[test]
    fn refusals_name_the_errno_and_the_fix() {
        let own = Path::new("/sys/fs/cgroup/user.slice");
        let rofs = refused(
            own,
            &own.join("tether-doctor-x"),
            &io::Error::from_raw_os_error(libc::EROFS),
        );
        assert_eq!(rofs.status, Status::Missing);
        assert!(rofs.detail.contains("read-only file system"), "{rofs:?}");
        assert_eq!(rofs.advice.as_deref(), Some(CONTAINER));
        let eacces = refused(own, &own.join("p"), &io::Error::from_raw_os_error(libc::EACCES));
        let expected = if nix::unistd::geteuid().is_root() {
            CONTAINER
        } else {
            DELEGATE
        };
        assert_eq!(eacces.advice.as_deref(), Some(expected), "{eacces:?}");
    }

    #[test]
    fn advice_follows_the_layout() {
        assert!(no_v2_advice(Layout::V1Only).contains("mount -t cgroup2"));
        assert!(no_v2_advice(Layout::None).contains("mount -t cgroup2"));
        assert_eq!(no_v2_advice(Layout::PureV2), CONTAINER);
    }
}
