//! The sweep: ends whatever dead Tether processes left behind, and never anything else.
//!
//! Run by `tether reap`, and as a library call by any long-lived Tether process when it
//! starts. For every open instance of this boot whose holder (the shim responsible for it) is
//! dead, it re-checks each recorded process identity and SIGKILLs the ones that still match
//! through a pidfd, kills and removes the instance's cgroup (with the instance cgroups of shims
//! that ran inside it, deepest first), and kills every process still carrying the instance's
//! cookie (one `/proc` pass for all instances), then closes its row, unless its cgroup could
//! not be removed: that row stays open for the next sweep. A recorded pid that now belongs to
//! another process is skipped and reported. Instances of earlier boots are closed
//! as lost (their local processes died with that boot). SSH servers whose owner died before
//! their remote side was known to be over get a remote kill ([`remote_kills`]), whatever the boot.
//! Closed rows older than a week are compacted away, except those still awaiting a remote kill.
//! Instance cgroups are touched only when a row of this ledger names them: an empty one of a
//! closed row is removed once stale, and one no row names is another state directory's (or
//! user's) and left alone. When the ledger cannot be read, [`sweep_without_ledger`] reports the
//! cookie carriers and touches nothing.

mod cgroups;
mod cookies;
mod lock;
pub mod remote_kills;
mod report;
mod unverified;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::ledger::{now_ms, InstanceRow, InstanceState, Ledger, LedgerError, ProcessRole};
use crate::process::cookie;
use crate::process::identity::{Check, ProcessIdentity};
use crate::process::pidfd::Pidfd;
use crate::process::procfs;

pub use cookies::carriers_by_instance;
pub use lock::SweepLock;
pub use report::{Action, ActionKind, Report};
pub use unverified::sweep_without_ledger;

/// Deletes the closed instances past [`KEEP_CLOSED`] or beyond the newest [`KEEP_CLOSED_ROWS`]
/// (a sweep does it, and a long-running gateway every few minutes); returns how many went.
pub fn compact(ledger: &mut Ledger) -> Result<usize, crate::ledger::LedgerError> {
    let before = now_ms() - i64::try_from(KEEP_CLOSED.as_millis()).unwrap_or(i64::MAX);
    ledger.compact(before, KEEP_CLOSED_ROWS)
}

/// How long closed instances stay in the ledger for `tether ps --all`.
const KEEP_CLOSED: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many closed instances stay at most, however recent: the ledger's size is bounded under
/// any churn.
pub const KEEP_CLOSED_ROWS: usize = 10_000;
/// How long killed processes get to disappear before the sweep reports them anyway.
const DEATH_PATIENCE: Duration = Duration::from_secs(5);
/// Cookie passes: a carrier may fork while an earlier pass runs.
const COOKIE_PASSES: usize = 3;

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The boot id could not be read, so no recorded pid can be trusted.
    #[error("reading the boot id: {0}")]
    BootId(std::io::Error),
    /// The ledger failed after the sweep had acted: `report` says what it did (kills
    /// included), which must be told, not lost with the error.
    #[error("{cause} (after the sweep acted: {} action(s) done)", report.actions.len())]
    AfterActing {
        /// What was done before the failure.
        report: Box<Report>,
        /// The ledger's failure.
        cause: LedgerError,
    },
}

/// Sweeps once under the sweep lock of `state_dir` (waiting for a sweep in progress), as
/// `tether reap` and the gateway's start-up do.
pub fn sweep_locked(ledger: &mut Ledger, state_dir: &Path, dry_run: bool) -> Result<Report, SweepError> {
    let _lock = SweepLock::take(state_dir).map_err(|cause| LedgerError::Io {
        what: "locking sweep.lock",
        path: state_dir.to_path_buf(),
        cause,
    })?;
    sweep(ledger, dry_run)
}

