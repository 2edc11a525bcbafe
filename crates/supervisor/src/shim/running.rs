//! A running instance: the shim's one loop, from the server's start to the end of its tree.
//!
//! Each turn pumps an SSH server's stderr, applies what the [`Teardown`] schedule says is due,
//! reaps, notices the server's exit, checks whether anything of the tree is left, and then
//! sleeps in one `poll` until the next trigger or deadline. Where the instance is in its life
//! is one [`Stage`]; the signal schedule within the ending is the teardown's.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::cookie::INSTANCE_VAR;

use super::ledger_writer::LedgerWriter;
use super::signals::{Arrived, Signals};
use super::ssh_client::SshClient;
use super::teardown::{Action, Phase, Teardown, Trigger};
use super::tree::{ServerExit, Tree};
use super::watch::{Event, Watch};
use super::watchdog::{Handover, Watchdog};

/// How often the tree is re-checked and re-killed after SIGKILL went out.
const KILLING_TICK: Duration = Duration::from_millis(10);
/// How long after SIGKILL the shim keeps trying before it reports survivors and gives up
/// (processes in uninterruptible sleep cannot die until the kernel lets them).
const KILLING_PATIENCE: Duration = Duration::from_secs(10);
/// How long, beyond the grace, a closed stdin waits for an SSH server to start.
const REMOTE_START_CAP: Duration = Duration::from_secs(15);

/// Where the instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Nothing has asked the instance to end.
    Serving,
    /// The client closed stdin before the SSH server started: what it sent is still on its way,
    /// with the EOF, so the graceful end starts once the server runs, or at `until` at the
    /// latest (a login stuck in rc files, or an identity that never comes, must not keep a
    /// closed session alive).
    AwaitingRemoteStart { until: Instant },
    /// Ending, on the teardown's schedule.
    Ending,
    /// Nothing local is left; the remote kill's answer is awaited (its pidfd, or its
    /// deadline), without re-killing an empty tree.
    AwaitingRemoteKill,
}

/// How the server ended, once seen.
#[derive(Debug, Clone, Copy)]
pub(super) struct ServerEnd {
    /// Its status.
    exit: ServerExit,
    /// A signal of the shim's went out first (so an SSH failure is not the server's own).
    by_us: bool,
}

/// How the loop ended.
enum Outcome {
    /// Nothing of the tree is left.
    Clean,
    /// Processes survive SIGKILL past [`KILLING_PATIENCE`]; the watchdog and the sweep take over.
    GaveUp,
}

/// One instance, from its server's start to the end of its tree.
pub(super) struct Instance {
    /// The instance id, for logs.
    pub(super) id: String,
    /// The server's pid (and process group id).
    pub(super) leader: i32,
    /// Every process of the instance, and how to reach each.
    pub(super) tree: Tree,
    /// The instance's ledger row.
    pub(super) ledger: LedgerWriter,
    /// Covers the shim's own SIGKILL; `None` once dismissed or found dead.
    pub(super) watchdog: Option<Watchdog>,
    /// An SSH server's client side: its stderr, identity and remote kill.
    pub(super) ssh: Option<SshClient>,
    /// The client-side ends, the parent and the lifeline.
    pub(super) watch: Watch,
    /// Signals, as an fd.
    pub(super) signals: Signals,
    /// When to send which signal, once ending.
    pub(super) teardown: Teardown,
    /// Where the instance is in its life.
    pub(super) stage: Stage,
    /// How the server ended, once seen.
    pub(super) server_end: Option<ServerEnd>,
    /// The grace period, for the remote-start wait.
    pub(super) grace: Duration,
}

impl Instance {
    /// Runs the instance to its end and returns how the server ended.
    pub(super) fn run(mut self) -> ServerExit {
        let outcome = loop {
            if let Some(outcome) = self.turn() {
                break outcome;
            }
        };
        self.finish(outcome)
    }

    /// Starts (or hastens) the end.
    pub(super) fn trigger(&mut self, trigger: Trigger, now: Instant) {
        if matches!(self.stage, Stage::Serving | Stage::AwaitingRemoteStart { .. }) {
            tracing::info!("instance {}: {}; ending the tree", self.id, trigger.describe());
            self.stage = Stage::Ending;
        }
        self.teardown.trigger(trigger, now);
    }

