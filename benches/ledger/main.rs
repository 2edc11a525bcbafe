//! What the ledger costs: its writes per spawn, and one sweep over 10,000 orphaned rows.
//!
//! Run with `cargo bench --bench ledger`. Progress goes to stderr; results to stdout as a
//! Markdown table for the README. Each figure is the median of repeated runs, in a fresh
//! state directory under the system's temp dir, removed afterwards.
//!
//! - *per spawn*: what a standalone `tether wrap` writes for one instance (open the ledger,
//!   owner, intent, the server's identity, end, owner end), with SQLite in WAL mode and
//!   `synchronous=NORMAL` as in production.
//! - *sweep*: 10,000 open instances whose shims are dead, each with a recorded server whose
//!   pid is free: identity checks, one `/proc` pass for cookies, closing every row.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tether_supervisor::ledger::{now_ms, Intent, Ledger, OwnerRow};
use tether_supervisor::process::identity::ProcessIdentity;
use tether_supervisor::process::procfs;
use tether_supervisor::sweep;

const SPAWNS: usize = 400;
const SWEEP_ROWS: usize = 10_000;
const SWEEP_RUNS: usize = 5;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench ledger: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let boot = procfs::boot_id()?;
    let me = ProcessIdentity::of_self().context("own identity")?;
    let per_spawn = bench_spawn_writes(&boot, me)?;
    let (sweep_times, first_report) = bench_sweep(&boot)?;
    println!("| Ledger | Median | Runs |");
    println!("|---|---|---|");
    println!(
        "| Writes per spawn (open, owner, intent, identity, end) | {} | {SPAWNS} |",
        ms(per_spawn)
    );
    println!(
        "| Sweep of {SWEEP_ROWS} orphaned rows (checks, /proc pass, close) | {} | {SWEEP_RUNS} |",
        ms(median(sweep_times))
    );
    eprintln!("last sweep: {first_report}");
    Ok(())
}

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tether-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn intent(boot: &str, holder: ProcessIdentity) -> Result<Intent> {
    Ok(Intent {
        id: tether_supervisor::ids::random_id()?,
        owner_id: tether_supervisor::ids::random_id()?,
        scope: "wrap".into(),
        server: "bench".into(),
        command: vec!["bench-server".into(), "--flag".into()],
        boot_id: boot.to_string(),
        holder,
        cgroup: None,
        cgroup_v1: None,
        layers: vec!["group".into(), "subreaper".into(), "pidfd".into()],
        remote: None,
    })
}

fn bench_spawn_writes(boot: &str, me: ProcessIdentity) -> Result<Duration> {
    let dir = scratch("spawn")?;
    eprintln!("ledger writes per spawn: {SPAWNS} spawns");
    let mut times = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let i = intent(boot, me)?;
        let t = Instant::now();
        let mut l = Ledger::open(&dir)?;
        let owner = OwnerRow {
            id: i.owner_id.clone(),
            kind: "wrap".into(),
            boot_id: boot.into(),
            identity: me,
            started_ms: now_ms(),
            ended_ms: None,
        };
        l.record_owner_and_intent(Some(&owner), &i)?;
        l.record_spawned(&i.id, &me, Some(me.pid), true)?;
        l.record_ended(&i.id, "bench", Some(&owner.id))?;
        drop(l);
        times.push(t.elapsed());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(median(times))
}

/// A process identity that is certainly dead: a pid above `pid_max`.
fn dead(n: usize) -> ProcessIdentity {
    ProcessIdentity {
        pid: 4_194_304 + i32::try_from(n % 1_000_000).unwrap_or(0),
        start_ticks: 1,
        pidfs_inode: None,
    }
}

fn fill(dir: &Path, boot: &str) -> Result<()> {
    let mut l = Ledger::open(dir)?;
    for n in 0..SWEEP_ROWS {
        let i = intent(boot, dead(n))?;
        l.record_intent(&i)?;
        l.record_spawned(&i.id, &dead(n + 1), None, true)?;
    }
    Ok(())
}

fn bench_sweep(boot: &str) -> Result<(Vec<Duration>, String)> {
    let mut times = Vec::new();
    let mut last = String::new();
    for run in 0..SWEEP_RUNS {
        let dir = scratch("sweep")?;
        eprintln!("sweep: filling {SWEEP_ROWS} rows (run {})", run + 1);
        fill(&dir, boot)?;
        let mut l = Ledger::open(&dir)?;
        let t = Instant::now();
        let report = sweep::sweep(&mut l, false)?;
        times.push(t.elapsed());
        anyhow::ensure!(
            report.orphaned_instances == SWEEP_ROWS,
            "expected {SWEEP_ROWS} orphans, swept {}",
            report.orphaned_instances
        );
        last = format!(
            "{} orphaned, {} live, {} killed, {} actions",
            report.orphaned_instances,
            report.live_instances,
            report.killed,
            report.actions.len()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok((times, last))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
