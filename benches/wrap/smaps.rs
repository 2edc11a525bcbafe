//! What one process holds in memory, from `/proc/<pid>/status`, `smaps_rollup` and `smaps`.
//!
//! RSS alone overstates a small process whose pages are mostly shared libraries, so the
//! anonymous/file split, PSS and the per-mapping breakdown are read too.

use anyhow::Result;

use crate::procfs::{self, Status};

/// One process's memory, in KiB.
#[derive(Debug, Default, Clone, Copy)]
pub struct Mem {
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
    pub hwm: u64,
    /// From `smaps_rollup`, which not every kernel has.
    pub pss: Option<u64>,
}

pub fn read_mem(pid: i32) -> Result<Mem> {
    let status = Status::read(pid)?;
    let pss = procfs::read(pid, "smaps_rollup")
        .ok()
        .and_then(|s| procfs::number(&s, "Pss"));
    Ok(Mem {
        rss: status.number("VmRSS")?,
        anon: status.number("RssAnon")?,
        file: status.number("RssFile")?,
        shmem: status.number("RssShmem")?,
        hwm: status.number("VmHWM")?,
        pss,
    })
}

/// Resident KiB per mapped file (by base name) from `/proc/<pid>/smaps`, largest first;
/// anonymous memory, heap and stack are summed as "anonymous".
pub fn rss_by_file(pid: i32) -> Result<Vec<(String, u64)>> {
    let smaps = procfs::read(pid, "smaps")?;
    let mut sums: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    for l in smaps.lines() {
        let mut words = l.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // A mapping header: address perms offset dev inode [path].
            current = match words.nth(4) {
                Some(p) if p.starts_with('/') => p.rsplit('/').next().unwrap_or(p).to_owned(),
                _ => "anonymous".to_owned(),
            };
        } else if first == "Rss:" {
            let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match sums.iter_mut().find(|(n, _)| *n == current) {
                Some((_, sum)) => *sum += kib,
                None => sums.push((current.clone(), kib)),
            }
        }
    }
    sums.retain(|&(_, kib)| kib > 0);
    sums.sort_by_key(|s| std::cmp::Reverse(s.1));
    Ok(sums)
}
