//! The shim's side of the ledger: what it writes, when, and what it does when it cannot.
//!
//! Before the fork: the owner (a standalone `tether wrap` owns its instance) and the intent.
//! Between fork and exec (the child waits at the gate): the server's identity. While the server
//! runs without a cgroup: every descendant that scrubbed the cookie from its environment, found
//! by walking the tree from the server and the shim's own (adopted) children, since after a
//! SIGKILL of the shim only its recorded identity can find such a process. At the end: how it
//! ended, written by the watchdog after the shim's exit (see `super::watchdog`), or here when
//! there is no watchdog to hand it to.
//!
//! The ledger serves the sweep; containment does not depend on it. So a ledger that cannot be
//! opened or written is reported once on stderr and the instance runs on without it.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ledger::{now_ms, Intent, Ledger, LedgerError, OwnerRow};
use crate::process::identity::ProcessIdentity;
use crate::process::procfs;

/// First interval between two walks of the tree; doubled after each walk that finds the tree
/// unchanged, reset when it changed (servers build their trees at start-up, then mostly keep
/// them). A scrubbed process created and orphaned within one interval before the shim is
/// SIGKILLed is the window this leaves on hosts without cgroups.
const FIRST_SCAN: Duration = Duration::from_millis(2);
/// Walks at [`FIRST_SCAN`] after the tree last changed, before the interval starts doubling.
const QUICK_SCANS: u32 = 10;
/// Longest interval between two walks.
const LAST_SCAN: Duration = Duration::from_secs(1);

/// One instance's ledger entries.
pub struct LedgerWriter {
    /// The open ledger; `None` when there is none or it failed.
    ledger: Option<Ledger>,
    /// The instance id.
    instance: String,
    /// The owner id this shim registered, when it stands alone.
    owner: Option<String>,
    /// `TETHER_INSTANCE=<id>`: processes carrying it are found by the cookie sweep.
    needle: Vec<u8>,
    /// Walking the tree for scrubbed descendants, when no cgroup holds them.
    scan: Option<Scan>,
}

struct Scan {
    /// Processes (pid, start ticks) in the tree on the last walk, to see it change.
    tree: HashSet<(i32, u64)>,
    /// Scrubbed processes already recorded.
    recorded: HashSet<(i32, u64)>,
    /// Walks in a row that found the tree unchanged.
    calm: u32,
    /// Current interval between walks.
    interval: Duration,
    /// When the next walk is due.
    due: Instant,
}

impl LedgerWriter {
    /// A record that writes nothing.
    pub fn unrecorded(instance: &str) -> LedgerWriter {
        LedgerWriter {
            ledger: None,
            instance: instance.to_string(),
            owner: None,
            needle: Vec::new(),
            scan: None,
        }
    }

    /// Opens the ledger in `state_dir` and writes the owner (if `standalone`) and the intent.
    /// `scan` asks for the tree walks (no cgroup in force).
    pub fn begin(state_dir: Option<&Path>, intent: &Intent, standalone: bool, scan: bool) -> LedgerWriter {
        let mut rec = LedgerWriter {
            ledger: None,
            instance: intent.id.clone(),
            owner: standalone.then(|| intent.owner_id.clone()),
            needle: crate::process::cookie::instance_needle(&intent.id),
            scan: scan.then(|| Scan {
                tree: HashSet::new(),
                recorded: HashSet::new(),
                calm: 0,
                interval: FIRST_SCAN,
                due: Instant::now(),
            }),
        };
        let Some(dir) = state_dir else { return rec };
        let owner = standalone.then(|| OwnerRow {
            id: intent.owner_id.clone(),
            kind: "wrap".into(),
            boot_id: intent.boot_id.clone(),
            identity: intent.holder,
            started_ms: now_ms(),
            ended_ms: None,
        });
        let opened = Ledger::open(dir).and_then(|mut l| {
            l.defer_checkpoints()?;
            l.record_owner_and_intent(owner.as_ref(), intent)?;
            Ok(l)
        });
        match opened {
            Ok(l) => rec.ledger = Some(l),
            Err(e) => warn_unrecorded(&e),
        }
        rec
    }

