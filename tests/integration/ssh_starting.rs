//! An SSH server that is still starting when its session ends: a login that takes a second (a
//! slow rc file, stood in for by a `ForceCommand` that sleeps first).
//!
//! If the client closes stdin during the login, the graceful wait starts once the server runs (it
//! is recorded, then ended); if tether is told to stop during the login, the connection closes
//! before the requested command runs, and nothing of it may be left (sshd's session ends the
//! login, or the wrapper's watch sees its sshd go).

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{Cookie, ZOO};
use crate::ssh_tether::{remote_record, wrap, PATIENCE, REMOTE_DEADLINE};
use crate::sshd::Sshd;

/// How long the login sleeps before it runs the requested command.
const LOGIN: Duration = Duration::from_secs(1);

fn slow_login() -> Option<Sshd> {
    Sshd::start_with(&format!(
        "ForceCommand sleep {}; exec sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
        LOGIN.as_secs()
    ))
}

#[test]
fn stdin_closed_during_the_login_still_ends_the_server_once_it_runs() {
    let Some(sshd) = slow_login() else { return };
    let cookie = Cookie::new();
    let mut w = wrap(&sshd, &cookie, ZOO);
    drop(w.stdin.take());
    w.wait_exit(PATIENCE);
    let rec = remote_record(&cookie);
    assert!(rec.identity.is_some(), "the server started and was recorded: {rec:?}");
    cookie.assert_none_survive(REMOTE_DEADLINE);
    assert!(rec.settled, "{rec:?}");
}

#[test]
fn a_stop_during_the_login_starts_nothing_remotely() {
    let Some(sshd) = slow_login() else { return };
    let cookie = Cookie::new();
    let mut w = wrap(&sshd, &cookie, ZOO);
    crate::ssh_tether::local_ssh(&w);
    kill(Pid::from_raw(w.pid()), Signal::SIGTERM).expect("term tether");
    w.wait_exit(PATIENCE);
    // Give the login its time to reach the wrapper, had it gone on after the connection closed.
    cookie.assert_none_survive(LOGIN + REMOTE_DEADLINE);
    assert!(
        !w.stderr_lines().iter().any(|l| l.starts_with("tether-fixture: ready")),
        "the server started after its connection was gone: {:#?}",
        w.stderr_lines()
    );
}
