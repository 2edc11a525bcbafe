//! When the local side of an SSH server dies without a word (power loss, SIGKILL of everything):
//! `tether reap` replays the remote kill from the ledger, on this boot or after a reboot of the
//! local host, and refuses when the recorded remote process is no longer the server.
//!
//! A power loss is simulated by freezing the local ssh client (SIGSTOP keeps its TCP connection
//! open, so the remote sshd sees nothing) once tether and its watchdog are SIGKILLed. Two things
//! of the kernel's would end the client with tether, and with it the connection (a FIN, which a
//! power loss never sends, and the remote wrapper would end the server by itself, racing the
//! reap): the parent-death signal, which these tests switch off, and the SIGHUP + SIGCONT that a
//! stopped process gets when its process group is orphaned (ssh leads its own group, and tether
//! was the group's one tie to the session), which is why the client is stopped only after
//! tether is dead.

use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::cgroup::remove_tree_when_empty;
use tether_supervisor::process::procfs;

use crate::harness::{
    actions, assert_one_action, eventually, reap, require, tether_json, Cookie, Feature, Wrapped, ZOO,
};
use crate::ssh_tether::{
    instance_id, local_ssh, remote_record, row, wait_identity, watchdog, wrap_with, PATIENCE, REMOTE_DEADLINE,
};
use crate::sshd::Sshd;

/// A local ssh client that outlives its shim: no parent-death signal.
const CLIENT_OUTLIVES_TETHER: &[&str] = &["--disable", "pdeathsig"];

/// `tether wrap --ssh` whose ssh client can be frozen by [`lose_power`].
fn wrap(sshd: &Sshd, cookie: &Cookie, flags: &[&str]) -> Wrapped {
    wrap_with(sshd, cookie, CLIENT_OUTLIVES_TETHER, flags, crate::ssh_tether::GRACE)
}

/// SIGKILLs tether and its watchdog, then freezes the local ssh client; returns the ssh pid.
fn lose_power(w: &mut Wrapped) -> i32 {
    let ssh = local_ssh(w);
    let wd = watchdog(w);
    kill(Pid::from_raw(wd), Signal::SIGKILL).expect("kill the watchdog");
    kill(Pid::from_raw(w.pid()), Signal::SIGKILL).expect("kill tether");
    w.wait_exit(PATIENCE);
    kill(Pid::from_raw(ssh), Signal::SIGSTOP).expect("stop ssh");
    assert!(
        eventually(PATIENCE, || procfs::state_of(ssh) == Some('T')),
        "the ssh client did not outlive tether, stopped: {}",
        crate::harness::describe(ssh)
    );
    ssh
}

#[test]
fn after_a_power_loss_reap_ends_the_remote_server() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let mut w = wrap(&sshd, &cookie, ZOO);
    let ready = w.wait_ready();
    wait_identity(&cookie);
    let ssh = lose_power(&mut w);
    // Nothing local acted: the remote server still runs.
    assert!(
        cookie.carriers().contains(&ready.pid),
        "the remote server died before the reap"
    );
    // doctor names it, with the fix.
    let (doctor, diag) = tether_json(&cookie, "doctor", &[]);
    assert_eq!(doctor.status.code(), Some(1), "orphans make doctor fail");
    let remote_orphans: Vec<&serde_json::Value> = diag["orphans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| {
            o["reason"]
                .as_str()
                .is_some_and(|r| r.contains(&format!("remote pid {}", ready.pid)))
        })
        .collect();
    assert_eq!(remote_orphans.len(), 1, "{diag:#}");
    assert!(
        remote_orphans[0]["fix"].as_str().is_some_and(|f| f.ends_with(" reap")),
        "{diag:#}"
    );
    let t0 = Instant::now();
    let report = reap(&cookie, &[]);
    assert_one_action(&report, "remote-killed", &format!("remote pid {}", ready.pid));
    // The reap also killed the frozen local client (its cgroup), so everything is gone.
    cookie.assert_none_survive(REMOTE_DEADLINE.saturating_sub(t0.elapsed()));
    assert!(remote_record(&cookie).settled);
    let _ = ssh;
    // A second reap has nothing left to do remotely.
    let again = reap(&cookie, &[]);
    assert!(actions(&again, "remote-killed").is_empty(), "{again:#}");
}

#[test]
fn rows_of_an_earlier_local_boot_still_get_their_remote_kill() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let mut w = wrap(&sshd, &cookie, &["--children", "1", "--setsid-escapee"]);
    let ready = w.wait_ready();
    wait_identity(&cookie);
    let ssh = lose_power(&mut w);
    // The ledger now says: recorded in another boot of this host.
    crate::ledger::pretend_an_earlier_boot(&cookie, &instance_id(&cookie));
    let t0 = Instant::now();
    let report = reap(&cookie, &[]);
    assert_eq!(actions(&report, "lost").len(), 1, "{report:#}");
    assert_eq!(actions(&report, "remote-killed").len(), 1, "{report:#}");
    // Local pids of an earlier boot mean nothing, but the frozen client still carries the
    // instance's cookie, which proves it ours: the cookie pass ends it.
    let by_cookie: Vec<i32> = actions(&report, "killed")
        .into_iter()
        .filter(|a| {
            a["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("carries the cookie"))
        })
        .filter_map(|a| a["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    assert_eq!(by_cookie, vec![ssh], "{report:#}");
    assert!(!cookie.carriers().contains(&ready.pid));
    cookie.assert_none_survive(REMOTE_DEADLINE.saturating_sub(t0.elapsed()));
    // No cgroup of an earlier boot can be here; this one is (the boot id is faked), and the
    // sweep leaves it until it is stale: the test removes it, by the path its row names.
    if let Some(dir) = row(&cookie).intent.cgroup {
        remove_tree_when_empty(&dir, PATIENCE).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
    }
}

#[test]
fn a_stale_remote_identity_is_refused_and_the_stranger_lives() {
    if !require(
        Feature::PidReuse,
        "skipping: no stranger can be handed the server's pid",
    ) {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let mut w = wrap(&sshd, &cookie, &[]);
    w.wait_ready();
    let rec = wait_identity(&cookie);
    let server = rec.identity.as_ref().expect("identity").pid;
    let ssh = lose_power(&mut w);
    // The remote server dies and a stranger takes its pid: everything remote carrying the
    // cookie goes (the wrapper too), the frozen local client stays.
    for p in cookie.carriers_except(&[ssh]) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    cookie.assert_only_left(&[ssh], PATIENCE);
    let bystanders = Cookie::new();
    let mut stranger = crate::ledger::bystander_with_pid(&bystanders, server).expect("the server's pid for a stranger");
    let report = reap(&cookie, &[]);
    assert_one_action(&report, "remote-refused", "started at another time");
    assert!(
        stranger.try_wait().expect("try_wait").is_none(),
        "the stranger was signalled"
    );
    assert!(
        remote_record(&cookie).settled,
        "a refusal settles: the process is not ours any more"
    );
    stranger.kill().expect("kill the stranger");
    stranger.wait().expect("reap the stranger");
    cookie.assert_none_survive(PATIENCE);
}
