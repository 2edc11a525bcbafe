//! The report on stdout: Markdown tables, one section per phase in the order they ran, ready
//! to paste into a README.
//!
//! Nothing here measures; most sections are a direct-against-wrapped table
//! ([`comparison`]) with the difference in the last column.

use std::fmt::Write as _;

use anyhow::Result;

use crate::large_line::{BIG_CALLS, BIG_LEN, BIG_ROUNDS};
use crate::latency::{Latency, Placement, RoundTrips, ECHO_TEXT, PINNED_ROUNDS, RT_CALLS, RT_ROUNDS, RT_WARMUP};
use crate::memory::{Memory, MEM_SAMPLES, SHIM_RSS_TARGET_KIB};
use crate::smaps::Mem;
use crate::startup::{Startups, START_ITERS};
use crate::stats::{lower_median, Stats};

/// Everything the phases measured.
pub struct Results {
    pub latency: Latency,
    pub startups: Startups,
    pub memory: Memory,
    /// Per mode, ms per large-line call.
    pub large_lines: [Vec<f64>; 2],
}

pub fn write(out: &mut String, results: &Results) -> Result<()> {
    writeln!(out)?;
    writeln!(out, "{}", machine_facts(&results.memory))?;
    writeln!(out)?;
    round_trips(out, &results.latency.free)?;
    placements(out, &results.latency)?;
    startups(out, &results.startups)?;
    memory(out, &results.memory)?;
    large_lines(out, &results.large_lines)?;
    Ok(())
}

/// A table header in `unit` and one row per `(name, direct, wrapped)`, with the difference.
fn comparison(out: &mut String, unit: &str, rows: &[(&str, f64, f64)], decimals: usize) -> Result<()> {
    writeln!(out, "| {unit} | direct | `tether wrap` | wrapped − direct |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for &(name, a, b) in rows {
        writeln!(
            out,
            "| {name} | {a:.decimals$} | {b:.decimals$} | {} |",
            signed(b - a, decimals)
        )?;
    }
    Ok(())
}

fn signed(x: f64, decimals: usize) -> String {
    format!("{x:+.decimals$}")
}

fn round_trips(out: &mut String, rt: &RoundTrips) -> Result<()> {
    let [d, w] = Stats::per_mode(&rt.all);
    writeln!(
        out,
        "**Round trip** (`tools/call` echo, {} bytes of text, sequential; {RT_ROUNDS} interleaved rounds × {RT_CALLS} calls per mode, after {RT_WARMUP} warm-up calls)",
        ECHO_TEXT.len()
    )?;
    writeln!(out)?;
    let rows = [
        ("median", d.median, w.median),
        ("p90", d.p90, w.p90),
        ("p99", d.p99, w.p99),
        ("mean", d.mean, w.mean),
    ];
    comparison(out, "µs", &rows, 1)?;
    let join = |v: &[String]| v.join(" / ");
    let rounds = |v: &[f64]| join(&v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>());
    let round_diffs: Vec<String> = rt.rounds[1]
        .iter()
        .zip(&rt.rounds[0])
        .map(|(b, a)| signed(b - a, 1))
        .collect();
    writeln!(
        out,
        "| median per round | {} | {} | {} |",
        rounds(&rt.rounds[0]),
        rounds(&rt.rounds[1]),
        join(&round_diffs)
    )?;
    writeln!(out)?;
    Ok(())
}

