//! Phase 6: a thousand sessions at once, each with its own `session` instance of the fixture:
//! all opened and served, all ended, none left (counted in `/proc`, by the bench's tag).

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};

use crate::bins::Bins;
use crate::clients::{Caller, Http};
use crate::progress;
use crate::services::Service;
use crate::{poll, procfs};

pub const SESSIONS: usize = 1000;
/// Connections the sessions are opened over.
const CONNECTIONS: usize = 16;

pub struct Thousand {
    /// Seconds to open every session and make its first call (its instance started).
    pub open_s: f64,
    /// Fixture servers running at the peak.
    pub servers: usize,
    /// Every process below the gateway at the peak (shims, watchdogs, servers).
    pub processes: usize,
    pub rss_kib: u64,
    pub fds: usize,
    /// Per instance, what its shim and watchdog cost (not the server): proportional set
    /// size and private memory, KiB, with every instance running.
    pub overhead_pss_kib: f64,
    pub overhead_private_kib: f64,
    /// Seconds from the first DELETE to the last process gone.
    pub end_s: f64,
    /// Processes with the bench's tag after the end.
    pub left: usize,
}

pub fn measure(bins: &Bins) -> Result<Thousand> {
    let fixture = crate::servers::Server::fixture(bins);
    let gw = Service::tether(bins, "thousand", &fixture.table("m", &[], "lifetime = \"session\""))?;
    progress(format_args!("{SESSIONS} sessions at once"));
    let per = SESSIONS / CONNECTIONS;
    let t = Instant::now();
    let mut held: Vec<(Http, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let n = if i + 1 == CONNECTIONS { SESSIONS - per * i } else { per };
                let addr = gw.addr;
                s.spawn(move || -> Result<(Http, Vec<String>)> {
                    let mut c = Http::connect(addr, "/mcp/m")?;
                    let mut ids = Vec::new();
                    for _ in 0..n {
                        c.initialize()?;
                        c.echo(1, "echo")?;
                        ids.extend(c.take_session());
                    }
                    Ok((c, ids))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a client thread panicked"))?)
            .collect::<Result<_>>()
    })?;
    let open_s = t.elapsed().as_secs_f64();
    let below = procfs::descendants(gw.pid());
    let servers = procfs::running(&below, &fixture.argv[0]);
    ensure!(
        servers == SESSIONS,
        "{servers} fixture servers running for {SESSIONS} sessions"
    );
    let (rss_kib, fds) = (procfs::rss(gw.pid())?, procfs::fds(gw.pid())?);
    let (mut pss, mut private) = (0u64, 0u64);
    for p in below.iter().filter(|&&p| procfs::running(&[p], &fixture.argv[0]) == 0) {
        if let Ok(m) = procfs::smaps(*p) {
            pss += m.pss;
            private += m.private;
        }
    }
    progress(format_args!("ending {SESSIONS} sessions"));
    let t = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = held
            .iter_mut()
            .map(|(c, ids)| {
                s.spawn(move || -> Result<()> {
                    for id in ids.drain(..) {
                        c.use_session(id);
                        let status = c.delete()?;
                        ensure!(status == 200 || status == 204, "DELETE: status {status}");
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow!("a client thread panicked"))??;
        }
        Ok(())
    })?;
    let tag = bins.tag();
    let ended = poll::until(Duration::from_secs(120), Duration::from_millis(10), || {
        procfs::descendants(gw.pid()).is_empty() && procfs::running(&procfs::tagged(&tag), &fixture.argv[0]) == 0
    });
    let end_s = t.elapsed().as_secs_f64();
    ensure!(ended, "instances still running 120 s after their sessions ended");
    drop(gw);
    let left = procfs::tagged(&tag).len();
    Ok(Thousand {
        open_s,
        servers,
        processes: below.len(),
        rss_kib,
        fds,
        overhead_pss_kib: pss as f64 / servers as f64,
        overhead_private_kib: private as f64 / servers as f64,
        end_s,
        left,
    })
}