    /// One turn of the loop; `Some` when the tree is over.
    fn turn(&mut self) -> Option<Outcome> {
        let now = Instant::now();
        if let Some(ssh) = self.ssh.as_mut() {
            ssh.pump(&mut self.ledger);
        }
        if let Stage::AwaitingRemoteStart { until } = self.stage {
            if now >= until || self.ssh.as_ref().is_none_or(SshClient::started) {
                self.trigger(Trigger::StdinClosed, now);
            }
        }
        self.apply_schedule(now);
        if let Some(dead) = self.tree.reap() {
            tracing::warn!(
                "the watchdog (pid {dead}) died; a SIGKILL of this shim would now leave the sweep to clean up"
            );
            self.watchdog = None;
        }
        if self.server_end.is_none() {
            if let Some(exit) = self.tree.server_exit() {
                // Also during a teardown started otherwise (stdin closed, then the server exited
                // as asked): whatever it left behind dies now, not at the end of the grace.
                let end = ServerEnd {
                    exit,
                    by_us: self.teardown.signalled(),
                };
                self.server_end = Some(end);
                if let Some(ssh) = self.ssh.as_mut() {
                    ssh.server_exited(end.exit, end.by_us, &mut self.ledger);
                }
                self.trigger(Trigger::ServerExited, now);
                return None;
            }
        }
        match self.stage {
            Stage::Ending | Stage::AwaitingRemoteKill => {
                if self.tree.remaining(true).is_empty() {
                    if !self.ssh.as_ref().is_some_and(SshClient::busy) {
                        return Some(Outcome::Clean);
                    }
                    self.stage = Stage::AwaitingRemoteKill;
                } else if let Phase::Killing { since, .. } = self.teardown.phase {
                    if now.duration_since(since) > KILLING_PATIENCE {
                        return Some(Outcome::GaveUp);
                    }
                }
            }
            Stage::Serving | Stage::AwaitingRemoteStart { .. } => {
                let watchdog = self.watchdog.as_ref().map(Watchdog::pid);
                self.ledger.scan(self.leader, watchdog, now);
            }
        }
        self.wait();
        None
    }

    /// Sends what the teardown schedule says is due now.
    fn apply_schedule(&mut self, now: Instant) {
        if self.stage == Stage::AwaitingRemoteKill {
            return;
        }
        let resending = matches!(self.teardown.phase, Phase::Killing { .. });
        let Action::Send(sig) = self.teardown.poll(now) else {
            return;
        };
        if !(resending && sig == Signal::SIGKILL) {
            tracing::debug!("instance {}: sending {sig} to the tree", self.id);
        }
        if let Some(ssh) = self.ssh.as_mut() {
            // Over a second connection, by identity: the local signal only ends the ssh client,
            // and the remote side may not notice its connection dropped.
            ssh.start_kill();
            self.tree.set_helper(ssh.helper_pid());
        }
        self.tree.signal(sig);
    }

    /// Sleeps until a trigger or the next deadline, and takes in what happened.
    fn wait(&mut self) {
        let now = Instant::now();
        let scan = match self.stage {
            Stage::Serving | Stage::AwaitingRemoteStart { .. } => self.ledger.due(),
            Stage::Ending | Stage::AwaitingRemoteKill => None,
        };
        let local = match self.stage {
            Stage::AwaitingRemoteKill => None,
            _ => self.teardown.next_deadline(now, KILLING_TICK),
        };
        let remote_start = match self.stage {
            Stage::AwaitingRemoteStart { until } => Some(until),
            _ => None,
        };
        let remote_kill = self.ssh.as_ref().and_then(SshClient::deadline);
        let timeout = [scan, remote_start, remote_kill]
            .into_iter()
            .flatten()
            .map(|d| d.saturating_duration_since(now))
            .chain(local)
            .min();
        let extra = self.ssh.as_ref().map(SshClient::poll_fds).unwrap_or_default();
        let events = match self.watch.wait(&mut self.signals, timeout, &extra) {
            Ok(events) => events,
            Err(e) => {
                // Never go on with the tree unwatched: end it now.
                tracing::error!("instance {}: {e}; killing the tree", self.id);
                drop(extra);
                self.trigger(Trigger::Failure, Instant::now());
                std::thread::sleep(KILLING_TICK);
                return;
            }
        };
        drop(extra);
        for event in events {
            let trigger = match event {
                Event::Signal(Arrived::Child) | Event::Ready => continue,
                Event::Signal(Arrived::Stop(s)) => Trigger::Signal(s),
                Event::StdinClosed => Trigger::StdinClosed,
                Event::StdoutClosed => Trigger::StdoutClosed,
                Event::ParentExited => Trigger::ParentExited,
                Event::LifelineClosed => Trigger::LifelineClosed,
            };
            let remote_pending = self.ssh.as_ref().is_some_and(|s| !s.started());
            if trigger == Trigger::StdinClosed && remote_pending {
                if self.stage == Stage::Serving {
                    tracing::debug!("instance {}: stdin closed before the remote server started", self.id);
                    self.stage = Stage::AwaitingRemoteStart {
                        until: Instant::now() + self.grace + REMOTE_START_CAP,
                    };
                }
                continue;
            }
            self.trigger(trigger, Instant::now());
        }
    }