/// Sweeps once. With `dry_run`, kills nothing and changes nothing.
pub fn sweep(ledger: &mut Ledger, dry_run: bool) -> Result<Report, SweepError> {
    let boot = procfs::boot_id().map_err(SweepError::BootId)?;
    let mut report = Report {
        boot_id: boot.clone(),
        dry_run,
        ..Report::default()
    };
    let instances = ledger.open_instances()?;
    let processes = ledger.open_processes()?;
    let mut holders = HolderCache::default();
    let mut orphans = Vec::new();
    let mut lost = Vec::new();
    let mut remote_due = Vec::new();
    let mut live: HashSet<String> = HashSet::new();
    for inst in instances {
        let other_boot = inst.intent.boot_id != boot;
        let holder_dead = other_boot || !holders.alive(&inst.intent.holder);
        if holder_dead && remote_kills::unsettled(&inst).is_some() {
            remote_due.push(inst.clone());
        }
        if !inst.state.is_open() {
            continue;
        }
        if inst.upstream_session.is_some() {
            // No process to kill: a session with a server over HTTP, which a gateway ends.
            if holder_dead {
                report.upstream_sessions.push(inst);
            } else {
                live.insert(inst.intent.id.clone());
            }
            continue;
        }
        if other_boot {
            lost.push(inst);
        } else if holder_dead {
            orphans.push(inst);
        } else {
            live.insert(inst.intent.id.clone());
        }
    }
    report.live_instances = live.len();
    report.orphaned_instances = orphans.len();

    let mut killer = Killer {
        dry_run,
        victims: Vec::new(),
    };
    // Why a cgroup of an orphan could not be removed, for the report on its row left open.
    let mut cgroup_failures: HashMap<PathBuf, String> = HashMap::new();
    let verb = if dry_run {
        ActionKind::WouldKill
    } else {
        ActionKind::Killed
    };

    // From here on the sweep acts: a ledger failure still returns what was done.
    let acted = (|| -> Result<(), SweepError> {
        // The chaos driver freezes and SIGKILLs a sweep here (it has decided, not acted) and
        // before it closes the rows (it has killed, not recorded): the next sweep must finish.
        crate::failpoint::hit("sweep-acting");
        // Remote sides first, while a frozen local ssh client may still hold their connection: the
        // report then tells how the server itself ended.
        remote_kills::replay(ledger, &remote_due, dry_run, &mut report)?;

        for inst in &orphans {
            for p in processes.get(&inst.intent.id).into_iter().flatten() {
                let what = match p.role {
                    ProcessRole::Leader => "the server",
                    ProcessRole::Adopted => "a descendant that scrubbed its environment",
                };
                match p.identity.check() {
                    Check::Same(fd) => {
                        let reason = format!(
                            "{what} of an instance whose shim died; identity {}",
                            describe(&p.identity)
                        );
                        killer.kill(fd, action(inst, verb, Some(p.identity.pid), reason), &mut report);
                    }
                    Check::Stranger { why } => report.push(action(
                        inst,
                        ActionKind::SkippedStranger,
                        Some(p.identity.pid),
                        format!("recorded as {what}, but {why}: not ours, left alone"),
                    )),
                    Check::Gone => {}
                }
            }
            for dir in inst.intent.cgroup.iter().chain(inst.intent.cgroup_v1.iter()) {
                if let Some(why) = kill_cgroup(inst, dir, dry_run, &mut report) {
                    cgroup_failures.insert(dir.clone(), why);
                }
            }
        }

        // Cookies: carriers of orphaned instances die; carriers of instances this ledger does not
        // know are reported and left (another state directory's Tether may own them).
        let orphan_ids: HashMap<&str, &InstanceRow> = orphans.iter().map(|i| (i.intent.id.as_str(), i)).collect();
        let mut reported_unknown = HashSet::new();
        for pass in 0..COOKIE_PASSES {
            let mut found_any = false;
            for (id, pids) in cookies::carriers_by_instance() {
                if live.contains(&id) {
                    continue;
                }
                let inst = match orphan_ids.get(id.as_str()) {
                    Some(inst) => (*inst).clone(),
                    None => match closed_with_dead_holder(ledger, &id, &mut holders)? {
                        Some(inst) => inst,
                        None => {
                            for pid in pids.into_iter().filter(|p| reported_unknown.insert(*p)) {
                                report.push(unknown_carrier(&id, pid));
                            }
                            continue;
                        }
                    },
                };
                for pid in pids {
                    if killer.victims.iter().any(|v| v.pid() == pid) {
                        continue;
                    }
                    if let Some(fd) = cookie::verified_carrier(pid, &cookie::instance_needle(&id)) {
                        found_any = true;
                        let reason = "carries the cookie of an instance whose shim died".to_string();
                        killer.kill(fd, action(&inst, verb, Some(pid), reason), &mut report);
                    }
                }
            }
            if !found_any || dry_run || pass + 1 == COOKIE_PASSES {
                break;
            }
            wait_dead(&killer.victims);
        }

        // Cgroups this ledger's closed rows still name: remove the empty ones. A `tether-*`
        // cgroup no row of this ledger names is another state directory's (or user's), maybe
        // still running: never touched, even empty.
        let parents: Vec<_> = orphans
            .iter()
            .flat_map(|i| i.intent.cgroup.iter())
            .filter_map(|d| d.parent().map(Path::to_path_buf))
            .collect();
        let mut named = Vec::new();
        for (id, dir) in cgroups::instance_dirs(parents) {
            if live.contains(&id) || orphan_ids.contains_key(id.as_str()) {
                continue;
            }
            if names_cgroup(ledger.instance(&id)?.as_ref(), &dir) {
                named.push((id, dir));
            }
        }
        for removed in cgroups::remove_stale(named, dry_run) {
            report.push(removed);
        }

        wait_dead(&killer.victims);
        if dry_run {
            for inst in &orphans {
                let reason = "shim dead; the instance would be closed".to_string();
                report.push(action(inst, ActionKind::WouldReap, None, reason));
            }
            for inst in &lost {
                let reason = "recorded in an earlier boot; the instance would be closed".to_string();
                report.push(action(inst, ActionKind::WouldCloseLost, None, reason));
            }
        } else {
            crate::failpoint::hit("sweep-closing");
            close(ledger, &orphans, &lost, &cgroup_failures, &mut report)?;
            compact(ledger)?;
        }
        Ok(())
    })();
    match acted {
        Ok(()) => Ok(report),
        Err(SweepError::Ledger(cause)) => Err(SweepError::AfterActing {
            report: Box::new(report),
            cause,
        }),
        Err(e) => Err(e),
    }
}

