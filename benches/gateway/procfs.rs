//! What the bench reads of a process in `/proc`: CPU time, memory, fds, descendants, and
//! the processes whose command line carries the bench's tag.

use std::time::Duration;

use anyhow::{Context, Result};

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
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

/// Every process below `pid` (children of every thread, recursively).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let path = t.path().join("children");
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            for c in text.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// Every process whose command line contains `tag`, but this one.
pub fn tagged(tag: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(tag))
        })
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
