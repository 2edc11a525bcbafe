//! What a sweep did, and why, for `tether reap` and for the logs of a starting gateway.

use std::fmt;

use crate::ids::short;
use crate::ledger::InstanceRow;

/// One thing a sweep did or would do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Action {
    /// The instance concerned (empty for cgroups and cookies no ledger row explains).
    pub instance: String,
    /// Its server's name, when known.
    pub server: String,
    /// What was done.
    pub kind: ActionKind,
    /// The process concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The cgroup concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
}

/// The kinds of [`Action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// A process was SIGKILLed through a pidfd.
    Killed,
    /// Dry run: this process would have been killed.
    WouldKill,
    /// A recorded pid now belongs to another process; it was left alone.
    SkippedStranger,
    /// A process carries a cookie this ledger does not know; it was left alone.
    SkippedUnknown,
    /// A cgroup's members were killed with `cgroup.kill`.
    CgroupKilled,
    /// Dry run: this cgroup would have been killed.
    WouldKillCgroup,
    /// A stale cgroup directory was removed.
    CgroupRemoved,
    /// An orphan's cgroup could not be killed or removed; the reason says which and why.
    CgroupFailed,
    /// An orphaned instance was closed in the ledger.
    Reaped,
    /// An orphaned instance was left open because its cgroup still exists; the next sweep
    /// tries again.
    LeftOpen,
    /// Dry run: this orphaned instance would have been closed.
    WouldReap,
    /// An instance of an earlier boot was closed (its local processes died with that boot).
    Lost,
    /// Dry run: this instance of an earlier boot would have been closed.
    WouldCloseLost,
    /// A remote kill ended (or found ended) an SSH server whose owner died.
    RemoteKilled,
    /// A remote kill refused: the recorded remote process is no longer ours.
    RemoteRefused,
    /// A remote kill could not run (host unreachable, say); the next sweep tries again.
    RemoteFailed,
    /// Remote kills failed for longer than their expiry: given up, with how to check by hand.
    RemoteExpired,
    /// Dry run: this remote server would have been killed.
    WouldKillRemote,
}

/// Everything one sweep did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The boot the sweep ran in.
    pub boot_id: String,
    /// Whether it only looked.
    pub dry_run: bool,
    /// Open instances whose holder is alive (left alone).
    pub live_instances: usize,
    /// Instances whose holder was dead.
    pub orphaned_instances: usize,
    /// Sessions with servers over HTTP that a dead gateway left open: left for the next
    /// `tether serve`, which ends them with an HTTP DELETE (the sweep speaks no HTTP).
    pub upstream_sessions: Vec<InstanceRow>,
    /// Processes killed (or, dry run, to kill).
    pub killed: usize,
    /// Every action, in order.
    pub actions: Vec<Action>,
}

impl Report {
    /// Adds an action.
    pub fn push(&mut self, action: Action) {
        if matches!(
            action.kind,
            ActionKind::Killed | ActionKind::WouldKill | ActionKind::RemoteKilled | ActionKind::WouldKillRemote
        ) {
            self.killed += 1;
        }
        self.actions.push(action);
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionKind::Killed => "killed",
            ActionKind::WouldKill => "would kill",
            ActionKind::SkippedStranger => "skipped (stranger)",
            ActionKind::SkippedUnknown => "skipped (unknown cookie)",
            ActionKind::CgroupKilled => "killed cgroup",
            ActionKind::WouldKillCgroup => "would kill cgroup",
            ActionKind::CgroupRemoved => "removed cgroup",
            ActionKind::CgroupFailed => "cgroup not removed",
            ActionKind::Reaped => "reaped",
            ActionKind::LeftOpen => "left open",
            ActionKind::WouldReap => "would close (reaped)",
            ActionKind::Lost => "lost (earlier boot)",
            ActionKind::WouldCloseLost => "would close (lost)",
            ActionKind::RemoteKilled => "killed remote",
            ActionKind::RemoteRefused => "remote refused",
            ActionKind::RemoteFailed => "remote kill failed",
            ActionKind::RemoteExpired => "remote kill given up",
            ActionKind::WouldKillRemote => "would kill remote",
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would kill" } else { "killed" };
        writeln!(
            f,
            "{} live instance(s) left alone, {} orphaned; {verb} {} process(es)",
            self.live_instances, self.orphaned_instances, self.killed
        )?;
        for a in &self.actions {
            writeln!(f, "  {a}")?;
        }
        for s in &self.upstream_sessions {
            writeln!(
                f,
                "  left open: server {:?} (instance {}): a session with a server over HTTP; the next `tether serve` ends it",
                s.intent.server,
                short(&s.intent.id)
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Action {
    /// One line: what was done, to which process or cgroup, of which instance, and why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match (self.pid, &self.cgroup) {
            (Some(pid), _) => format!("pid {pid}"),
            (None, Some(dir)) => dir.clone(),
            (None, None) => String::new(),
        };
        let inst = match (self.instance.is_empty(), self.server.is_empty()) {
            (true, _) => String::new(),
            (false, true) => format!(" [{}]", short(&self.instance)),
            (false, false) => format!(" [{} {}]", self.server, short(&self.instance)),
        };
        write!(f, "{:<24} {target}{inst}: {}", self.kind.to_string(), self.reason)
    }
}