fn placements(out: &mut String, latency: &Latency) -> Result<()> {
    writeln!(
        out,
        "**Round trip by CPU placement** (same calls; client and server pinned with `sched_setaffinity`, {PINNED_ROUNDS} interleaved rounds × {RT_CALLS} calls per mode)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| placement | direct median µs | wrapped median µs | Δ median | direct p99 µs | wrapped p99 µs | Δ p99 |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
    for (placement, r) in latency.all() {
        let [a, b] = Stats::per_mode(&r.all);
        writeln!(
            out,
            "| {} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {} |",
            placement.describe(),
            a.median,
            b.median,
            signed(b.median - a.median, 1),
            a.p99,
            b.p99,
            signed(b.p99 - a.p99, 1)
        )?;
    }
    writeln!(out)?;
    if let (Some(same), Some(cross)) = (latency.pinned(Placement::SameCpu), latency.pinned(Placement::CrossCpu)) {
        let both = |r: &RoundTrips| Stats::of(&[&r.all[0][..], &r.all[1][..]].concat()).median;
        let threshold = (both(same) + both(cross)) / 2.0;
        let share = |v: &[f64]| 100.0 * v.iter().filter(|&&x| x < threshold).count() as f64 / v.len().max(1) as f64;
        writeln!(
            out,
            "Unpinned, {:.0}% (direct) and {:.0}% (wrapped) of round trips took under {threshold:.0} µs, as if on one CPU; the rest crossed CPUs. Unpinned medians move with that share.",
            share(&latency.free.all[0]),
            share(&latency.free.all[1])
        )?;
    }
    let shim_switches: u64 = latency.all().map(|(_, r)| r.shim_switches).sum();
    let wrapped_calls: usize = latency.all().map(|(_, r)| r.wrapped_calls).sum();
    writeln!(
        out,
        "The shims made {shim_switches} context switches in all during {wrapped_calls} wrapped round trips: they sleep in `poll` and no byte passes through them."
    )?;
    writeln!(out)?;
    Ok(())
}

fn startups(out: &mut String, st: &Startups) -> Result<()> {
    let [su_d, su_w] = Stats::per_mode(&st.startup);
    let [td_d, td_w] = Stats::per_mode(&st.teardown);
    writeln!(
        out,
        "**Start-up** (spawn → `initialize` reply) and **teardown** (stdin closed → exit), {START_ITERS} interleaved runs per mode"
    )?;
    writeln!(out)?;
    let rows = [
        ("start-up median", su_d.median, su_w.median),
        ("start-up p90", su_d.p90, su_w.p90),
        ("teardown median", td_d.median, td_w.median),
        ("teardown p90", td_d.p90, td_w.p90),
    ];
    comparison(out, "ms", &rows, 2)?;
    writeln!(out)?;
    Ok(())
}

fn memory(out: &mut String, mem: &Memory) -> Result<()> {
    let med = |v: &[Mem], f: fn(&Mem) -> u64| lower_median(v.iter().map(f).collect()).unwrap_or(0);
    let pss_med =
        |v: &[Mem]| lower_median(v.iter().filter_map(|m| m.pss).collect()).map_or("–".to_owned(), |x| x.to_string());
    writeln!(
        out,
        "**Memory** once the server is ready (KiB, from `/proc/<pid>/status` and `smaps_rollup`; median of {MEM_SAMPLES} instances)"
    )?;
    writeln!(out)?;
    writeln!(out, "| process | VmRSS | RssAnon | RssFile | RssShmem | VmHWM | Pss |")?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
    let direct = [mem.direct];
    let keeper = [("`tether-keeper` (no cgroup)", &mem.keeper[..])];
    let keeper = keeper.into_iter().filter(|(_, v)| !v.is_empty());
    for (name, v) in keeper.chain([
        ("`tether wrap` shim", &mem.shim[..]),
        ("`tether-watchdog`", &mem.watchdog[..]),
        ("fixture (wrapped)", &mem.fixture[..]),
        ("fixture (direct)", &direct[..]),
    ]) {
        writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            med(v, |m| m.rss),
            med(v, |m| m.anon),
            med(v, |m| m.file),
            med(v, |m| m.shmem),
            med(v, |m| m.hwm),
            pss_med(v)
        )?;
    }
    let shim_rss = med(&mem.shim, |m| m.rss);
    writeln!(out)?;
    writeln!(
        out,
        "Shim RSS {shim_rss} KiB: {} the {SHIM_RSS_TARGET_KIB} KiB target (shim + watchdog: {} KiB RSS).",
        if shim_rss <= SHIM_RSS_TARGET_KIB {
            "within"
        } else {
            "OVER"
        },
        shim_rss + med(&mem.watchdog, |m| m.rss)
    )?;
    let by_file: Vec<String> = mem.shim_by_file.iter().map(|(n, k)| format!("{n} {k}")).collect();
    writeln!(out, "Shim RSS by mapping (KiB): {}.", by_file.join(", "))?;
    writeln!(out)?;
    Ok(())
}

fn large_lines(out: &mut String, ms: &[Vec<f64>; 2]) -> Result<()> {
    let [d, w] = Stats::per_mode(ms);
    let mib_s = |ms: f64| 2.0 * BIG_LEN as f64 / (1 << 20) as f64 / (ms / 1e3);
    writeln!(
        out,
        "**Large line** (1 MiB echo text, request and reply each ~1 MiB; {} calls per mode in {BIG_ROUNDS} interleaved rounds)",
        BIG_ROUNDS * BIG_CALLS
    )?;
    writeln!(out)?;
    comparison(out, "ms", &[("median", d.median, w.median), ("p90", d.p90, w.p90)], 2)?;
    writeln!(
        out,
        "| MiB/s moved (2 MiB per call, at median) | {:.0} | {:.0} | |",
        mib_s(d.median),
        mib_s(w.median)
    )?;
    writeln!(out)?;
    Ok(())
}

fn machine_facts(mem: &Memory) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "?".to_owned());
    let disabled = std::env::var("TETHER_DISABLE").unwrap_or_default();
    format!(
        "Machine: nproc {nproc}, kernel {kernel}, CPU {cpu}; tether {} (release); containment: {}{}",
        env!("CARGO_PKG_VERSION"),
        mem.layers.as_deref().unwrap_or("?"),
        if disabled.is_empty() {
            String::new()
        } else {
            format!(" (TETHER_DISABLE={disabled})")
        }
    )
}