    /// Reaps the server, removes the cgroup and hands the rest (the row's end, with a cgroup
    /// the cookie's last pass) to the watchdog; returns the server's status.
    fn finish(mut self, outcome: Outcome) -> ServerExit {
        let by_us = self.server_end.is_some_and(|e| e.by_us);
        if let Outcome::GaveUp = outcome {
            tracing::error!(
                "instance {}: processes {:?} survive SIGKILL after {:?}; leaving them to the watchdog and the sweep",
                self.id,
                self.tree.survivors(),
                KILLING_PATIENCE
            );
            if let Some(w) = self.watchdog.take() {
                w.hand_over();
            }
            // The row stays open: the sweep finds the survivors once this shim is gone.
            let (exit, _cgroup) = self.tree.finish(false);
            if let Some(ssh) = self.ssh.take() {
                ssh.finish(exit, by_us, &mut self.ledger);
            }
            return exit;
        }
        let cause = self.teardown.cause().map(Trigger::describe).unwrap_or_default();
        tracing::debug!("instance {}: tree ended ({cause})", self.id);
        let sweep = self.tree.leaves_sweep_to_watchdog();
        let cookie = self.tree.cookie().cloned();
        let (exit, cgroup) = self.tree.finish(true);
        if let Some(ssh) = self.ssh.take() {
            ssh.finish(exit, by_us, &mut self.ledger);
        }
        // The cgroup before the row: a row is closed only once its cgroup is gone, so a cgroup
        // that cannot be removed (a sub-cgroup the server made) stays in the ledger for the
        // sweep to find and report, as the sweep itself does.
        let cgroup_left = match cgroup.map(|cg| cg.remove()) {
            // The error names the directory (ours, or a nested one an inner shim left).
            Some(Err(e)) => {
                tracing::warn!(
                    "instance {}: removing its cgroup: {e}; its ledger row stays open for `tether reap`",
                    self.id
                );
                true
            }
            _ => false,
        };
        let reason = (!cgroup_left).then(|| format!("{cause}; server {}", exit.describe()));
        // The tree is dead: what is left (closing the row, the cookie's last pass) need not
        // hold the client, so the watchdog does it after this shim's exit. Not the row of a
        // shim inside another instance (it carries that instance's cookie) or running as PID
        // 1: the outer instance, or the container, ends everything as soon as this shim exits,
        // its watchdog too, maybe before the watchdog wrote; that shim closes its row itself. So
        // does a shim whose parent is PID 1: its keeper may be (and a keeper killed, whose shim
        // init adopted, changes nothing but who closes the row).
        let keep_row =
            std::env::var_os(INSTANCE_VAR).is_some() || std::process::id() == 1 || nix::unistd::getppid().as_raw() == 1;
        let reason = reason.filter(|_| self.ledger.is_open());
        let handover = Handover {
            sweep,
            close_row: reason.clone().filter(|_| !keep_row),
        };
        let handed = self.watchdog.take().is_some_and(|w| w.hand_over_end(&handover));
        if !handed {
            if let (true, Some(cookie)) = (handover.sweep, &cookie) {
                cookie.signal_carriers(Signal::SIGKILL, &[]);
            }
        }
        if let Some(reason) = reason.filter(|_| keep_row || !handed) {
            self.ledger.ended(&reason);
        }
        exit
    }
}