/// Closes the orphans as reaped and earlier boots' instances as lost. An orphan whose cgroup
/// directory still exists stays open, so that the next sweep tries again: a closed row would
/// leave that directory to the much later, unexplained-cgroup clean-up, or to nobody.
fn close(
    ledger: &mut Ledger,
    orphans: &[InstanceRow],
    lost: &[InstanceRow],
    cgroup_failures: &HashMap<PathBuf, String>,
    report: &mut Report,
) -> Result<(), SweepError> {
    let mut reaped = Vec::new();
    for inst in orphans {
        let left = inst
            .intent
            .cgroup
            .iter()
            .chain(inst.intent.cgroup_v1.iter())
            .find(|d| d.exists());
        match left {
            Some(dir) => {
                let why = cgroup_failures.get(dir).map_or("it was not removed", String::as_str);
                report.push(Action {
                    cgroup: Some(dir.display().to_string()),
                    ..action(
                        inst,
                        ActionKind::LeftOpen,
                        None,
                        format!("its cgroup still exists ({why}); left open for the next sweep"),
                    )
                });
            }
            None => reaped.push(inst),
        }
    }
    let ids: Vec<String> = reaped.iter().map(|i| i.intent.id.clone()).collect();
    ledger.finish(
        &ids,
        InstanceState::Reaped,
        "its shim died; the sweep ended what was left",
    )?;
    for inst in reaped {
        report.push(action(
            inst,
            ActionKind::Reaped,
            None,
            "shim dead; instance closed".into(),
        ));
    }
    let ids: Vec<String> = lost.iter().map(|i| i.intent.id.clone()).collect();
    ledger.finish(&ids, InstanceState::Lost, "from an earlier boot")?;
    for inst in lost {
        report.push(action(
            inst,
            ActionKind::Lost,
            None,
            "recorded in an earlier boot".into(),
        ));
    }
    Ok(())
}

