//! What is alive now: owners → their instances → each instance's process tree (behind
//! `tether ps`, and the gateway's admin view to come).
//!
//! The ledger says what was started and by whom; `/proc` says what is alive now. An instance's
//! tree is the union of everything that can reach it: the recorded server (identity re-checked)
//! and its descendants, its cgroup's members, recorded scrubbed descendants, and the processes
//! carrying its cookie. When the ledger cannot be read, [`unverified`] lists the cookie
//! carriers alone.

pub mod unverified;

use std::collections::{BTreeMap, HashSet};

use crate::ledger::{InstanceRow, Ledger, LedgerError, ProcessRole, ProcessRow};
use crate::process::identity::ProcessIdentity;
use crate::process::procfs;
use crate::ssh::RemoteSide;
use crate::{cgroup, sweep};

/// Everything `tether ps` shows.
#[derive(Debug, serde::Serialize)]
pub struct Listing {
    /// The ledger read.
    pub ledger: String,
    /// Owners with at least one listed instance.
    pub owners: Vec<OwnerView>,
}

/// One owner.
#[derive(Debug, serde::Serialize)]
pub struct OwnerView {
    /// Owner id.
    pub id: String,
    /// `wrap` or `gateway`, when the owner registered itself.
    pub kind: Option<String>,
    /// Its pid, when registered.
    pub pid: Option<i32>,
    /// Whether it is alive (re-checked identity).
    pub alive: bool,
    /// Its instances.
    pub instances: Vec<InstanceView>,
}

/// One instance.
#[derive(Debug, serde::Serialize)]
pub struct InstanceView {
    /// Instance id (the cookie).
    pub id: String,
    /// Server name.
    pub server: String,
    /// Scope.
    pub scope: String,
    /// Ledger state.
    pub state: String,
    /// The shim holding it.
    pub holder_pid: i32,
    /// Whether that shim is alive.
    pub holder_alive: bool,
    /// Containment layers in force.
    pub layers: Vec<String>,
    /// Its cgroup, if any.
    pub cgroup: Option<String>,
    /// Its command.
    pub command: Vec<String>,
    /// For an SSH server: where it runs and its remote identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteView>,
    /// Its live processes.
    pub processes: Vec<ProcessView>,
}

/// An SSH server's remote side.
#[derive(Debug, serde::Serialize)]
pub struct RemoteView {
    /// `user@host:port`.
    pub destination: String,
    /// The server's pid there, once reported.
    pub pid: Option<i32>,
    /// Whether the remote side is known to be over.
    pub settled: bool,
    /// How it ended, or why the last remote kill failed.
    pub outcome: Option<String>,
}

/// One live process.
#[derive(Debug, serde::Serialize)]
pub struct ProcessView {
    /// Pid.
    pub pid: i32,
    /// Parent pid.
    pub ppid: Option<i32>,
    /// One-letter state.
    pub state: Option<char>,
    /// Resident memory, KiB.
    pub rss_kib: Option<u64>,
    /// Seconds since it started.
    pub age_secs: Option<f64>,
    /// CPU time used, user and system, in milliseconds.
    pub cpu_ms: Option<u64>,
    /// How it was found: `server`, `descendant`, `cgroup`, `adopted`, `cookie`; in a live
    /// instance's tree also `shim`, `keeper` (above the shim, without a cgroup), `watchdog`.
    pub found_by: &'static str,
    /// Its command line.
    pub cmdline: String,
}

impl ProcessView {
    /// What `/proc` says about `pid`, unless it is gone or a zombie.
    fn of_live(pid: i32, found_by: &'static str) -> Option<ProcessView> {
        let state = procfs::state_of(pid).filter(|&s| s != 'Z')?;
        Some(ProcessView {
            pid,
            ppid: procfs::parent_of(pid),
            state: Some(state),
            rss_kib: procfs::rss_kib(pid),
            age_secs: procfs::age_secs(pid),
            cpu_ms: procfs::cpu_ms(pid),
            found_by,
            cmdline: procfs::cmdline_of(pid).unwrap_or_default(),
        })
    }
}

/// `shim` and its descendants, alive, the shim first: an instance's tree as its shim holds it
/// (the shim is the subreaper of its tree, so escapees from the process group stay in it).
pub fn tree_of(shim: i32) -> Vec<ProcessView> {
    // Without a cgroup the process a gateway started is the shim's keeper, with the shim as its
    // child (see `shim::keeper`).
    let keeper = procfs::comm(shim).as_deref() == Some(crate::shim::KEEPER_NAME);
    let Some(me) = ProcessView::of_live(shim, if keeper { "keeper" } else { "shim" }) else {
        return Vec::new();
    };
    // The shim's watchdog is its child running the same executable (so is a nested `tether
    // wrap` server: the ledger's view, which knows the server, corrects that one); so is the
    // shim under a keeper.
    let exe = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let top_exe = exe(shim);
    let same_exe_children = |of: i32| -> HashSet<i32> {
        procfs::children_of(of)
            .into_iter()
            .filter(|&c| top_exe.is_some() && exe(c) == top_exe)
            .collect()
    };
    let shims: HashSet<i32> = if keeper {
        same_exe_children(shim)
    } else {
        HashSet::new()
    };
    let watchdogs: HashSet<i32> = if keeper {
        shims.iter().flat_map(|&s| same_exe_children(s)).collect()
    } else {
        same_exe_children(shim)
    };
    let mut tree = vec![me];
    tree.extend(procfs::descendants_of(shim).into_iter().filter_map(|pid| {
        let kind = if shims.contains(&pid) {
            "shim"
        } else if watchdogs.contains(&pid) {
            "watchdog"
        } else {
            "descendant"
        };
        ProcessView::of_live(pid, kind)
    }));
    tree
}

