//! A process's peak memory, from `/proc`: the proof that a flood or a huge message was refused
//! or passed on without being held whole.

/// The peak resident set of `pid` in KiB (`VmHWM`), 0 when it cannot be read.
pub fn peak_rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Asserts that the peak of `pid` grew by less than `mib` MiB since `before` (KiB).
pub fn assert_grew_less_than(pid: i32, before: u64, mib: u64, what: &str) {
    let after = peak_rss_kib(pid);
    assert!(after > 0, "no VmHWM for {pid}");
    assert!(
        after.saturating_sub(before) < mib * 1024,
        "{what}: the gateway's peak memory grew from {before} KiB to {after} KiB"
    );
}