/// Kills and removes one cgroup of an orphan (or, dry run, reports what it would kill).
/// Returns why it could not be removed, when it could not.
fn kill_cgroup(inst: &InstanceRow, dir: &Path, dry_run: bool, report: &mut Report) -> Option<String> {
    let cgroup = Some(dir.display().to_string());
    if dry_run {
        let members = cgroups::members_in_tree(dir);
        if members > 0 {
            report.push(Action {
                cgroup,
                ..action(inst, ActionKind::WouldKillCgroup, None, format!("{members} member(s)"))
            });
        }
        return None;
    }
    match cgroups::kill_and_remove(dir) {
        None => None,
        Some(Ok(0)) => {
            report.push(Action {
                cgroup,
                ..action(
                    inst,
                    ActionKind::CgroupRemoved,
                    None,
                    "empty cgroup of a dead shim".into(),
                )
            });
            None
        }
        Some(Ok(n)) => {
            report.killed += n;
            report.push(Action {
                cgroup,
                ..action(
                    inst,
                    ActionKind::CgroupKilled,
                    None,
                    format!("{n} member(s) killed, cgroup removed"),
                )
            });
            None
        }
        Some(Err(e)) => {
            report.push(Action {
                cgroup,
                ..action(inst, ActionKind::CgroupFailed, None, e.clone())
            });
            Some(e)
        }
    }
}

/// True when `row` (this ledger's row of the cgroup's instance, if any) names `dir` as its
/// cgroup: the one proof that the directory is this ledger's to remove.
fn names_cgroup(row: Option<&InstanceRow>, dir: &Path) -> bool {
    row.is_some_and(|r| r.intent.cgroup.as_deref() == Some(dir) || r.intent.cgroup_v1.as_deref() == Some(dir))
}

/// A carrier's instance, when the ledger has it closed and its holder is dead (a shim that gave
/// up on a process stuck in the kernel, say). `None` when the ledger does not know it.
fn closed_with_dead_holder(
    ledger: &Ledger,
    id: &str,
    holders: &mut HolderCache,
) -> Result<Option<InstanceRow>, SweepError> {
    Ok(ledger.instance(id)?.filter(|inst| !holders.alive(&inst.intent.holder)))
}

fn unknown_carrier(id: &str, pid: i32) -> Action {
    Action {
        instance: id.to_string(),
        server: String::new(),
        kind: ActionKind::SkippedUnknown,
        pid: Some(pid),
        cgroup: None,
        reason: "carries a Tether cookie this ledger has no record of; left alone".into(),
    }
}

fn action(inst: &InstanceRow, kind: ActionKind, pid: Option<i32>, reason: String) -> Action {
    Action {
        instance: inst.intent.id.clone(),
        server: inst.intent.server.clone(),
        kind,
        pid,
        cgroup: None,
        reason,
    }
}

fn describe(id: &ProcessIdentity) -> String {
    match id.pidfs_inode {
        Some(ino) => format!("pid {} + pidfs inode {ino} matched", id.pid),
        None => format!("pid {} + start tick {} matched", id.pid, id.start_ticks),
    }
}

/// Kills (or, dry run, only reports) and keeps the pidfds to wait on.
struct Killer {
    dry_run: bool,
    /// Pidfds of everything signalled.
    victims: Vec<Pidfd>,
}

impl Killer {
    fn kill(&mut self, fd: Pidfd, action: Action, report: &mut Report) {
        if !self.dry_run {
            let _ = fd.signal(Signal::SIGKILL);
            self.victims.push(fd);
        }
        report.push(action);
    }
}

/// Waits (bounded) until every killed process has exited.
fn wait_dead(victims: &[Pidfd]) {
    crate::process::pidfd::wait_all_exited(victims, DEATH_PATIENCE);
}

/// Liveness of holders, checked once each: many instances share one holder (a gateway).
#[derive(Default)]
struct HolderCache {
    /// (pid, start ticks) → alive.
    seen: HashMap<(i32, u64), bool>,
}

impl HolderCache {
    fn alive(&mut self, holder: &ProcessIdentity) -> bool {
        *self
            .seen
            .entry((holder.pid, holder.start_ticks))
            .or_insert_with(|| holder.is_alive())
    }
}
