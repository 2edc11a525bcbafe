//! What the bench reads of a process in `/proc`: CPU time, memory, fds, and (through the
//! supervisor's own `procfs`) descendants, liveness, and the processes whose command line
//! carries the bench's tag.

use std::time::Duration;

use anyhow::{Context, Result};
use tether_supervisor::process::procfs as sup;

fn stat_fields(pid: u32) -> Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).context("stat")?;
    Ok(after.split_whitespace().map(str::to_string).collect())
}

/// CPU time of a process so far (user + system), from `/proc/<pid>/stat`.
pub fn cpu(pid: u32) -> Result<Duration> {
    let f = stat_fields(pid)?;
    let field = |i: usize| -> u64 { f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let ticks = field(11) + field(12);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}

fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{key} of {pid}"))
}

/// Resident memory, KiB.
pub fn rss(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// Peak resident memory so far, KiB.
pub fn peak_rss(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:")
}

/// Open file descriptors.
pub fn fds(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Whether the process is alive: it exists and has not exited (a zombie has: it is dead,
/// waiting for its parent to reap it).
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|p| sup::state_of(p).is_some_and(|s| s != 'Z' && s != 'X'))
}

/// Every process below `pid`.
pub fn descendants(pid: u32) -> Vec<u32> {
    i32::try_from(pid)
        .map(sup::descendants_of)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| u32::try_from(p).ok())
        .collect()
}

/// Every process whose command line contains `tag`, but this one.
pub fn tagged(tag: &str) -> Vec<u32> {
    let me = std::process::id();
    sup::all_pids()
        .into_iter()
        .filter(|&p| sup::cmdline_of(p).is_some_and(|c| c.contains(tag)))
        .filter_map(|p| u32::try_from(p).ok())
        .filter(|&p| p != me)
        .collect()
}

/// Processes among `pids` whose command line starts with `program` (the servers, not their
/// shims, whose command lines name them later).
pub fn running(pids: &[u32], program: &str) -> usize {
    pids.iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).next().is_some_and(|a| a == program.as_bytes()))
        })
        .count()
}

/// A process's proportional and private memory, KiB, from `smaps_rollup`.
pub struct Smaps {
    pub pss: u64,
    pub private: u64,
}

pub fn smaps(pid: u32) -> Result<Smaps> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let field = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Smaps {
        pss: field("Pss:"),
        private: field("Private_Clean:") + field("Private_Dirty:"),
    })
}
