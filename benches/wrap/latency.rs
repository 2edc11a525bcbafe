//! Phase 1: round-trip latency of small `echo` calls, direct against wrapped.
//!
//! Unpinned first, as a real client runs; then with client and server pinned to one CPU and
//! to two, because on a small machine where the scheduler happens to place them moves the
//! median far more than the shim could. The shim's context switches are counted meanwhile:
//! they show that it sleeps while the client and server talk.

use anyhow::{Context, Result};

use crate::affinity::set_thread_affinity;
use crate::client::Server;
use crate::context::{Ctx, Mode};
use crate::messages::Echoes;
use crate::procfs::Status;
use crate::progress;
use crate::stats::{micros, Stats};

/// Interleaved rounds per mode, timed calls per round, untimed warm-up calls.
pub const RT_ROUNDS: usize = 5;
pub const RT_CALLS: usize = 5000;
pub const RT_WARMUP: usize = 200;
/// Rounds per mode for each pinned placement (same CPU, two CPUs).
pub const PINNED_ROUNDS: usize = 3;
/// The text every call echoes.
pub const ECHO_TEXT: &str = "hello from the tether bench";

/// Where the client (this bench) and the server run during round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the scheduler puts them, as for a real client.
    Free,
    /// Client and server pinned to the same CPU: every wake-up is a local context switch.
    SameCpu,
    /// Client and server pinned to two different CPUs: every wake-up crosses CPUs.
    CrossCpu,
}

impl Placement {
    pub fn describe(self) -> &'static str {
        match self {
            Placement::Free => "unpinned",
            Placement::SameCpu => "client and server on one CPU",
            Placement::CrossCpu => "client and server on two CPUs",
        }
    }

    /// The CPU sets for (the server's start, the client), from the CPUs we may use.
    fn cpus(self, allowed: &[usize]) -> (Vec<usize>, Vec<usize>) {
        let a = allowed.first().copied().unwrap_or(0);
        let b = allowed.get(1).copied().unwrap_or(a);
        match self {
            Placement::Free => (allowed.to_vec(), allowed.to_vec()),
            Placement::SameCpu => (vec![a], vec![a]),
            Placement::CrossCpu => (vec![b], vec![a]),
        }
    }
}

pub struct RoundTrips {
    /// Per mode: every timed round trip, in µs.
    pub all: [Vec<f64>; 2],
    /// Per mode: each round's median, in µs.
    pub rounds: [Vec<f64>; 2],
    /// Context switches of the shims while their round trips ran (0 if it is off the data path).
    pub shim_switches: u64,
    /// Wrapped round trips (warm-up included) during which those switches were counted.
    pub wrapped_calls: usize,
}

/// The round trips of every placement measured.
pub struct Latency {
    pub free: RoundTrips,
    /// Same CPU, and two CPUs if the bench may use two.
    pub pinned: Vec<(Placement, RoundTrips)>,
}

impl Latency {
    /// Every placement's round trips, unpinned first.
    pub fn all(&self) -> impl Iterator<Item = (Placement, &RoundTrips)> {
        std::iter::once((Placement::Free, &self.free)).chain(self.pinned.iter().map(|(p, r)| (*p, r)))
    }

    pub fn pinned(&self, placement: Placement) -> Option<&RoundTrips> {
        self.pinned.iter().find(|(p, _)| *p == placement).map(|(_, r)| r)
    }
}

pub fn measure(ctx: &Ctx) -> Result<Latency> {
    progress(format_args!(
        "round trips, unpinned: {RT_ROUNDS} rounds x {RT_CALLS} echo calls per mode"
    ));
    let free = round_trips(ctx, Placement::Free, RT_ROUNDS)?;
    let mut pinned = Vec::new();
    let placements: &[Placement] = if ctx.cpus.len() >= 2 {
        &[Placement::SameCpu, Placement::CrossCpu]
    } else {
        &[Placement::SameCpu]
    };
    for &p in placements {
        progress(format_args!(
            "round trips, {}: {PINNED_ROUNDS} rounds x {RT_CALLS} echo calls per mode",
            p.describe()
        ));
        pinned.push((p, round_trips(ctx, p, PINNED_ROUNDS)?));
    }
    Ok(Latency { free, pinned })
}

fn round_trips(ctx: &Ctx, placement: Placement, rounds: usize) -> Result<RoundTrips> {
    let mut rt = RoundTrips {
        all: Default::default(),
        rounds: Default::default(),
        shim_switches: 0,
        wrapped_calls: 0,
    };
    let echoes = Echoes::new(RT_WARMUP + RT_CALLS, ECHO_TEXT);
    let (server_cpus, client_cpus) = placement.cpus(&ctx.cpus);
    let result = (|| -> Result<()> {
        for round in 0..rounds {
            for mode in Mode::pair(round) {
                // The server (and for `wrap`, the shim) inherits the affinity of the thread
                // that spawns it; the client then moves to its own CPU.
                set_thread_affinity(&server_cpus)?;
                let mut server = Server::initialized(ctx, mode)?;
                set_thread_affinity(&client_cpus)?;
                let switches_before = match mode {
                    Mode::Wrapped => Some(context_switches(server.pid())?),
                    Mode::Direct => None,
                };
                let samples: Vec<f64> = server
                    .time_echoes(&echoes, RT_WARMUP)?
                    .into_iter()
                    .map(micros)
                    .collect();
                if let Some(before) = switches_before {
                    rt.shim_switches += context_switches(server.pid())?.saturating_sub(before);
                    rt.wrapped_calls += echoes.requests.len();
                }
                server.finish_ok(mode)?;
                let stats = Stats::of(&samples);
                progress(format_args!(
                    "  {} round {} {mode:?}: median {:.1} µs, p99 {:.1} µs",
                    placement.describe(),
                    round + 1,
                    stats.median,
                    stats.p99
                ));
                rt.rounds[mode.index()].push(stats.median);
                rt.all[mode.index()].extend(samples);
            }
        }
        Ok(())
    })();
    set_thread_affinity(&ctx.cpus)?;
    result.map(|()| rt)
}

/// Voluntary plus involuntary context switches of a (single-threaded) process so far.
fn context_switches(pid: i32) -> Result<u64> {
    let status = Status::read(pid).context("counting context switches")?;
    Ok(status.number("voluntary_ctxt_switches")? + status.number("nonvoluntary_ctxt_switches")?)
}
