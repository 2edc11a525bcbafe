//! The process tree of one instance, and how to signal and reap all of it.
//!
//! Every way of reaching a member is used at once, because each misses something: the process
//! group (TERM reaches `sh -c` and `npx`'s children), the cgroup (everything, even `env -i`
//! double forks), the shim's own children (escapees re-parented to it as subreaper; killing an
//! unreaped child by pid is safe, its pid cannot be recycled) and the environment cookie (for
//! hosts with neither). The server itself is never reaped before the end, so its pid, which is
//! also the group id, stays pinned and `killpg` can never reach a stranger's group.

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

use crate::cgroup::InstanceCgroup;
use crate::process::cookie::Cookie;
use crate::process::pidfd::Pidfd;
use crate::process::procfs;

/// How the server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerExit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(Signal),
}

impl ServerExit {
    /// "exited with 3", "killed by SIGTERM".
    pub fn describe(self) -> String {
        match self {
            ServerExit::Code(c) => format!("exited with {c}"),
            ServerExit::Signal(s) => format!("killed by {s}"),
        }
    }
}

/// What is left of a tree.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// The server has not exited yet.
    pub server: bool,
    /// Live processes in the cgroup.
    pub cgroup: usize,
    /// Unreaped children of the shim other than the server and the watchdog.
    pub children: usize,
    /// Live processes carrying the cookie, found by the last sweep.
    pub carriers: usize,
}

impl Remaining {
    /// True when nothing of the tree is alive.
    pub fn is_empty(&self) -> bool {
        *self == Remaining::default()
    }
}

/// One instance's processes.
pub struct Tree {
    /// The server's pid; also its process group id when `group` is set.
    leader: Pid,
    /// A pidfd on the server, when the pidfd layer is on.
    leader_fd: Option<Pidfd>,
    /// The server leads its own process group.
    group: bool,
    /// The shim is the subreaper of the tree (set before the server was forked).
    subreaper: bool,
    /// The instance cgroup, when that layer is on.
    pub cgroup: Option<InstanceCgroup>,
    /// The environment cookie, when that layer is on.
    cookie: Option<Cookie>,
    /// The watchdog's pid: a child of the shim that is not part of the tree.
    watchdog: Option<i32>,
    /// A child of the shim working for it (a remote kill's ssh): not part of the tree either.
    helper: Option<i32>,
    /// How the server ended, once it has (observed without reaping it).
    exit: Option<ServerExit>,
    /// Cookie carriers signalled so far (one pidfd each), kept open to see them die.
    carriers: Vec<Pidfd>,
    /// When `/proc` was last swept for the cookie: a sweep reads every process's environment,
    /// so while SIGKILL is re-sent every tick it runs at most every [`SWEEP_INTERVAL`].
    last_sweep: Option<Instant>,
    /// The sweep of the latest [`Tree::signal`] found no carrier. Consumed by the next
    /// [`Tree::remaining`], which then need not read every process's environment again (it
    /// would be the second full `/proc` scan of the same loop iteration).
    clean_sweep_pending: bool,
}

/// Minimum time between two cookie sweeps while signalling.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

impl Tree {
    /// A tree whose server was just spawned.
    pub fn new(
        leader: i32,
        group: bool,
        use_pidfd: bool,
        subreaper: bool,
        cgroup: Option<InstanceCgroup>,
        cookie: Option<Cookie>,
        watchdog: Option<i32>,
    ) -> Tree {
        let leader_fd = if use_pidfd { Pidfd::open(leader).ok() } else { None };
        Tree {
            leader: Pid::from_raw(leader),
            leader_fd,
            group,
            subreaper,
            cgroup,
            cookie,
            watchdog,
            helper: None,
            exit: None,
            carriers: Vec::new(),
            last_sweep: None,
            clean_sweep_pending: false,
        }
    }

    /// How the server ended, checking without reaping it.
    pub fn server_exit(&mut self) -> Option<ServerExit> {
        if self.exit.is_none() {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            self.exit = match waitid(Id::Pid(self.leader), flags) {
                Ok(WaitStatus::Exited(_, code)) => Some(ServerExit::Code(code)),
                Ok(WaitStatus::Signaled(_, sig, _)) => Some(ServerExit::Signal(sig)),
                _ => None,
            };
        }
        self.exit
    }

    /// Marks the shim's helper child (or none), which the tree must neither signal nor reap.
    pub fn set_helper(&mut self, pid: Option<i32>) {
        self.helper = pid;
    }

    /// Children of the shim that belong to the tree: everything but the server and watchdog.
    fn adopted(&self) -> Vec<i32> {
        procfs::own_children()
            .into_iter()
            .filter(|&p| p != self.leader.as_raw() && Some(p) != self.watchdog && Some(p) != self.helper)
            .collect()
    }

