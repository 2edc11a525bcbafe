//! Whether `--max-procs` can be enforced: the `pids` controller in cgroup v2, or in a v1
//! hierarchy on hybrid hosts (see [`crate::cgroup::pids`], which does the real
//! thing the same way).
//!
//! Both are proven in a probe cgroup: v2 in the one [`super::cgroup`] made (it must show a
//! `pids.max`), v1 in a probe of its own. When v2 does not enable `pids` below our cgroup yet,
//! the doctor writes `+pids` to our `cgroup.subtree_control` as a shim would, and leaves it
//! enabled: that is what the first `--max-procs` instance does anyway, and taking it back
//! could drop a limit a shim in the same cgroup has just set.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::cgroup::mounts::{self, CgroupMount};

use super::cgroup::{remove_probe, tidy, V2Probe, DELEGATE};
use super::scratch_cgroup::ScratchCgroup;
use crate::host::check::{Check, CheckId, Status};

/// Which hierarchy would carry an instance's `pids.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PidsVia {
    /// `pids.max` in the v2 instance cgroup.
    V2,
    /// `pids.max` in a `tether-<instance>` cgroup of the v1 pids hierarchy.
    V1,
}

/// Both findings, and the verdict.
#[derive(Debug)]
pub struct PidsChecks {
    /// The v2 controller.
    pub v2: Check,
    /// The v1 hierarchy.
    pub v1: Check,
    /// Where the cap would live, when it can be enforced at all (which also needs a v2
    /// instance cgroup: the v1 one only carries the limit).
    pub via: Option<PidsVia>,
}

/// Checks both places. `v2` must still hold its probe cgroup.
pub fn check(v2: &V2Probe, cgroup_mounts: &[CgroupMount]) -> PidsChecks {
    let v1_mount = cgroup_mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.super_options.iter().any(|o| o == "pids"));
    let mut v1 = check_v1();
    let mut v2_check = check_v2(v2, v1_mount);
    let instance_cgroup = v2.probe.is_some();
    let via = match (v2_check.is_ok(), v1.is_ok()) {
        _ if !instance_cgroup => None,
        (true, _) => Some(PidsVia::V2),
        (false, true) => Some(PidsVia::V1),
        (false, false) => None,
    };
    match via {
        Some(PidsVia::V1) => prefix_advice(
            &mut v2_check,
            "optional, the cap already works through the v1 pids hierarchy",
        ),
        Some(PidsVia::V2) => {
            v1.advice = v1.advice.take().map(|_| {
                "nothing to do: the cap works through cgroup v2 (pids_v2); a v1 pids hierarchy is only a fallback"
                    .to_string()
            })
        }
        None => {}
    }
    PidsChecks { v2: v2_check, v1, via }
}

fn prefix_advice(check: &mut Check, prefix: &str) {
    if let Some(advice) = check.advice.take() {
        check.advice = Some(format!("{prefix}; {advice}"));
    }
}

fn check_v2(v2: &V2Probe, v1_mount: Option<&CgroupMount>) -> Check {
    let missing = |detail: String, advice: String| Check::not_ok(CheckId::PidsV2, Status::Missing, detail, advice);
    let Some(location) = &v2.location else {
        return missing(
            "no cgroup v2 hierarchy (see cgroup_v2)".into(),
            v2.v2.advice.clone().unwrap_or_default(),
        );
    };
    let own = &location.own_dir;
    let controllers_file = own.join("cgroup.controllers");
    let controllers = match fs::read_to_string(&controllers_file) {
        Ok(text) => text,
        Err(e) => return missing(format!("reading {}: {e}", controllers_file.display()), DELEGATE.into()),
    };
    if !controllers.split_whitespace().any(|c| c == "pids") {
        let detail = format!(
            "not offered: {} lists {:?}",
            controllers_file.display(),
            controllers.trim()
        );
        let advice = match v1_mount {
            Some(m) => format!(
                "pids is bound to the v1 hierarchy at {} and a controller lives in one hierarchy at a time: boot \
                 with `systemd.unified_cgroup_hierarchy=1` for pure v2",
                m.mount_point.display()
            ),
            None if *own == location.mount.mount_point => {
                "the kernel has no pids controller: use a kernel built with CONFIG_CGROUP_PIDS=y".into()
            }
            None => format!(
                "have the parent cgroup delegate it: `systemd-run --user --scope -p Delegate=pids tether …`, or as \
                 root `echo +pids > {}/cgroup.subtree_control`",
                own.parent().unwrap_or(own).display()
            ),
        };
        return missing(detail, advice);
    }
    let Some(probe) = &v2.probe else {
        return missing(
            format!(
                "offered in {}, but no instance cgroup can be made (see cgroup_writable)",
                controllers_file.display()
            ),
            v2.writable.advice.clone().unwrap_or_else(|| DELEGATE.into()),
        );
    };
    let subtree_file = own.join("cgroup.subtree_control");
    let subtree = fs::read_to_string(&subtree_file).unwrap_or_default();
    let mut detail = format!("offered in {}", controllers_file.display());
    if subtree.split_whitespace().any(|c| c == "pids") {
        detail.push_str(&format!(", enabled in {}", subtree_file.display()));
    } else {
        match fs::write(&subtree_file, "+pids") {
            Ok(()) => detail.push_str(&format!(
                ", enabled by writing +pids to {} (left enabled, as a shim would)",
                subtree_file.display()
            )),
            Err(e) => return enable_refused(&subtree_file, &e),
        }
    }
    let pids_max = probe.path().join("pids.max");
    match fs::write(&pids_max, "max") {
        Ok(()) => Check::ok(
            CheckId::PidsV2,
            format!("{detail}; wrote max to {}", pids_max.display()),
        ),
        Err(e) => missing(
            format!("{detail}, but writing max to {}: {e}", pids_max.display()),
            DELEGATE.into(),
        ),
    }
}

