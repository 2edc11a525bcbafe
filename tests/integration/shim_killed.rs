//! What happens when the shim itself is SIGKILLed, and where each layer's gap lies.
//!
//! With a cgroup, the watchdog (forked by the shim, outside the instance cgroup and the
//! client's session) sees its guard pipe reach EOF and writes `cgroup.kill`: nothing survives.
//! Without one, a keeper (the process the client started, a subreaper above the shim) kills
//! what the shim's death leaves: nothing survives either, whichever of the two is killed.
//! Without the keeper too, the server dies by its parent-death signal and the watchdog kills
//! every process carrying the instance cookie; only a process that both scrubbed its
//! environment and left the process group (the `env -i` double fork) is beyond reach, and is
//! left for the ledger sweep. Those are exactly the survivors asserted here.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use std::os::unix::process::ExitStatusExt;

use tether_supervisor::process::procfs;

use crate::harness::{eventually, require, Cookie, Feature, Mode, WrapBuilder, ZOO, ZOO_SLEEPERS};

const SLACK: Duration = Duration::from_secs(1);

#[test]
fn sigkilled_shim_with_cgroup_leaves_nothing() {
    if !require(
        Feature::Cgroup,
        "skipping: sigkilled_shim_without_cgroup_leaves_only_the_env_i_escapee covers this host",
    ) {
        return;
    }
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup).fixture(ZOO).spawn();
    assert_eq!(w.wait_ready().sleepers.len(), ZOO_SLEEPERS);
    w.assert_layers(Mode::Cgroup);
    kill(Pid::from_raw(w.pid()), Signal::SIGKILL).expect("kill tether");
    cookie.assert_none_survive(SLACK);
    w.wait_exit(SLACK);
}

/// Waits until the carriers are exactly `expected`, then kills them by PID and proves it.
fn assert_only_these_survive_then_clean_up(cookie: &Cookie, expected: &[i32]) {
    let mut last = Vec::new();
    let settled = eventually(Duration::from_secs(3), || {
        last = cookie.carriers();
        last.sort_unstable();
        last == expected
    });
    assert!(
        settled,
        "expected exactly {expected:?} to survive, found {:?}",
        last.iter().map(|&p| crate::harness::describe(p)).collect::<Vec<_>>()
    );
    cookie.kill_all();
    cookie.assert_none_survive(SLACK);
}

#[test]
fn sigkilled_shim_under_a_keeper_leaves_nothing_not_even_the_env_i_escapee() {
    // Killed as soon as the zoo is built (the `env -i` escapee just born, likely before the
    // shim's tree walk recorded it: the hardest moment, and the runs' own timing varies it):
    // whatever the shim's death orphans lands on the keeper, which kills it. No sweep runs.
    for _ in 0..5 {
        let cookie = Cookie::new();
        let mut w = WrapBuilder::new(&cookie, Mode::NoCgroup).fixture(ZOO).spawn();
        assert_eq!(w.wait_ready().sleepers.len(), ZOO_SLEEPERS);
        w.assert_layers(Mode::NoCgroup);
        let shim = w.shim_pid();
        kill(Pid::from_raw(shim), Signal::SIGKILL).expect("kill the shim");
        let status = w.wait_exit(Duration::from_secs(5));
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the keeper exits like its shim: {status:?}"
        );
        cookie.assert_none_survive(SLACK);
        assert!(
            w.stderr_lines()
                .iter()
                .any(|l| l.contains("the keeper ends what it left")),
            "{:#?}",
            w.stderr_lines()
        );
    }
}

#[test]
fn a_sigkilled_keeper_or_its_whole_process_group_leaves_nothing() {
    for whole_group in [false, true] {
        let cookie = Cookie::new();
        // Through `setsid`, so the group killed is the keeper's own, not the test's.
        let mut w = WrapBuilder::new(&cookie, Mode::NoCgroup)
            .fixture(ZOO)
            .spawn_via(&["setsid"]);
        assert_eq!(w.wait_ready().sleepers.len(), ZOO_SLEEPERS);
        let keeper = w.pid();
        let shim = w.shim_pid();
        assert_ne!(
            procfs::pgid_of(shim),
            procfs::pgid_of(keeper),
            "the shim left the client's group"
        );
        let target = if whole_group {
            // As a client that kills its children's process group does.
            -procfs::pgid_of(keeper).expect("the keeper's group")
        } else {
            keeper
        };
        kill(Pid::from_raw(target), Signal::SIGKILL).expect("kill the keeper");
        w.wait_exit(SLACK);
        // The shim sees the link close as its parent's exit and ends the tree.
        cookie.assert_none_survive(Duration::from_secs(5));
    }
}

#[test]
fn sigkilled_shim_without_cgroup_or_keeper_leaves_only_the_env_i_escapee() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::NoKeeper).fixture(ZOO).spawn();
    let ready = w.wait_ready();
    w.assert_layers(Mode::NoKeeper);
    let env_i = ready.sleepers_of("env-i");
    assert_eq!(env_i.len(), 1);
    kill(Pid::from_raw(w.pid()), Signal::SIGKILL).expect("kill tether");
    w.wait_exit(SLACK);
    assert_only_these_survive_then_clean_up(&cookie, &env_i);
}

#[test]
fn without_cgroup_or_subreaper_the_env_i_escapee_is_the_known_gap() {
    // The layers that remain (group, pidfd, pdeathsig, cookie) catch everything but a process
    // that left the group and scrubbed its environment: this is why the subreaper and the
    // cgroup exist. A failure here means a layer stopped doing its part.
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Bare).fixture(ZOO).spawn();
    let ready = w.wait_ready();
    w.assert_layers(Mode::Bare);
    let env_i = ready.sleepers_of("env-i");
    w.stdin.take();
    w.wait_exit(Duration::from_secs(3));
    assert_only_these_survive_then_clean_up(&cookie, &env_i);
}
