//! `tether reap` after the worst: the shim and its client SIGKILLed together, on a host
//! without cgroups (forced off, and the keeper with them: it would leave the sweep nothing to
//! find, see `shim_killed.rs` for what it does), at random moments of the instance's life and at the exact
//! moments between the ledger's intent and identity writes (failpoints). Whatever the watchdog
//! could not reach, an `env -i` + `setsid` double fork above all, is the sweep's to end: after
//! `tether reap`, nothing of the tree survives and every kill is in the report.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::process::procfs;

use crate::harness::{
    eventually, is_named, random_below, reap, report_pids, Cookie, Mode, WrapBuilder, ZOO, ZOO_ESCAPEES,
};

/// When the shim dies.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Stopped at a failpoint, then killed.
    Failpoint(&'static str),
    /// This long after the client started it.
    After(Duration),
    /// This long after the fixture said its zoo is complete.
    AfterReady(Duration),
}

/// A client (`sh`) running `tether wrap` over the zoo, with cgroups and the keeper forced off.
struct Client {
    sh: Child,
    /// Lines of the shared stderr (the fixture's ready line among them).
    lines: mpsc::Receiver<String>,
}

/// The zoo without the `env -i` escapee: everything the cookie finds.
fn cookie_zoo() -> Vec<&'static str> {
    ZOO_ESCAPEES
        .iter()
        .copied()
        .filter(|&f| f != "--env-i-escapee")
        .chain(["--ignore-sigterm", "--ignore-eof"])
        .collect()
}

fn start(cookie: &Cookie, failpoint: Option<&str>, zoo: &[&str]) -> Client {
    // Not `exec`: the shell stays, as the client, the shim's parent.
    let mut cmd = WrapBuilder::new(cookie, Mode::NoKeeper)
        .grace(Duration::from_millis(300))
        .fixture(zoo)
        .command_via_sh("\"$@\"; exit $?");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(point) = failpoint {
        cmd.env(tether_supervisor::failpoint::VAR, point);
    }
    let mut sh = cmd.spawn().expect("spawning the client");
    let stderr = sh.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Client { sh, lines }
}

/// The shim: the client's one child, once it exists.
fn shim_of(client: &Client) -> i32 {
    let mut shim = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            shim = procfs::children_of(client.sh.id() as i32).first().copied();
            shim.is_some()
        }),
        "the client never started tether"
    );
    shim.expect("shim pid")
}

fn kill_at(cookie: &Cookie, moment: Moment, zoo: &[&str]) {
    let failpoint = match moment {
        Moment::Failpoint(p) => Some(p),
        _ => None,
    };
    let mut client = start(cookie, failpoint, zoo);
    let shim = shim_of(&client);
    match moment {
        Moment::Failpoint(point) => assert!(
            eventually(Duration::from_secs(10), || procfs::state_of(shim) == Some('T')),
            "tether never stopped at failpoint {point}"
        ),
        // The random moment is the point of the test, not a wait for something.
        Moment::After(d) => std::thread::sleep(d),
        Moment::AfterReady(d) => {
            let ready = client
                .lines
                .iter()
                .find(|l| l.starts_with("tether-fixture: ready"))
                .is_some();
            assert!(ready, "the fixture never became ready");
            std::thread::sleep(d);
        }
    }
    let _ = kill(Pid::from_raw(shim), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(client.sh.id() as i32), Signal::SIGKILL);
    let _ = client.sh.wait();
    drop(client.sh.stdin.take());
    // The watchdog (a Tether process carrying the test cookie) does its part first.
    let is_tether = |p: i32| is_named(p, "tether") || is_named(p, "tether-watchdog");
    let settled = eventually(Duration::from_secs(10), || {
        !cookie.carriers().into_iter().any(is_tether)
    });
    assert!(settled, "tether processes linger: {:?}", cookie.carriers());
}

fn assert_reap_ends_everything(cookie: &Cookie, moment: Moment, zoo: &[&str]) {
    kill_at(cookie, moment, zoo);
    let survivors = cookie.carriers();
    let report = reap(cookie, &[]);
    let killed = report_pids(&report, "killed");
    for pid in &survivors {
        // A survivor may die on its own between the two reads; one still alive must be killed.
        assert!(
            killed.contains(pid) || procfs::state_of(*pid).is_none_or(|s| s == 'Z'),
            "{moment:?}: survivor {} not killed by reap; report: {report:#}",
            crate::harness::describe(*pid)
        );
    }
    cookie.assert_none_survive(Duration::from_secs(1));
    assert_eq!(report["live_instances"], 0, "{moment:?}: {report:#}");
    // And the ledger is closed: a second sweep finds nothing to do.
    let again = reap(cookie, &[]);
    assert_eq!(again["orphaned_instances"], 0, "{moment:?}: {again:#}");
    assert_eq!(again["killed"], 0, "{moment:?}: {again:#}");
}

#[test]
fn killed_between_intent_and_fork_leaves_a_closed_row_and_nothing_alive() {
    let cookie = Cookie::new();
    assert_reap_ends_everything(&cookie, Moment::Failpoint("after-intent"), ZOO);
}

#[test]
fn killed_between_fork_and_identity_the_gated_server_never_runs() {
    let cookie = Cookie::new();
    assert_reap_ends_everything(&cookie, Moment::Failpoint("before-identity"), ZOO);
}

#[test]
fn killed_once_the_zoo_is_built_reap_ends_the_scrubbed_escapee() {
    let cookie = Cookie::new();
    kill_at(&cookie, Moment::AfterReady(Duration::from_millis(20)), ZOO);
    let survivors = cookie.carriers();
    // Without a cgroup, the watchdog's cookie sweep cannot see the `env -i` escapee: it is
    // there for the ledger to find, or this test proves nothing.
    assert_eq!(survivors.len(), 1, "expected exactly the env -i escapee: {survivors:?}");
    let report = reap(&cookie, &[]);
    assert_eq!(report_pids(&report, "killed"), survivors, "{report:#}");
    cookie.assert_none_survive(Duration::from_secs(1));
}

#[test]
fn killed_at_random_moments_reap_leaves_nothing() {
    // Any moment of the instance's life, with every escapee the cookie can find.
    for _ in 0..10 {
        let cookie = Cookie::new();
        let moment = Moment::After(Duration::from_millis(random_below(100)));
        assert_reap_ends_everything(&cookie, moment, &cookie_zoo());
    }
}

#[test]
fn killed_at_random_moments_after_the_zoo_is_built_reap_leaves_nothing() {
    // The `env -i` escapee is found only by the identity the shim recorded, which takes one
    // tree walk (every 2 ms while the tree changes) after its exec: moments from 5 ms after
    // the zoo is complete. Earlier ones are the window README.md states for hosts without
    // cgroups.
    for _ in 0..10 {
        let cookie = Cookie::new();
        let moment = Moment::AfterReady(Duration::from_millis(5 + random_below(100)));
        assert_reap_ends_everything(&cookie, moment, ZOO);
    }
}
