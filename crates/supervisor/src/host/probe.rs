//! The host half of `tether doctor`: what this kernel and these mounts let Tether do, found by
//! reading files and trying system calls, never by assuming.
//!
//! [`probe_host`] runs every check in an order that lets the `pids` checks look inside the
//! probe cgroup before it is removed, then derives the guarantees. It leaves the host as it
//! found it, with one exception it reports: `+pids` written to this process's own
//! `cgroup.subtree_control` when that was needed to prove the v2 controller (see
//! [`super::probes::pids`]).

use std::path::PathBuf;

use serde::Serialize;

use crate::cgroup::mounts;

use super::check::Check;
use super::guarantees::{self, Guarantee};
use super::probes::kernel::{self, KernelFacts};
use super::probes::layout::Layout;
use super::probes::pids::{self, PidsVia};
use super::probes::proc::{self, ProcFacts};
use super::probes::{cgroup, pidfd, prctl};

/// What the cgroup checks found, for scripts (the findings say the same in words).
#[derive(Debug, Clone, Serialize)]
pub struct CgroupFacts {
    /// Pure v2, hybrid, v1 only, none.
    pub layout: Layout,
    /// Where cgroup2 is mounted.
    pub v2_mount: Option<PathBuf>,
    /// This process's own cgroup in v2: where instance cgroups would be made.
    pub own_v2_dir: Option<PathBuf>,
    /// Whether a probe cgroup could be made (and a process moved) under `own_v2_dir`.
    pub v2_writable: bool,
    /// This process's own cgroup in the v1 pids hierarchy, on hosts that have one.
    pub v1_pids_dir: Option<PathBuf>,
    /// Which hierarchy would carry `--max-procs`, if it can be enforced.
    pub pids_via: Option<PidsVia>,
}

/// Everything the doctor found about this host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// The kernel, from uname(2); None when uname failed (the `kernel` check says why).
    pub kernel: Option<KernelFacts>,
    /// The cgroup layout and where Tether would put its cgroups.
    pub cgroup: CgroupFacts,
    /// `/proc` mount options and readability.
    pub proc: ProcFacts,
    /// Every finding, in a fixed order.
    pub checks: Vec<Check>,
    /// What the findings mean for Tether's guarantees.
    pub guarantees: Vec<Guarantee>,
}

impl HostReport {
    /// The finding with this id.
    pub fn check(&self, id: super::check::CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Probes this host. Takes a few milliseconds; creates and removes probe cgroups, and flips
/// this process's subreaper and parent-death-signal attributes for an instant, restoring them.
pub fn probe_host() -> HostReport {
    let kernel = kernel::probe();
    let kernel_check = kernel::check(&kernel);
    let kernel = kernel.ok();

    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroup_mounts = mounts::parse_mountinfo(&mountinfo);
    let v2 = cgroup::probe(&cgroup_mounts);
    let kill = cgroup::check_kill(&v2, kernel.as_ref());
    let pids = pids::check(&v2, &cgroup_mounts);
    let facts = CgroupFacts {
        layout: Layout::of(&cgroup_mounts),
        v2_mount: v2.location.as_ref().map(|l| l.mount.mount_point.clone()),
        own_v2_dir: v2.location.as_ref().map(|l| l.own_dir.clone()),
        v2_writable: v2.probe.is_some(),
        v1_pids_dir: mounts::locate_v1("pids").ok().map(|(_, dir)| cgroup::tidy(&dir)),
        pids_via: pids.via,
    };
    let (v2_check, writable) = v2.finish();
    let (proc_check, proc_facts) = proc::check(&mountinfo);

    let checks = vec![
        kernel_check,
        v2_check,
        writable,
        kill,
        pids.v2,
        pids.v1,
        pidfd::check_pidfd(kernel.as_ref()),
        pidfd::check_pidfs(),
        prctl::check_subreaper(),
        prctl::check_pdeathsig(),
        proc_check,
    ];
    let guarantees = guarantees::derive(&checks, facts.pids_via);
    HostReport {
        kernel,
        cgroup: facts,
        proc: proc_facts,
        checks,
        guarantees,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::check::{CheckId, Status};

    #[test]
    fn every_check_is_reported_once_and_explained() {
        let _serial = crate::host::PROCESS_STATE.lock().unwrap_or_else(|e| e.into_inner());
        let report = probe_host();
        assert_eq!(report.checks.len(), 11);
        for id in [CheckId::Kernel, CheckId::CgroupV2, CheckId::Proc, CheckId::Subreaper] {
            assert_eq!(report.checks.iter().filter(|c| c.id == id).count(), 1);
        }
        for c in &report.checks {
            assert!(!c.detail.is_empty(), "{c:?}");
            assert_eq!(c.advice.is_some(), c.status != Status::Ok, "{c:?}");
        }
        assert_eq!(report.guarantees.len(), 5);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["checks"][0]["status"].is_string());
    }

    #[test]
    fn leaves_no_probe_cgroup_behind() {
        let _serial = crate::host::PROCESS_STATE.lock().unwrap_or_else(|e| e.into_inner());
        let probes = |dir: &PathBuf| -> Vec<_> {
            std::fs::read_dir(dir)
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.to_string_lossy().starts_with("tether-doctor-"))
                .collect()
        };
        let first = probe_host();
        let dirs: Vec<PathBuf> = [first.cgroup.own_v2_dir, first.cgroup.v1_pids_dir]
            .into_iter()
            .flatten()
            .collect();
        // Another doctor (another test binary) may be probing the same cgroup right now: only
        // probes that appeared during this call count.
        let before: Vec<_> = dirs.iter().map(probes).collect();
        probe_host();
        for (dir, before) in dirs.iter().zip(before) {
            let new: Vec<_> = probes(dir).into_iter().filter(|n| !before.contains(n)).collect();
            assert!(new.is_empty(), "{new:?} left in {}", dir.display());
        }
    }
}
