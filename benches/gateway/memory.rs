//! Phase 3's memory figures: the resident memory of the process in between, idle and at its
//! peak under load, and what one more idle session costs the gateway.

use anyhow::Result;

use crate::bins::Bins;
use crate::clients::{Caller, Http};
use crate::procfs;
use crate::progress;
use crate::services::Service;

/// Idle sessions opened to measure one.
pub const IDLE_SESSIONS: usize = 2000;
/// Idle sessions opened each with a connection of its own.
pub const IDLE_CONNECTED: usize = 500;

/// KiB of resident memory per idle session: `IDLE_SESSIONS` opened over one connection (so
/// that what is counted is the sessions, not connections), nothing more, in a gateway of its
/// own that has served nothing else (a gateway after a load has freed memory to reuse, which
/// would hide the sessions' cost).
pub fn per_session(bins: &Bins) -> Result<(f64, f64)> {
    progress(format_args!("memory: {IDLE_SESSIONS} idle sessions"));
    let fixture = crate::servers::Server::fixture(bins);
    let gw = Service::tether(bins, "idle", &fixture.table("fixture", &[], ""))?;
    let path = "/mcp/fixture";
    // The shared instance started, and one session opened and ended: one-time costs paid.
    let mut c = Http::open(gw.addr, path)?;
    c.echo(1, "echo")?;
    c.delete()?;
    let before = procfs::rss(gw.pid())?;
    let mut ids = Vec::with_capacity(IDLE_SESSIONS);
    for _ in 0..IDLE_SESSIONS {
        c.initialize()?;
        ids.extend(c.take_session());
    }
    let after = procfs::rss(gw.pid())?;
    for id in ids {
        c.use_session(id);
        c.delete()?;
    }
    let alone = after.saturating_sub(before) as f64 / IDLE_SESSIONS as f64;
    // The same with a connection each, as when every client keeps its own open.
    let before = procfs::rss(gw.pid())?;
    let mut held = Vec::with_capacity(IDLE_CONNECTED);
    for _ in 0..IDLE_CONNECTED {
        held.push(Http::open(gw.addr, path)?);
    }
    let after = procfs::rss(gw.pid())?;
    for c in &mut held {
        c.delete()?;
    }
    Ok((alone, after.saturating_sub(before) as f64 / IDLE_CONNECTED as f64))
}

/// Resident memory now and at the peak so far, KiB.
pub struct Rss {
    pub idle: u64,
    pub peak: u64,
}

impl Rss {
    pub fn idle(service: &Service) -> Result<u64> {
        procfs::rss(service.pid())
    }

    pub fn peak(service: &Service, idle: u64) -> Result<Rss> {
        Ok(Rss {
            idle,
            peak: procfs::peak_rss(service.pid())?,
        })
    }
}
