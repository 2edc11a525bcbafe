//! Phase 5: session churn. Clients open a session, make one call (which starts the session's
//! own instance) and end it, as fast as they can, for a while; the gateway's processes, fds
//! and memory are sampled as it runs and once every instance is gone, to show that nothing
//! accumulates.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};

use crate::bins::Bins;
use crate::clients::{Caller, Http};
use crate::procfs;
use crate::services::Service;
use crate::{poll, progress};

/// How long the churn runs.
const RUN: Duration = Duration::from_secs(5);
/// How often the gateway is sampled while the churn runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Clients churning at once.
const CLIENTS: usize = 2;

/// The gateway at one moment.
#[derive(Clone, Copy)]
pub struct Sample {
    pub processes: usize,
    pub fds: usize,
    pub rss_kib: u64,
}

pub struct Churn {
    pub sessions_per_s: f64,
    /// Before the run, the busiest moment seen, and after every instance ended.
    pub before: Sample,
    pub peak: Sample,
    pub after: Sample,
    pub sessions: u64,
}

fn sample(pid: u32) -> Result<Sample> {
    Ok(Sample {
        processes: procfs::descendants(pid).len(),
        fds: procfs::fds(pid)?,
        rss_kib: procfs::rss(pid)?,
    })
}

pub fn measure(bins: &Bins) -> Result<Churn> {
    let fixture = crate::servers::Server::fixture(bins);
    let gw = Service::tether(bins, "churn", &fixture.table("c", &[], "lifetime = \"session\""))?;
    // One session first, so the gateway's one-time allocations are behind the baseline.
    let mut warm = Http::open(gw.addr, "/mcp/c")?;
    warm.echo(1, "echo")?;
    warm.delete()?;
    drop(warm);
    settle(gw.pid())?;
    let before = sample(gw.pid())?;
    progress(format_args!("churn: {} s, {CLIENTS} clients", RUN.as_secs()));
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let mut peak = before;
    let t = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut c = Http::connect(gw.addr, "/mcp/c")?;
                    while !stop.load(Ordering::Relaxed) {
                        c.initialize()?;
                        c.echo(1, "echo")?;
                        let status = c.delete()?;
                        ensure!(status == 200 || status == 204, "DELETE: status {status}");
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        // Sampled as it runs (every 250 ms once the first looks are past), until RUN is over or
        // a client failed.
        let mut failed = None;
        poll::until(RUN, SAMPLE_EVERY, || {
            match sample(gw.pid()) {
                Ok(now) => {
                    peak.processes = peak.processes.max(now.processes);
                    peak.fds = peak.fds.max(now.fds);
                    peak.rss_kib = peak.rss_kib.max(now.rss_kib);
                }
                Err(e) => failed = Some(e),
            }
            failed.is_some() || workers.iter().any(|w| w.is_finished())
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(e) = failed {
            return Err(e);
        }
        for w in workers {
            w.join().map_err(|_| anyhow!("a churn client panicked"))??;
        }
        Ok(())
    })?;
    let elapsed = t.elapsed();
    let sessions = count.load(Ordering::Relaxed);
    settle(gw.pid())?;
    // The clients' connections and the ended instances' pipes close as the gateway notices:
    // give it a moment (up to 5 s) to come back to where it started.
    poll::until(Duration::from_secs(5), Duration::from_millis(20), || {
        procfs::fds(gw.pid()).is_ok_and(|n| n <= before.fds)
    });
    let after = sample(gw.pid())?;
    Ok(Churn {
        sessions_per_s: sessions as f64 / elapsed.as_secs_f64(),
        before,
        peak,
        after,
        sessions,
    })
}

/// Waits until the gateway has no process left below it (every instance ended).
pub fn settle(pid: u32) -> Result<()> {
    let gone = poll::until(Duration::from_secs(60), Duration::from_millis(5), || {
        procfs::descendants(pid).is_empty()
    });
    ensure!(
        gone,
        "processes below the gateway 60 s after their sessions ended: {:?}",
        procfs::descendants(pid)
    );
    Ok(())
}
