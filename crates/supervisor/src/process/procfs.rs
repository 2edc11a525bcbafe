//! Reading process facts from `/proc`: children, environment, start time, boot id.
//!
//! Every function tolerates processes vanishing mid-read (they do, all the time): a process
//! that is gone simply yields nothing.

use std::fs;
use std::io;

/// A process's command name (`/proc/PID/comm`), or `None` when it is gone.
pub fn comm(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

/// The pids of this process's direct children, zombies included, from
/// `/proc/self/task/*/children`, or by scanning every `/proc/PID/stat` for our pid as parent
/// on kernels built without that file.
pub fn own_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut kids = Vec::new();
    let mut have_children_file = false;
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                have_children_file = true;
                kids.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    if !have_children_file {
        kids = all_pids().into_iter().filter(|&p| parent_of(p) == Some(me)).collect();
    }
    kids
}

/// The direct children of `pid` (all its threads'), empty when the kernel lacks the
/// `children` file or the process is gone.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                kids.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    kids
}

/// Every descendant of `pid` (not `pid` itself), walking the `children` files; a process that
/// appears twice while the tree changes under the walk is listed once.
pub fn descendants_of(pid: i32) -> Vec<i32> {
    let mut seen = std::collections::HashSet::new();
    let mut queue = children_of(pid);
    let mut out = Vec::new();
    while let Some(p) = queue.pop() {
        if seen.insert(p) {
            out.push(p);
            queue.extend(children_of(p));
        }
    }
    out
}

/// Every pid currently in `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .collect()
}

/// Fields of `/proc/PID/stat` after the command name, which may itself hold spaces and parens.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// The parent pid of `pid`.
pub fn parent_of(pid: i32) -> Option<i32> {
    // After the command: state(0) ppid(1).
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// How many threads this process has: the entries of `/proc/self/task` (`/proc/self`, right
/// in any pid namespace; no line to split).
pub fn own_thread_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// The one-letter state of `pid` (R, S, D, Z, T, …).
pub fn state_of(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// The process group of `pid`.
pub fn pgid_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// The start time of `pid` in clock ticks since boot: with the boot id, an identity that
/// survives until the pid is reused within one tick.
pub fn start_time_of(pid: i32) -> Option<u64> {
    // After the command, starttime is field 22 of stat, i.e. index 19 here.
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// True when `pid`'s environment holds exactly the entry `needle` (`NAME=value`).
pub fn environ_has(pid: i32, needle: &[u8]) -> bool {
    match fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env.split(|&b| b == 0).any(|entry| entry == needle),
        Err(_) => false,
    }
}

/// The value of the environment entry of `pid` starting with `prefix` (`NAME=`), if any.
pub fn environ_value(pid: i32, prefix: &[u8]) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(prefix))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The command line of `pid`, arguments joined by spaces, for reports.
pub fn cmdline_of(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    Some(parts.join(" "))
}

/// The resident set size of `pid` in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    Some(pages * u64::try_from(page).ok()? / 1024)
}

/// The CPU time `pid` has used, user and system, in milliseconds.
pub fn cpu_ms(pid: i32) -> Option<u64> {
    // After the command, utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 here.
    let fields = stat_fields(pid)?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = u64::try_from(nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??).ok()?;
    Some(ticks * 1000 / hz.max(1))
}

/// Seconds since `pid` started, from its start time and the system's uptime.
pub fn age_secs(pid: i32) -> Option<f64> {
    let start = start_time_of(pid)?;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some((uptime - start as f64 / hz as f64).max(0.0))
}

/// The id of the current boot: pids and start times mean nothing across boots.
pub fn boot_id() -> io::Result<String> {
    Ok(fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_facts() {
        let me = std::process::id() as i32;
        assert!(parent_of(me).is_some());
        assert!(start_time_of(me).is_some());
        assert!(matches!(state_of(me), Some('R' | 'S')));
        assert!(!boot_id().unwrap().is_empty());
        assert!(all_pids().contains(&me));
    }

    #[test]
    fn vanished_pid_yields_nothing() {
        assert_eq!(parent_of(i32::MAX - 1), None);
        assert!(!environ_has(i32::MAX - 1, b"A=B"));
    }
}
