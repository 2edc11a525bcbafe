//! `/proc` as the sweeps need it: other processes' environments (the cookie sweep finds an
//! instance's processes by `TETHER_INSTANCE` in `/proc/PID/environ`) and the boot id (process
//! identities mean nothing across boots).
//!
//! The mount options come from `/proc/self/mountinfo` (`hidepid=` hides other users'
//! processes, `subset=pid` hides `/proc/sys`); readability is tried on every process.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use crate::process::procfs;

use crate::host::check::{Check, CheckId, Status};

/// What was found about `/proc`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcFacts {
    /// The `hidepid=` option of the `/proc` mount, if any.
    pub hidepid: Option<String>,
    /// The `subset=` option of the `/proc` mount, if any.
    pub subset: Option<String>,
    /// Other processes seen in `/proc`.
    pub processes: usize,
    /// Of those, how many had a readable `environ`.
    pub environ_readable: usize,
}

/// The options of the mount at `/proc`, or None when nothing is mounted there.
pub fn proc_mount_options(mountinfo: &str) -> Option<Vec<String>> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        let (fstype, _source, super_options) = (right.next()?, right.next()?, right.next().unwrap_or(""));
        let fields: Vec<&str> = left.split_whitespace().collect();
        (fstype == "proc" && fields.get(4) == Some(&"/proc")).then(|| {
            let mount_options = fields.get(5).copied().unwrap_or("");
            mount_options
                .split(',')
                .chain(super_options.split(','))
                .map(str::to_string)
                .collect()
        })
    })
}

fn option_value(options: &[String], key: &str) -> Option<String> {
    options
        .iter()
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

/// Checks `/proc`, given the text of `/proc/self/mountinfo`.
pub fn check(mountinfo: &str) -> (Check, ProcFacts) {
    let mut facts = ProcFacts::default();
    let Some(options) = proc_mount_options(mountinfo) else {
        let check = Check::not_ok(
            CheckId::Proc,
            Status::Missing,
            "nothing of type proc is mounted at /proc (/proc/self/mountinfo)",
            "mount it: `mount -t proc proc /proc`",
        );
        return (check, facts);
    };
    facts.hidepid = option_value(&options, "hidepid");
    facts.subset = option_value(&options, "subset");
    if let Err(e) = fs::read("/proc/self/environ") {
        let detail = format!("reading /proc/self/environ: {e}");
        return (
            Check::not_ok(
                CheckId::Proc,
                Status::Missing,
                detail,
                "mount it: `mount -t proc proc /proc`",
            ),
            facts,
        );
    }
    if let Err(e) = procfs::boot_id() {
        let detail = format!(
            "reading /proc/sys/kernel/random/boot_id: {e} (subset={:?})",
            facts.subset
        );
        let advice = "mount /proc without `subset=pid`, e.g. a fresh `mount -t proc proc /proc`";
        return (Check::not_ok(CheckId::Proc, Status::Missing, detail, advice), facts);
    }

    let me = std::process::id() as i32;
    let euid = nix::unistd::geteuid().as_raw();
    let own_caps = permitted_caps("self");
    // Same-uid processes whose environment stayed closed: (pid, error, more privileged than us).
    let mut refused = Vec::new();
    for pid in procfs::all_pids().into_iter().filter(|&p| p != me) {
        let Ok(owner) = fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()) else {
            continue;
        };
        match fs::read(format!("/proc/{pid}/environ")) {
            Ok(_) => facts.environ_readable += 1,
            // Gone between the listing and the read.
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => continue,
            Err(e) if owner == euid => {
                let privileged = match (own_caps, permitted_caps(&pid.to_string())) {
                    (Some(ours), Some(theirs)) => theirs & !ours != 0,
                    _ => false,
                };
                refused.push((pid, e, privileged));
            }
            Err(_) => {}
        }
        facts.processes += 1;
    }

    let mut detail = format!(
        "read /proc/PID/environ of {} of {} other processes as uid {euid}; boot_id readable; /proc mounted with {}",
        facts.environ_readable,
        facts.processes,
        match (&facts.hidepid, &facts.subset) {
            (None, None) => "neither hidepid nor subset".to_string(),
            (h, s) => format!(
                "hidepid={} subset={}",
                h.as_deref().unwrap_or("0"),
                s.as_deref().unwrap_or("")
            ),
        }
    );
    if facts.hidepid.as_deref().is_some_and(|h| h != "0" && h != "off") && euid != 0 {
        detail.push_str(" (it hides other users' processes; the cookie sweep only looks for yours)");
    }
    let (privileged, plain): (Vec<_>, Vec<_>) = refused.into_iter().partition(|r| r.2);
    if let Some((pid, e, _)) = privileged.first() {
        detail.push_str(&format!(
            "; {} of uid {euid} refused (e.g. pid {pid} {}: {e}), all holding capabilities this process lacks, \
             so none is a plain descendant of Tether",
            count(privileged.len()),
            program(*pid)
        ));
    }
    let Some((pid, e, _)) = plain.first() else {
        return (Check::ok(CheckId::Proc, detail), facts);
    };
    detail.push_str(&format!(
        "; {} of uid {euid} with no more privileges than this one refused (e.g. pid {pid} {}: {e}): \
         non-dumpable, or a security module says no",
        count(plain.len()),
        program(*pid)
    ));
    let check = Check::not_ok(
        CheckId::Proc,
        Status::Degraded,
        detail,
        "a server whose environment cannot be read escapes the cookie sweep: rely on the cgroup layer (see \
         cgroup_writable), or run Tether as root",
    );
    (check, facts)
}

/// The program name of `pid`, for messages.
fn program(pid: i32) -> String {
    let cmdline = procfs::cmdline_of(pid).unwrap_or_default();
    let first = cmdline.split_whitespace().next().unwrap_or("?");
    first.rsplit('/').next().unwrap_or(first).to_string()
}

/// "1 process", "3 processes".
fn count(n: usize) -> String {
    if n == 1 {
        "1 process".to_string()
    } else {
        format!("{n} processes")
    }
}

/// The permitted capability set of `/proc/<who>`, from its `status`.
fn permitted_caps(who: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{who}/status")).ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapPrm:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw,hidepid=invisible,subset=pid
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
50 22 0:40 / /proc/sys/fs/binfmt_misc rw,relatime - binfmt_misc binfmt_misc rw
";

    #[test]
    fn reads_hidepid_and_subset_of_the_proc_mount() {
        let options = proc_mount_options(MOUNTINFO).unwrap();
        assert_eq!(option_value(&options, "hidepid").as_deref(), Some("invisible"));
        assert_eq!(option_value(&options, "subset").as_deref(), Some("pid"));
        assert_eq!(option_value(&options, "gid"), None);
        assert!(proc_mount_options("27 1 254:0 / / rw - ext4 /dev/vda rw\n").is_none());
    }

    #[test]
    fn this_process_can_read_its_own_proc() {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let (check, facts) = check(&text);
        assert_ne!(check.status, Status::Missing, "{check:?}");
        assert!(facts.environ_readable <= facts.processes);
    }
}
