//! Phase 3's memory figures: the resident memory of the process in between, idle and at its
//! peak under load, and what one more idle session costs the gateway.

use anyhow::Result;

use crate::clients::Http;
use crate::procfs;
use crate::progress;
use crate::services::Service;

/// Idle sessions opened to measure one.
pub const IDLE_SESSIONS: usize = 500;

/// KiB of resident memory per idle session: `IDLE_SESSIONS` opened at `path` over one
/// connection (so that what is counted is the sessions, not connections), nothing more.
pub fn per_session(gw: &Service, path: &str) -> Result<f64> {
    progress(format_args!("memory: {IDLE_SESSIONS} idle sessions"));
    let mut c = Http::connect(gw.addr, path)?;
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
    Ok(after.saturating_sub(before) as f64 / IDLE_SESSIONS as f64)
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
