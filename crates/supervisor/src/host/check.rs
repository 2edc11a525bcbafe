//! One finding of the doctor: what was checked, how it came out, what was seen, and how to fix
//! it.
//!
//! The doctor's value is that it does not guess: every `detail` says what was read or which
//! system call was tried, so an operator can repeat it by hand, and every finding that is not
//! `ok` carries `advice` they can act on.

use serde::Serialize;

/// How a capability came out on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Present and working, proven by a read or a system call.
    Ok,
    /// Present but weaker than Tether wants; a fallback carries on.
    Degraded,
    /// Not available here.
    Missing,
}

impl Status {
    /// The word used in reports.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Missing => "missing",
        }
    }
}

/// Which capability a [`Check`] is about. The serialized names are stable: scripts key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// Kernel release, and whether it is new enough for each feature.
    Kernel,
    /// A cgroup v2 hierarchy holding this process.
    CgroupV2,
    /// Permission to create cgroups under this process's own v2 cgroup.
    CgroupWritable,
    /// `cgroup.kill` in an instance cgroup.
    CgroupKill,
    /// The `pids` controller in cgroup v2.
    PidsV2,
    /// The `pids` controller in a v1 hierarchy (hybrid hosts).
    PidsV1,
    /// The `pidfd_open` system call.
    Pidfd,
    /// pidfs: pidfd inodes that are unique process identities.
    PidfsInodes,
    /// `PR_SET_CHILD_SUBREAPER`.
    Subreaper,
    /// `PR_SET_PDEATHSIG`.
    Pdeathsig,
    /// `/proc`: other processes' environments (the cookie sweep) and the boot id.
    Proc,
}

impl CheckId {
    /// A short human label.
    pub fn title(self) -> &'static str {
        match self {
            CheckId::Kernel => "kernel",
            CheckId::CgroupV2 => "cgroup v2",
            CheckId::CgroupWritable => "cgroup writable",
            CheckId::CgroupKill => "cgroup.kill",
            CheckId::PidsV2 => "pids (cgroup v2)",
            CheckId::PidsV1 => "pids (cgroup v1)",
            CheckId::Pidfd => "pidfd",
            CheckId::PidfsInodes => "pidfs inodes",
            CheckId::Subreaper => "subreaper",
            CheckId::Pdeathsig => "pdeathsig",
            CheckId::Proc => "/proc",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub id: CheckId,
    /// How it came out.
    pub status: Status,
    /// What was found, and how (which file was read, which system call was tried).
    pub detail: String,
    /// When not `ok`: a command or configuration change that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl Check {
    /// A finding with nothing to fix.
    pub fn ok(id: CheckId, detail: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            detail: detail.into(),
            advice: None,
        }
    }

    /// A finding that is not `ok`, with its fix.
    pub fn not_ok(id: CheckId, status: Status, detail: impl Into<String>, advice: impl Into<String>) -> Check {
        Check {
            id,
            status,
            detail: detail.into(),
            advice: Some(advice.into()),
        }
    }

    /// True when the status is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_stable_names_and_omits_empty_advice() {
        let json = serde_json::to_value(Check::ok(CheckId::PidfsInodes, "x")).unwrap();
        assert_eq!(json["id"], "pidfs_inodes");
        assert_eq!(json["status"], "ok");
        assert!(json.get("advice").is_none());
        let bad = Check::not_ok(CheckId::CgroupV2, Status::Missing, "none", "mount it");
        assert_eq!(serde_json::to_value(bad).unwrap()["advice"], "mount it");
    }
}