/// How many processes `pid` and its descendants are (0 when it is gone): what one instance's
/// shim holds, for a gateway's process cap.
pub fn tree_size(pid: i32) -> usize {
    if procfs::state_of(pid).is_none() {
        return 0;
    }
    1 + procfs::descendants_of(pid).len()
}

/// Builds the listing: open instances (all instances with `all`), grouped by owner.
pub fn list(ledger: &Ledger, all: bool) -> Result<Listing, LedgerError> {
    let instances = if all {
        ledger.all_instances()?
    } else {
        ledger.open_instances()?
    };
    let owners: BTreeMap<String, _> = ledger.owners()?.into_iter().map(|o| (o.id.clone(), o)).collect();
    let carriers = sweep::carriers_by_instance();
    let mut by_owner: BTreeMap<String, Vec<InstanceView>> = BTreeMap::new();
    for inst in instances {
        let recorded = ledger.processes_of(&inst.intent.id)?;
        let view = instance_view(
            &inst,
            &recorded,
            carriers.get(&inst.intent.id).map_or(&[][..], Vec::as_slice),
        );
        by_owner.entry(inst.intent.owner_id.clone()).or_default().push(view);
    }
    let owners = by_owner
        .into_iter()
        .map(|(id, instances)| {
            let row = owners.get(&id);
            OwnerView {
                kind: row.map(|o| o.kind.clone()),
                pid: row.map(|o| o.identity.pid),
                alive: row.is_some_and(|o| o.ended_ms.is_none() && o.identity.is_alive()),
                id,
                instances,
            }
        })
        .collect();
    Ok(Listing {
        ledger: ledger.path().display().to_string(),
        owners,
    })
}

fn instance_view(inst: &InstanceRow, recorded: &[ProcessRow], cookie_pids: &[i32]) -> InstanceView {
    let mut found: Vec<(i32, &'static str)> = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |pid: i32, how: &'static str, found: &mut Vec<(i32, &'static str)>| {
        if seen.insert(pid) {
            found.push((pid, how));
        }
    };
    for p in recorded {
        if !p.identity.is_alive() {
            continue;
        }
        match p.role {
            ProcessRole::Leader => {
                add(p.identity.pid, "server", &mut found);
                for pid in procfs::descendants_of(p.identity.pid) {
                    add(pid, "descendant", &mut found);
                }
            }
            ProcessRole::Adopted => add(p.identity.pid, "adopted", &mut found),
        }
    }
    // The shim's own children other than Tether processes (its watchdog): escapees it
    // adopted as subreaper, recorded or not yet.
    if inst.intent.holder.is_alive() {
        let tether_exe = std::fs::read_link(format!("/proc/{}/exe", inst.intent.holder.pid)).ok();
        for pid in procfs::children_of(inst.intent.holder.pid) {
            if std::fs::read_link(format!("/proc/{pid}/exe")).ok() != tether_exe {
                add(pid, "adopted", &mut found);
            }
        }
    }
    for dir in inst.intent.cgroup.iter().chain(inst.intent.cgroup_v1.iter()) {
        for pid in cgroup::members_of(dir) {
            add(pid, "cgroup", &mut found);
        }
    }
    for &pid in cookie_pids {
        add(pid, "cookie", &mut found);
    }
    let processes = found
        .into_iter()
        .filter_map(|(pid, found_by)| ProcessView::of_live(pid, found_by))
        .collect();
    InstanceView {
        id: inst.intent.id.clone(),
        server: inst.intent.server.clone(),
        scope: inst.intent.scope.clone(),
        state: inst.state.as_str().to_string(),
        holder_pid: inst.intent.holder.pid,
        holder_alive: ProcessIdentity::is_alive(&inst.intent.holder),
        layers: inst.intent.layers.clone(),
        cgroup: inst.intent.cgroup.as_ref().map(|d| d.display().to_string()),
        command: inst.intent.command.clone(),
        remote: inst
            .intent
            .remote
            .as_ref()
            .and_then(RemoteSide::from_json)
            .map(|r| RemoteView {
                destination: r.target.destination(),
                pid: r.identity.as_ref().map(|i| i.pid),
                settled: r.settled,
                outcome: r.outcome,
            }),
        processes,
    }
}
