//! Strangers: processes Tether did not start, which it must never signal. Some are plain
//! sleepers; some are placed on purpose, through `ns_last_pid`, at a pid the ledger recorded
//! for a server that has since died, so that a sweep trusting bare pids would kill them.
//!
//! They carry a cookie of their own (not the run's), so the survivor checks do not count them
//! and their cookie's drop ends them whatever happens.

use std::process::Child;

use crate::harness::{require, Cookie, Feature};
use crate::ledger::{bystander, bystander_with_pid};

/// Most bystanders placed at recycled pids of closed rows (each costs a few forks' worth of time;
/// these prove that nothing of Tether signals by a bare pid from its history).
pub const ENDED_CAP: usize = 12;
/// Most placed at a dead shim's pid whose row is still open when a sweep runs: the case a sweep
/// trusting bare pids would get wrong, so it has room of its own.
pub const SWEPT_CAP: usize = 48;

/// The population.
pub struct Bystanders {
    /// Their own cookie: ends them on drop.
    cookie: Cookie,
    /// Each bystander, with the pid it was given and how ("plain", "recycled").
    living: Vec<(Child, &'static str)>,
    /// Whether this host lets a test choose the next pid.
    pid_reuse: bool,
}

impl Bystanders {
    /// Starts `n` plain bystanders.
    pub fn start(n: usize) -> Bystanders {
        let cookie = Cookie::new();
        let living = (0..n).map(|_| (bystander(&cookie), "plain")).collect();
        let pid_reuse = require(
            Feature::PidReuse,
            "the chaos run's bystanders keep fresh pids (none at a recycled one)",
        );
        Bystanders {
            cookie,
            living,
            pid_reuse,
        }
    }

    /// Places a bystander at `pid`, a recorded pid whose process died, unless `cap` of them
    /// already sit at recycled pids; returns whether it got there (no pid reuse on this host,
    /// the cap reached, or other forks winning every race: not).
    pub fn recycle(&mut self, pid: i32, cap: usize) -> bool {
        if !self.pid_reuse || self.recycled() >= cap {
            return false;
        }
        match bystander_with_pid(&self.cookie, pid) {
            Ok(child) => {
                self.living.push((child, "recycled"));
                true
            }
            Err(why) => {
                eprintln!("chaos: no bystander at pid {pid}: {why}");
                false
            }
        }
    }

    /// How many sit at recycled pids.
    pub fn recycled(&self) -> usize {
        self.living.iter().filter(|(_, how)| *how == "recycled").count()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.living.len()
    }

    /// The bystanders that are no longer alive, described: each one a stranger signalled.
    pub fn signalled(&mut self) -> Vec<String> {
        self.living
            .iter_mut()
            .filter_map(|(child, how)| match child.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(format!("{how} bystander pid {} ended: {status}", child.id())),
                Err(e) => Some(format!("{how} bystander pid {}: {e}", child.id())),
            })
            .collect()
    }

    /// Ends them all (by pid, through their cookie) and proves none is left.
    pub fn end(mut self) {
        for (child, _) in &mut self.living {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.cookie.assert_none_survive(std::time::Duration::from_secs(5));
    }
}