/// The finding when `+pids` could not be enabled below our cgroup.
fn enable_refused(subtree_file: &Path, e: &io::Error) -> Check {
    let attempt = format!("writing +pids to {}: {e}", subtree_file.display());
    let (detail, advice) = match e.raw_os_error() {
        Some(libc::EBUSY) => (
            format!("{attempt}: the \"no internal processes\" rule (this cgroup holds processes and is not the root)"),
            "start Tether in a leaf cgroup of its own whose parent enables pids: `systemd-run --user --scope -p \
             Delegate=yes tether …`"
                .to_string(),
        ),
        Some(libc::EACCES | libc::EPERM) => (format!("{attempt}: not delegated"), DELEGATE.to_string()),
        _ => (attempt, DELEGATE.to_string()),
    };
    Check::not_ok(CheckId::PidsV2, Status::Missing, detail, advice)
}

fn check_v1() -> Check {
    let missing = |detail: String, advice: &str| Check::not_ok(CheckId::PidsV1, Status::Missing, detail, advice);
    let (mount, own) = match mounts::locate_v1("pids") {
        Ok((mount, own)) => (mount, tidy(&own)),
        Err(why) => {
            return missing(
                format!("{why} (/proc/self/mountinfo, /proc/self/cgroup)"),
                "on a hybrid host, mount it: `mkdir -p /sys/fs/cgroup/pids && mount -t cgroup -o pids cgroup \
                 /sys/fs/cgroup/pids`",
            )
        }
    };
    let mp = mount.mount_point.display();
    if mount.read_only {
        return missing(
            format!("{mp} is mounted read-only (/proc/self/mountinfo)"),
            &format!("remount it read-write: `mount -o remount,rw {mp}`"),
        );
    }
    let probe = match ScratchCgroup::create(&own) {
        Ok(p) => p,
        Err((path, e)) => return missing(format!("mkdir {}: {e}", path.display()), DELEGATE),
    };
    let pids_max = probe.path().join("pids.max");
    let procs = probe.path().join("cgroup.procs");
    let proven = fs::write(&pids_max, "max")
        .map_err(|e| format!("writing max to {}: {e}", pids_max.display()))
        .and_then(|()| {
            OpenOptions::new()
                .write(true)
                .open(&procs)
                .map(drop)
                .map_err(|e| format!("opening {} for writing: {e}", procs.display()))
        });
    let path = probe.path().display().to_string();
    let mut check = match proven {
        Ok(()) => Check::ok(
            CheckId::PidsV1,
            format!(
                "hierarchy at {mp}, own cgroup {}: created {path} (mkdir), wrote max to its pids.max, opened its \
                 cgroup.procs for writing",
                own.display()
            ),
        ),
        Err(why) => missing(format!("created {path} (mkdir), but {why}"), DELEGATE),
    };
    remove_probe(probe, &mut check);
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebusy_is_the_no_internal_processes_rule() {
        let file = Path::new("/sys/fs/cgroup/app.slice/cgroup.subtree_control");
        let busy = enable_refused(file, &io::Error::from_raw_os_error(libc::EBUSY));
        assert_eq!(busy.status, Status::Missing);
        assert!(busy.detail.contains("no internal processes"), "{busy:?}");
        assert!(busy.advice.as_deref().is_some_and(|a| a.contains("Delegate=yes")));
        let denied = enable_refused(file, &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(denied.advice.as_deref(), Some(DELEGATE));
    }

    #[test]
    fn advice_on_the_unused_hierarchy_says_it_is_optional() {
        let mut v2 = Check::not_ok(CheckId::PidsV2, Status::Missing, "not offered", "boot pure v2");
        prefix_advice(&mut v2, "optional");
        assert_eq!(v2.advice.as_deref(), Some("optional; boot pure v2"));
        let mut ok = Check::ok(CheckId::PidsV1, "fine");
        prefix_advice(&mut ok, "optional");
        assert_eq!(ok.advice, None);
    }
}
