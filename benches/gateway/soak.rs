//! The soak (`scripts/soak [SECONDS]`, one hour by default; not part of `scripts/bench` or CI):
//! one gateway under every kind of churn at once for a long while, sampled every 30 s, to show
//! that nothing accumulates: processes, fds, memory and the ledger stay flat.
//!
//! What runs at once, each on its own thread:
//! - sessions opened, called and ended by DELETE, as fast as they go (`session` instances);
//! - sessions opened, called and abandoned, five a second: each ends at the gateway's
//!   `session_idle_timeout` (3 s here), as most real clients' sessions do;
//! - calls to a `shared` server that exits after every 20 calls (an upstream failure: the calls
//!   in flight get an error, the next call starts it again);
//! - a call every 3 s to a `shared` server with a 2 s `idle_timeout`: it ends and starts again;
//! - every 60 s, a reload that changes that server (its instance is ended and replaced).
//!
//! At the end every client stops, the abandoned sessions and idle instances run out, and the
//! gateway must have no process left below it. The report is a Markdown table of the samples
//! (every fifth, and the last) and the figures first against last, on stdout and in
//! `target/soak-report.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::bins::Bins;
use crate::churn::settle;
use crate::clients::{Caller, Http};
use crate::services::Service;
use crate::{poll, procfs, progress};

/// How often the gateway is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
/// How often the configuration is changed and reloaded.
const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// The gateway at one moment.
struct Sample {
    at: Duration,
    processes: usize,
    fds: usize,
    rss_kib: u64,
    ledger_kib: u64,
    sessions: u64,
    errors: u64,
}

/// The configuration, with the reloaded server's argument `variant`.
fn config(fixture: &Path, variant: u64) -> String {
    let fixture = crate::services::toml(fixture);
    format!(
        "[gateway]\nsession_idle_timeout = \"3s\"\n\n\
         [servers.churn]\ncommand = {fixture}\nlifetime = \"session\"\ngrace = \"500ms\"\n\n\
         [servers.idler]\ncommand = {fixture}\nlifetime = \"session\"\ngrace = \"500ms\"\n\n\
         [servers.flaky]\ncommand = {fixture}\nargs = [\"--exit-after\", \"20\"]\nidle_timeout = \"2s\"\n\n\
         [servers.reloaded]\ncommand = {fixture}\nargs = [\"--note\", \"variant {variant}\"]\nidle_timeout = \"2s\"\n"
    )
}