    /// Reaps every exited child except the server (kept as a zombie until the end) and the
    /// watchdog. Returns the watchdog's pid if it was found dead (and reaped).
    pub fn reap(&mut self) -> Option<i32> {
        for pid in self.adopted() {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
        let wd = self.watchdog?;
        match waitpid(Pid::from_raw(wd), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            _ => {
                self.watchdog = None;
                Some(wd)
            }
        }
    }

    /// The instance's cookie, when that layer is on.
    pub fn cookie(&self) -> Option<&Cookie> {
        self.cookie.as_ref()
    }

    /// Whether the shim itself sweeps `/proc` for the cookie. Not while a cgroup holds the tree
    /// and the watchdog lives: the cgroup reaches every member, and a carrier could be outside
    /// it only if something moved it out, which the watchdog's pass after the handover catches
    /// (see [`super::watchdog`]). That pass reads every process's environment, a cost that
    /// grows with the host's process count, off the client's path.
    pub fn sweeps_cookie(&self) -> bool {
        self.cookie.is_some() && (self.cgroup.is_none() || self.watchdog.is_none())
    }

    /// True when the cookie's last pass is the watchdog's (see [`Tree::sweeps_cookie`]): not
    /// when the shim was the tree's subreaper, for then no pass can find anything once the tree
    /// is dead. A process moved out of the cgroup stays a descendant of the shim; when the
    /// processes between them die it is re-parented to the shim (its nearest living subreaper,
    /// or a descendant subreaper that is itself in the cgroup or moved out, and so on), where
    /// it is an unreaped child that [`Tree::signal`] kills and [`Tree::remaining`] waits for.
    /// So a tree that ended with the cgroup empty and no child left has no descendant alive.
    /// Without this, each instance's end read every process's environment: a thousand
    /// instances ending together made a million reads (87 % of the host's CPU while they
    /// ended, measured with `perf record -a`).
    pub fn leaves_sweep_to_watchdog(&self) -> bool {
        self.cookie.is_some() && !self.sweeps_cookie() && !self.subreaper
    }

    /// Sends `signal` to every member by every means in force.
    pub fn signal(&mut self, signal: Signal) {
        if self.server_exit().is_none() {
            match &self.leader_fd {
                Some(fd) => drop(fd.signal(signal)),
                None => drop(nix::sys::signal::kill(self.leader, signal)),
            }
        }
        if self.group {
            // Pinned: the leader is unreaped, so this group id is still ours.
            let _ = killpg(self.leader, signal);
        }
        if let Some(cg) = &self.cgroup {
            if signal == Signal::SIGKILL {
                if let Err(e) = cg.kill() {
                    tracing::warn!("cgroup.kill in {}: {e}", cg.dir().display());
                }
            } else {
                for pid in cg.members() {
                    // Members are ours by construction; a pidfd makes sure a pid that left and
                    // was recycled in between is not hit.
                    if let Ok(fd) = Pidfd::open(pid) {
                        if cg.members().contains(&pid) {
                            let _ = fd.signal(signal);
                        }
                    }
                }
            }
        }
        for pid in self.adopted() {
            // Unreaped children of ours: their pids cannot have been recycled.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
        let due = self.last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_INTERVAL) && self.sweeps_cookie();
        if let (Some(cookie), true) = (&self.cookie, due) {
            self.last_sweep = Some(Instant::now());
            let exclude: Vec<i32> = self.watchdog.into_iter().collect();
            let found_now = cookie.signal_carriers(signal, &exclude);
            self.clean_sweep_pending = found_now.is_empty();
            for found in found_now {
                if !self.carriers.iter().any(|c| c.pid() == found.pid()) {
                    self.carriers.push(found);
                }
            }
        }
    }

    /// What is still alive. The cookie sweep reads every process's environment, so it is only
    /// run when `sweep` is set and nothing cheaper shows life.
    pub fn remaining(&mut self, sweep: bool) -> Remaining {
        let mut r = Remaining {
            server: self.server_exit().is_none(),
            cgroup: self.cgroup.as_ref().map_or(0, |c| usize::from(c.populated())),
            children: self.adopted().len(),
            carriers: 0,
        };
        self.carriers.retain(Pidfd::is_alive);
        r.carriers = self.carriers.len();
        let just_swept_clean = std::mem::take(&mut self.clean_sweep_pending);
        if sweep && r.is_empty() && !just_swept_clean && self.sweeps_cookie() {
            if let Some(cookie) = &self.cookie {
                let exclude: Vec<i32> = self.watchdog.into_iter().collect();
                r.carriers = cookie.carriers(&exclude).len();
            }
        }
        r
    }

    /// Pids still alive, for a report when the tree will not die.
    pub fn survivors(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.cgroup.as_ref().map(InstanceCgroup::members).unwrap_or_default();
        pids.extend(self.adopted());
        pids.extend(self.carriers.iter().filter(|c| c.is_alive()).map(Pidfd::pid));
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Reaps the server, ending the tree; returns how it ended. With `block` unset (giving
    /// up on a tree that will not die) the server is only reaped if it already exited.
    pub fn finish(mut self, block: bool) -> (ServerExit, Option<InstanceCgroup>) {
        let exit = self.server_exit();
        let flags = if block { None } else { Some(WaitPidFlag::WNOHANG) };
        let reaped = waitpid(self.leader, flags);
        let exit = exit.or(match reaped {
            Ok(WaitStatus::Exited(_, code)) => Some(ServerExit::Code(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some(ServerExit::Signal(sig)),
            _ => None,
        });
        // A server that never exited (stuck past SIGKILL) is reported as killed.
        (exit.unwrap_or(ServerExit::Signal(Signal::SIGKILL)), self.cgroup.take())
    }
}