    /// Records the server's identity, while it waits at the gate.
    pub fn spawned(&mut self, pid: i32, pgid: Option<i32>, has_cookie: bool) {
        let Some(identity) = ProcessIdentity::of(pid) else {
            return; // It already died: nothing to find later.
        };
        self.with(|l, inst| l.record_spawned(inst, &identity, pgid, has_cookie));
    }

    /// When the next tree walk is due, if any.
    pub fn due(&self) -> Option<Instant> {
        self.ledger.as_ref()?;
        self.scan.as_ref().map(|s| s.due)
    }

    /// Walks the tree if a walk is due, recording descendants without the cookie.
    pub fn scan(&mut self, leader: i32, not_ours: Option<i32>, now: Instant) {
        let needle = self.needle.clone();
        let Some(scan) = self.scan.as_mut().filter(|s| now >= s.due) else {
            return;
        };
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        // The shim's whole subtree: the server's descendants and the orphans it adopted.
        let me = std::process::id() as i32;
        for pid in procfs::descendants_of(me) {
            if pid == leader || Some(pid) == not_ours {
                continue;
            }
            let Some(start) = procfs::start_time_of(pid) else {
                continue;
            };
            seen.insert((pid, start));
            // Carriers are looked at again on every walk: a child forked by a carrier holds the
            // cookie until its exec replaces the environment.
            if scan.recorded.contains(&(pid, start)) || procfs::environ_has(pid, &needle) {
                continue;
            }
            if let Some(id) = ProcessIdentity::of(pid).filter(|id| id.start_ticks == start) {
                fresh.push((id, procfs::pgid_of(pid)));
            }
        }
        // A tree that changed (a process came or went) is being built: look again soon.
        let changed = seen != scan.tree;
        scan.recorded.retain(|p| seen.contains(p));
        scan.recorded
            .extend(fresh.iter().map(|(id, _)| (id.pid, id.start_ticks)));
        scan.tree = seen;
        // Stay quick for a while after a change: a new process's exec (which may scrub its
        // environment) follows its fork by a few milliseconds, and is no change of the tree.
        scan.calm = if changed { 0 } else { scan.calm.saturating_add(1) };
        scan.interval = if scan.calm < QUICK_SCANS {
            FIRST_SCAN
        } else {
            (scan.interval * 2).min(LAST_SCAN)
        };
        scan.due = now + scan.interval;
        if !fresh.is_empty() {
            tracing::debug!(
                "instance {}: recording {} scrubbed descendant(s)",
                self.instance,
                fresh.len()
            );
            self.with(|l, inst| l.record_adopted(inst, &fresh));
        }
    }

    /// Records an SSH server's remote side (its identity, whether it is over).
    pub fn remote(&mut self, remote: &crate::ssh::RemoteSide) {
        let json = remote.to_json();
        self.with(|l, inst| l.record_remote(inst, &json));
    }

    /// True while the ledger is open and writable (so the row can be closed, here or by the
    /// watchdog).
    pub fn is_open(&self) -> bool {
        self.ledger.is_some()
    }

    /// Records how the instance ended, and the owner's end when it stood alone.
    pub fn ended(&mut self, reason: &str) {
        let owner = self.owner.clone();
        self.with(|l, inst| l.record_ended(inst, reason, owner.as_deref()));
    }

    fn with(&mut self, f: impl FnOnce(&mut Ledger, &str) -> Result<(), LedgerError>) {
        if let Some(l) = self.ledger.as_mut() {
            if let Err(e) = f(l, &self.instance) {
                warn_unrecorded(&e);
                self.ledger = None;
            }
        }
    }
}

fn warn_unrecorded(e: &LedgerError) {
    tracing::warn!("{e}; this instance is not recorded, so `tether reap` cannot find what a crash leaves");
}