/// Runs the soak for `run`; the report, or why it failed.
pub fn run(bins: &Bins, run: Duration) -> Result<String> {
    let gw = Service::tether(bins, "soak", &config(&bins.fixture, 0))?;
    let config_path = bins.dir.join("soak.toml");
    let ledger = bins.dir.join("state-soak").join("ledger.sqlite3");
    progress(format_args!("soak: {} s, gateway pid {}", run.as_secs(), gw.pid()));
    let stop = AtomicBool::new(false);
    let sessions = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let mut samples = Vec::new();
    let t = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let addr = gw.addr;
        let (stop, sessions, errors) = (&stop, &sessions, &errors);
        // Every load loop counts what it did and an error instead of stopping: the soak is
        // about what accumulates, and a server that exits on purpose makes calls fail.
        let load = |path: &'static str, pace: Option<Duration>, end: fn(&mut Http) -> Result<()>| {
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let done = Http::connect(addr, path).and_then(|mut c| {
                        c.initialize()?;
                        c.echo(1, "echo")?;
                        end(&mut c)
                    });
                    match done {
                        Ok(()) => sessions.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                    if let Some(p) = pace {
                        poll::until(p, p, || stop.load(Ordering::Relaxed));
                    }
                }
            })
        };
        let deleted = |c: &mut Http| -> Result<()> {
            let status = c.delete()?;
            ensure!(status == 200 || status == 204, "DELETE: status {status}");
            Ok(())
        };
        let abandoned = |_: &mut Http| -> Result<()> { Ok(()) };
        let workers = [
            load("/mcp/churn", None, deleted),
            load("/mcp/idler", Some(Duration::from_millis(200)), abandoned),
            load("/mcp/flaky", Some(Duration::from_millis(20)), deleted),
            load("/mcp/reloaded", Some(Duration::from_secs(3)), deleted),
        ];
        let mut next_sample = Duration::ZERO;
        let mut next_reload = RELOAD_EVERY;
        let mut variant = 0;
        while t.elapsed() < run {
            let now = t.elapsed();
            if now >= next_sample {
                next_sample += SAMPLE_EVERY;
                samples.push(sample(now, gw.pid(), &ledger, sessions, errors)?);
            }
            if now >= next_reload {
                next_reload += RELOAD_EVERY;
                variant += 1;
                std::fs::write(&config_path, config(&bins.fixture, variant)).context("rewriting the soak's config")?;
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(gw.pid() as i32),
                    nix::sys::signal::Signal::SIGHUP,
                )
                .context("SIGHUP to the gateway")?;
            }
            let next = next_sample.min(next_reload).min(run);
            let wait = next.saturating_sub(t.elapsed());
            // Sleeps until the next sample or reload, unless a worker died.
            poll::until(wait, Duration::from_secs(1), || workers.iter().any(|w| w.is_finished()));
            ensure!(!workers.iter().any(|w| w.is_finished()), "a soak worker stopped");
        }
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    // The abandoned sessions end at their idle timeout, the shared instances at theirs.
    settle(gw.pid())?;
    // Connections whose client went away close as the gateway notices; a call that was in
    // flight to an instance that died ends at its request_timeout (60 s).
    poll::until(Duration::from_secs(75), Duration::from_millis(200), || {
        procfs::fds(gw.pid()).is_ok_and(|n| samples.first().is_some_and(|f| n <= f.fds))
    });
    samples.push(sample(t.elapsed(), gw.pid(), &ledger, &sessions, &errors)?);
    let kinds = fd_kinds(gw.pid());
    drop(gw);
    Ok(format!(
        "{}\nThe gateway's fds at the end, by kind: {kinds}\n",
        report(&samples)
    ))
}

/// The gateway `pid` at `at`, with the ledger's size and the clients' counts.
fn sample(at: Duration, pid: u32, ledger: &Path, sessions: &AtomicU64, errors: &AtomicU64) -> Result<Sample> {
    Ok(Sample {
        at,
        processes: procfs::descendants(pid).len(),
        fds: procfs::fds(pid)?,
        rss_kib: procfs::rss(pid)?,
        ledger_kib: file_kib(ledger) + file_kib(&ledger.with_extension("sqlite3-wal")),
        sessions: sessions.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
    })
}

/// The gateway's fds by what they are (socket, pipe, anon_inode, file), for a count that did
/// not come back.
fn fd_kinds(pid: u32) -> String {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in dir.flatten() {
            let target = std::fs::read_link(fd.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kind = target.split(':').next().unwrap_or("?").to_string();
            let kind = if kind.starts_with('/') {
                "file".to_string()
            } else {
                kind
            };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn file_kib(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() / 1024)
}

/// The samples as a Markdown table (every fifth, the last one marked as after the load).
fn report(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| at | processes | gateway fds | gateway RSS | ledger | sessions so far | errors so far |\n|---|---|---|---|---|---|---|\n",
    );
    let last = samples.len().saturating_sub(1);
    for (i, s) in samples.iter().enumerate() {
        if i % 5 != 0 && i != last {
            continue;
        }
        let at = if i == last {
            format!("{} min (load stopped, settled)", s.at.as_secs() / 60)
        } else {
            format!("{} min", s.at.as_secs() / 60)
        };
        let _ = writeln!(
            out,
            "| {at} | {} | {} | {:.1} MiB | {:.1} MiB | {} | {} |",
            s.processes,
            s.fds,
            s.rss_kib as f64 / 1024.0,
            s.ledger_kib as f64 / 1024.0,
            s.sessions,
            s.errors
        );
    }
    out
}
