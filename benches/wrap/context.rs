//! What every phase shares: the binaries, the instance ids of this run, the CPUs the bench
//! may use, and the two ways of starting the server that each phase compares ([`Mode`]).
//!
//! Every wrapped server gets an instance id that starts with this run's prefix, so the leak
//! check can tell the bench's processes from those of anyone running alongside.

use std::cell::Cell;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::affinity::allowed_cpus;
use crate::binaries::Bins;

/// How a server is started: the fixture on its own, or under `tether wrap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Direct,
    Wrapped,
}

impl Mode {
    /// The two modes, in an order that alternates with `i` so neither always goes first.
    pub fn pair(i: usize) -> [Mode; 2] {
        if i.is_multiple_of(2) {
            [Mode::Direct, Mode::Wrapped]
        } else {
            [Mode::Wrapped, Mode::Direct]
        }
    }

    /// Where this mode's samples go in a per-mode `[direct, wrapped]` array.
    pub fn index(self) -> usize {
        match self {
            Mode::Direct => 0,
            Mode::Wrapped => 1,
        }
    }
}

pub struct Ctx {
    bins: Bins,
    /// 16 hex digits unique to this bench run: the first half of every instance id it uses,
    /// so the leak check can tell its own processes from anyone else's.
    pub prefix: String,
    next_id: Cell<u64>,
    /// The CPUs this bench may run on (restored after pinned runs).
    pub cpus: Vec<usize>,
}

impl Ctx {
    pub fn new(bins: Bins) -> Result<Ctx> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("reading the clock")?
            .subsec_nanos();
        Ok(Ctx {
            bins,
            prefix: format!("{:08x}{:08x}", std::process::id(), nanos),
            next_id: Cell::new(0),
            cpus: allowed_cpus()?,
        })
    }

    /// How many instance ids (wrapped servers) this run has used.
    pub fn instances_started(&self) -> u64 {
        self.next_id.get()
    }

    fn instance_id(&self) -> String {
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        format!("{}{n:016x}", self.prefix)
    }

    /// The command that starts a server in `mode` (a wrapped one with a fresh instance id).
    pub fn command(&self, mode: Mode) -> Command {
        let mut cmd = match mode {
            Mode::Direct => Command::new(&self.bins.fixture),
            Mode::Wrapped => {
                let mut c = Command::new(&self.bins.tether);
                c.arg("wrap")
                    .arg("--instance-id")
                    .arg(self.instance_id())
                    .arg("--")
                    .arg(&self.bins.fixture);
                c
            }
        };
        cmd.env_remove("TETHER_LOG");
        cmd
    }
}
