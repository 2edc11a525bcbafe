//! Tether as PID 1 of a PID namespace, as a container's entrypoint is: run with `unshare --pid
//! --fork --mount-proc` (util-linux), watched from the host. PID 1 inherits every orphan of its
//! namespace and has no default signal actions, so these tests prove that nothing it inherits
//! stays a zombie and that its signals still end it. The gateway's tests are in
//! `gateway/pid1.rs`; `tether wrap`'s here, with the helpers both use.

use std::io::BufRead;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::ledger::{InstanceState, Ledger};
use tether_supervisor::process::procfs;

use crate::harness::{describe, eventually, is_named, require, which, Cookie, Feature, Mode, WrapBuilder};

/// Time for anything on a loaded machine (polled).
const SLACK: Duration = Duration::from_secs(10);

/// `unshare` and its flags: the rest of the command line runs as PID 1 of a new PID
/// namespace, with a `/proc` of its own (as in a container).
pub fn launcher() -> Vec<String> {
    let unshare = which("unshare").display().to_string();
    vec![unshare, "--pid".into(), "--fork".into(), "--mount-proc".into()]
}

/// True when the host can run these tests; otherwise says why they skip (or fails, when
/// `TETHER_TEST_REQUIRE` names `pidns`).
pub fn supported() -> bool {
    require(Feature::PidNs, "skipping: Tether as PID 1 needs a PID namespace")
}

/// A PID namespace, seen from the host.
pub struct Namespace {
    /// Its PID 1, by its host pid.
    pub init: i32,
    /// Its `/proc/PID/ns/pid` link (`pid:[inode]`).
    link: String,
}

impl Namespace {
    /// The namespace whose PID 1 `unshare` (host pid `unshare`) forked; waits for it.
    pub fn of_unshare(unshare: i32) -> Namespace {
        let ours = ns_link(std::process::id() as i32).expect("our own pid namespace");
        let mut found = None;
        let appeared = eventually(SLACK, || {
            found = procfs::children_of(unshare).into_iter().find_map(|p| {
                ns_link(p)
                    .filter(|l| *l != ours)
                    .map(|link| Namespace { init: p, link })
            });
            found.is_some()
        });
        assert!(appeared, "unshare (pid {unshare}) started no PID namespace");
        found.expect("namespace")
    }

    /// Every process of the namespace (zombies included), by host pid.
    pub fn members(&self) -> Vec<i32> {
        procfs::all_pids()
            .into_iter()
            .filter(|&p| ns_link(p).as_deref() == Some(self.link.as_str()))
            .collect()
    }

    /// The namespace's processes, described, for failure messages.
    pub fn describe(&self) -> String {
        let described: Vec<String> = self.members().into_iter().map(describe).collect();
        format!("[\n  {}\n]", described.join("\n  "))
    }

    /// Waits until `cond` holds of the namespace's processes; fails with them otherwise.
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut(&[i32]) -> bool) {
        let held = eventually(SLACK, || cond(&self.members()));
        assert!(
            held,
            "{what}: not within {SLACK:?}; the namespace holds {}",
            self.describe()
        );
    }

    /// Waits until no process of the namespace is left (its PID 1 exited and took the rest).
    pub fn wait_empty(&self) {
        self.wait_until("the namespace should be empty", <[i32]>::is_empty);
    }

    /// Sends `signal` to the namespace's PID 1.
    pub fn signal_init(&self, signal: Signal) {
        kill(Pid::from_raw(self.init), signal).expect("signalling the namespace's PID 1");
    }
}

/// `/proc/PID/ns/pid`, which names the process's PID namespace (zombies' too).
fn ns_link(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|l| l.display().to_string())
}

/// A server whose shell leaves five orphans behind (`(sleep 2 &)`: the subshell exits at once)
/// and then serves by `cat`. The orphans are re-parented to the nearest subreaper, the shim,
/// which as PID 1 would inherit them anyway.
const ORPHANS: &str = "i=0; while [ $i -lt 5 ]; do (sleep 2 &); i=$((i+1)); done; echo ready; exec cat";

#[test]
fn as_pid1_tether_wrap_reaps_every_orphan_and_ends_on_sigterm() {
    if !supported() {
        return;
    }
    // Bare: no subreaper asked for, so the orphans land on the shim as PID 1 only. NoCgroup:
    // PID 1 is the keeper, and the orphans land on the shim under it (a subreaper).
    for mode in [Mode::Cgroup, Mode::Bare, Mode::NoCgroup] {
        let cookie = Cookie::new();
        let launcher = launcher();
        let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
        let mut wrapped = WrapBuilder::new(&cookie, mode)
            .command(&["sh", "-c", ORPHANS])
            .spawn_via(&launcher);
        let ns = Namespace::of_unshare(wrapped.pid());
        let mut line = String::new();
        wrapped
            .stdout
            .as_mut()
            .expect("stdout")
            .read_line(&mut line)
            .expect("the server's first line");
        assert_eq!(line.trim(), "ready", "{mode:?}");
        let sleepers = |members: &[i32]| members.iter().filter(|&&p| is_named(p, "sleep")).count();
        // The orphans exist, each a child of PID 1 (the shim, or the shim under the keeper) ...
        let mut shim = ns.init;
        if mode == Mode::NoCgroup {
            let found = crate::harness::eventually(SLACK, || {
                let child = procfs::children_of(ns.init)
                    .into_iter()
                    .find(|&p| is_named(p, "tether"));
                shim = child.unwrap_or(ns.init);
                child.is_some()
            });
            assert!(found, "no shim under the keeper: {}", ns.describe());
        }
        ns.wait_until("five orphaned sleeps, children of the shim", |m| {
            m.iter()
                .filter(|&&p| is_named(p, "sleep") && procfs::parent_of(p) == Some(shim))
                .count()
                == 5
        });
        // ... and once they exit, each is reaped: no sleep left, no zombie.
        ns.wait_until("every orphan reaped", |m| {
            sleepers(m) == 0 && m.iter().all(|&p| procfs::state_of(p) != Some('Z'))
        });
        let pid1 = if mode == Mode::NoCgroup {
            "tether-keeper"
        } else {
            "tether"
        };
        assert!(is_named(ns.init, pid1), "PID 1 is {pid1}: {}", ns.describe());
        // PID 1 has no default signal actions: the shim's own handling ends it.
        ns.signal_init(Signal::SIGTERM);
        let status = wrapped.wait_exit(SLACK);
        assert_eq!(
            status.code(),
            Some(128 + Signal::SIGTERM as i32),
            "{mode:?}: the server (cat) was ended by the forwarded SIGTERM; stderr:\n{}",
            wrapped.stderr_lines().join("\n")
        );
        ns.wait_empty();
        cookie.assert_none_survive(SLACK);
        // As PID 1 (or under a keeper that is) the shim closes its row itself (its watchdog dies
        // with the namespace).
        let rows = Ledger::open(&cookie.state_dir())
            .and_then(|l| l.all_instances())
            .expect("the ledger");
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert_eq!(rows[0].state, InstanceState::Ended, "{mode:?}: {rows:#?}");
        assert!(
            rows[0].end_reason.as_deref().unwrap_or_default().contains("SIGTERM"),
            "{mode:?}: {rows:#?}"
        );
    }
}
