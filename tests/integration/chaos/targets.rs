//! Finding the participants to kill: every candidate is found through the run's cookie or the
//! run's own ledger, so the driver, like Tether, never signals a process it did not start.

use tether_supervisor::ledger::{Ledger, ProcessRole};
use tether_supervisor::process::procfs;

use crate::harness::{is_named, Cookie};

/// Live carriers of the cookie whose command name is `comm` (`tether-watchdog`, `ssh`, …),
/// sorted so that a seed picks the same one.
pub fn named(cookie: &Cookie, comm: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = cookie.carriers().into_iter().filter(|&p| is_named(p, comm)).collect();
    pids.sort_unstable();
    pids
}

/// The live holders (shims) of the ledger's open instances that carry the cookie.
pub fn shims(cookie: &Cookie) -> Vec<i32> {
    let Ok(ledger) = Ledger::open(&cookie.state_dir()) else {
        return Vec::new();
    };
    let carriers = cookie.carriers();
    let mut pids: Vec<i32> = ledger
        .open_instances()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.intent.holder)
        .filter(|holder| holder.is_alive() && carriers.contains(&holder.pid))
        .map(|holder| holder.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The live servers (leaders: the fixture, or the local `ssh` of an SSH instance) of the
/// ledger's open instances.
pub fn servers(cookie: &Cookie) -> Vec<i32> {
    let carriers = cookie.carriers();
    leaders(cookie, true)
        .into_iter()
        .filter(|p| carriers.contains(p))
        .collect()
}

/// The dead servers of the ledger's open instances whose pids a stranger can get: the kernel
/// does not reuse the pid of a process group leader while its group has members.
pub fn dead_servers(cookie: &Cookie) -> Vec<i32> {
    let members: Vec<(i32, i32)> = procfs::all_pids()
        .into_iter()
        .filter_map(|q| Some((q, procfs::pgid_of(q)?)))
        .collect();
    leaders(cookie, false)
        .into_iter()
        .filter(|&p| !members.iter().any(|&(q, group)| group == p && q != p))
        .collect()
}

/// The recorded leaders of open instances, alive or not as asked, sorted.
fn leaders(cookie: &Cookie, alive: bool) -> Vec<i32> {
    let Ok(ledger) = Ledger::open(&cookie.state_dir()) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = ledger
        .open_processes()
        .unwrap_or_default()
        .into_values()
        .flatten()
        .filter(|p| p.role == ProcessRole::Leader && p.identity.is_alive() == alive)
        .map(|p| p.identity.pid)
        .collect();
    pids.sort_unstable();
    pids
}

/// `pids[index % len]`, or `None` when there is no candidate.
pub fn pick(pids: &[i32], index: u64) -> Option<i32> {
    (!pids.is_empty()).then(|| pids[(index % pids.len() as u64) as usize])
}

/// SIGKILLs `pid` (a process found above); false when it was already gone.
pub fn kill(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok()
}
