//! What the findings mean for Tether's promises (`docs/architecture.md` §2, §3): for each guarantee, does it
//! hold on this host or degrade, and why, in one sentence.
//!
//! This is the part an operator reads first, so it is derived only from the findings (never
//! probed again), and each sentence names the mechanism that carries the guarantee here.

use serde::Serialize;

use super::check::{Check, CheckId};
use super::probes::pids::PidsVia;

/// One of Tether's guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuaranteeId {
    /// SIGKILL of a shim leaves none of its instance's processes alive.
    ShimSigkill,
    /// `env -i` + setsid double-fork escapees are caught.
    Escapees,
    /// `--max-procs` is enforced.
    PidsCap,
    /// A recycled pid is never signalled.
    PidReuse,
    /// Recorded process identities are unique.
    UniqueIdentity,
}

/// Whether a guarantee holds here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It holds in full.
    Holds,
    /// A fallback carries it, with the gap `why` names.
    Degrades,
}

/// One guarantee on this host.
#[derive(Debug, Clone, Serialize)]
pub struct Guarantee {
    /// Which one.
    pub id: GuaranteeId,
    /// What it promises.
    pub promise: &'static str,
    /// Whether it holds here.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub why: String,
}

/// Derives every guarantee's verdict from the findings.
pub fn derive(checks: &[Check], pids_via: Option<PidsVia>) -> Vec<Guarantee> {
    let ok = |id: CheckId| checks.iter().any(|c| c.id == id && c.is_ok());
    let cgroup = ok(CheckId::CgroupV2) && ok(CheckId::CgroupWritable);
    let holds = |id, promise, why: &str| Guarantee {
        id,
        promise,
        verdict: Verdict::Holds,
        why: why.to_string(),
    };
    let degrades = |id, promise, why: &str| Guarantee {
        id,
        promise,
        verdict: Verdict::Degrades,
        why: why.to_string(),
    };

    let subreaper = ok(CheckId::Subreaper);
    let p = "SIGKILL of the shim leaves nothing behind";
    let shim_sigkill = match (cgroup, ok(CheckId::CgroupKill)) {
        (true, true) => holds(
            GuaranteeId::ShimSigkill,
            p,
            "Its watchdog empties the instance cgroup with cgroup.kill, which reaches every process in it.",
        ),
        (true, false) => holds(
            GuaranteeId::ShimSigkill,
            p,
            "Its watchdog SIGKILLs every member of the instance cgroup through pidfds (there is no cgroup.kill here).",
        ),
        (false, _) if subreaper => holds(
            GuaranteeId::ShimSigkill,
            p,
            "With no instance cgroup, the shim runs under a keeper, a subreaper above it that kills whatever the \
             shim's death orphans (a SIGKILL of both at once leaves the cookie sweep and the ledger).",
        ),
        (false, _) if ok(CheckId::Proc) => degrades(
            GuaranteeId::ShimSigkill,
            p,
            "With no instance cgroup its watchdog finds the tree only by the environment cookie, which `env -i` \
             escapees do not carry.",
        ),
        (false, _) => degrades(
            GuaranteeId::ShimSigkill,
            p,
            "With no instance cgroup its watchdog finds the tree only by the environment cookie, which `env -i` \
             escapees do not carry and /proc does not fully show.",
        ),
    };

    let p = "Escapees that use `env -i` + setsid + double fork are caught";
    let escapees = match (cgroup, ok(CheckId::Subreaper)) {
        (true, _) => holds(
            GuaranteeId::Escapees,
            p,
            "Cgroup membership is inherited by every fork and cannot be left without privileges.",
        ),
        (false, true) => holds(
            GuaranteeId::Escapees,
            p,
            "The subreaper takes them back while the shim lives, and after a shim SIGKILL the keeper above it does.",
        ),
        (false, false) => degrades(
            GuaranteeId::Escapees,
            p,
            "With neither a cgroup nor a subreaper they are re-parented to init and nothing finds them.",
        ),
    };

    let p = "The pids cap (--max-procs) is enforceable";
    let pids_cap = match (cgroup, pids_via) {
        (true, Some(PidsVia::V2)) => holds(GuaranteeId::PidsCap, p, "Via pids.max in the instance's v2 cgroup."),
        (true, Some(PidsVia::V1)) => holds(
            GuaranteeId::PidsCap,
            p,
            "Via pids.max in a cgroup of the v1 pids hierarchy that the server joins before exec (v2 has no pids \
             controller here).",
        ),
        (true, None) => degrades(
            GuaranteeId::PidsCap,
            p,
            "Neither the v2 pids controller nor a writable v1 pids hierarchy is available, so the cap is not set.",
        ),
        (false, _) => degrades(
            GuaranteeId::PidsCap,
            p,
            "The cap lives beside an instance cgroup, and none can be made here.",
        ),
    };

    let p = "A recycled pid never receives a signal meant for a process Tether started";
    let pid_reuse = if ok(CheckId::Pidfd) {
        holds(
            GuaranteeId::PidReuse,
            p,
            "Signals go through pidfds, which refer to one process for as long as they are open.",
        )
    } else {
        degrades(
            GuaranteeId::PidReuse,
            p,
            "Without pidfds signals go by pid after re-checking the recorded identity, so a pid recycled between \
             the check and the kill would be hit.",
        )
    };

    let p = "Process identities recorded in the ledger are unique";
    let identity = if ok(CheckId::PidfsInodes) {
        holds(
            GuaranteeId::UniqueIdentity,
            p,
            "A pidfd's pidfs inode is never reused within a boot.",
        )
    } else {
        degrades(
            GuaranteeId::UniqueIdentity,
            p,
            "Identities fall back to (boot id, pid, start time), which collide when a pid is reused within one \
             clock tick.",
        )
    };

    vec![shim_sigkill, escapees, pids_cap, pid_reuse, identity]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::check::Status;

    fn all_ok() -> Vec<Check> {
        [
            CheckId::CgroupV2,
            CheckId::CgroupWritable,
            CheckId::CgroupKill,
            CheckId::Pidfd,
            CheckId::PidfsInodes,
            CheckId::Subreaper,
            CheckId::Proc,
        ]
        .into_iter()
        .map(|id| Check::ok(id, ""))
        .collect()
    }

    fn verdict(gs: &[Guarantee], id: GuaranteeId) -> Verdict {
        gs.iter().find(|g| g.id == id).unwrap().verdict
    }

    #[test]
    fn everything_holds_on_a_capable_host() {
        let gs = derive(&all_ok(), Some(PidsVia::V1));
        assert_eq!(gs.len(), 5);
        assert!(gs.iter().all(|g| g.verdict == Verdict::Holds), "{gs:?}");
        assert!(gs[2].why.contains("v1"));
    }

    #[test]
    fn no_writable_cgroup_degrades_the_cgroup_guarantees_only() {
        let mut checks = all_ok();
        checks[1] = Check::not_ok(CheckId::CgroupWritable, Status::Missing, "", "fix");
        let gs = derive(&checks, None);
        // The keeper carries these two.
        assert_eq!(verdict(&gs, GuaranteeId::ShimSigkill), Verdict::Holds);
        assert_eq!(verdict(&gs, GuaranteeId::Escapees), Verdict::Holds);
        assert_eq!(verdict(&gs, GuaranteeId::PidsCap), Verdict::Degrades);
        assert_eq!(verdict(&gs, GuaranteeId::PidReuse), Verdict::Holds);
        assert_eq!(verdict(&gs, GuaranteeId::UniqueIdentity), Verdict::Holds);
    }

    #[test]
    fn no_cgroup_and_no_subreaper_leaves_no_keeper() {
        let mut checks = all_ok();
        checks[1] = Check::not_ok(CheckId::CgroupWritable, Status::Missing, "", "fix");
        checks[5] = Check::not_ok(CheckId::Subreaper, Status::Missing, "", "fix");
        let gs = derive(&checks, None);
        assert_eq!(verdict(&gs, GuaranteeId::ShimSigkill), Verdict::Degrades);
        assert_eq!(verdict(&gs, GuaranteeId::Escapees), Verdict::Degrades);
    }

    #[test]
    fn old_kernels_degrade_identity_and_reuse() {
        let checks: Vec<Check> = all_ok()
            .into_iter()
            .filter(|c| !matches!(c.id, CheckId::Pidfd | CheckId::PidfsInodes))
            .collect();
        let gs = derive(&checks, Some(PidsVia::V2));
        assert_eq!(verdict(&gs, GuaranteeId::PidReuse), Verdict::Degrades);
        assert_eq!(verdict(&gs, GuaranteeId::UniqueIdentity), Verdict::Degrades);
        assert_eq!(verdict(&gs, GuaranteeId::PidsCap), Verdict::Holds);
    }
}
