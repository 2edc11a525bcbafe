//! The remote scripts never signal a process group that may have become a stranger's.
//!
//! The remote wrapper runs the server in a group of its own and, when it ends, SIGKILLs the
//! group. Once the server is reaped (bash reaps its jobs as they exit), the group's id is free
//! as soon as its last member is gone, and the host may give the number to a new process that
//! leads a group of its own. `signal_server` (common.sh, used by every signal the wrapper and the
//! remote kill send) signals a reaped server's group only while a member carrying the cookie
//! still holds it. Found by the chaos run with cgroups off, which rewinds the pid counter
//! (`ns_last_pid`): a wrapper's late group kill ended an unrelated build's process group.
//!
//! These run the function itself, with dash and bash --posix, on this host (no sshd needed).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tether_supervisor::process::procfs;
use tether_supervisor::ssh::scripts::{Shell, COMMON_SCRIPT};

use crate::harness::{eventually, require, Cookie, Feature};
use crate::ssh_remote::{bash, dash, with_both_shells};

const SLACK: Duration = Duration::from_secs(5);

with_both_shells!(
    a_reaped_server_s_group_taken_by_a_stranger_is_left_alone,
    a_reaped_server_s_group_held_by_a_cookie_carrier_is_killed,
);

/// Runs `signal_server KILL -PID PID START` with `cookie`; returns its exit status.
fn signal_server(shell: &Shell, test: &Cookie, cookie: &str, pid: i32, start: u64) -> Option<i32> {
    let script = format!("{COMMON_SCRIPT}\ncookie={cookie}\nsignal_server KILL -{pid} {pid} {start}");
    let mut cmd = Command::new(&shell.program);
    cmd.args(&shell.flags).arg("-c").arg(script).stdin(Stdio::null());
    test.set_env(&mut cmd).status().expect("running the shell").code()
}

/// A process leading a group of its own, carrying the test's cookie.
fn group_leader(test: &Cookie, program: &str, args: &[&str]) -> Child {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).process_group(0);
    test.set_env(&mut cmd).spawn().expect("spawning a group leader")
}

fn a_reaped_server_s_group_taken_by_a_stranger_is_left_alone(shell: &Shell) {
    let test = Cookie::new();
    let cookie = tether_supervisor::ids::random_id().expect("a cookie");
    // The "server": a group leader, then killed and reaped, as the wrapper's `wait` does.
    let mut server = group_leader(&test, "sleep", &["600"]);
    let pid = server.id() as i32;
    let start = procfs::start_time_of(pid).expect("the server's start time");
    // A server lives longer than a clock tick (the start time's unit): the stranger must not
    // share its start time, which only a pidfd's inode could tell apart (not a shell).
    let ticked = eventually(SLACK, || procfs::age_secs(pid).is_some_and(|a| a > 0.05));
    assert!(ticked, "the server's age never passed a tick");
    server.kill().expect("killing the server");
    server.wait().expect("reaping the server");
    let stranger = if require(
        Feature::PidReuse,
        "exercising the fallback, the server's group is simply gone (no stranger holds its id)",
    ) {
        // A stranger gets the number and leads a group by it.
        let got = crate::ledger::spawned_with_pid(pid, || group_leader(&test, "sleep", &["600"]))
            .expect("the server's pid for a stranger");
        assert_eq!(procfs::pgid_of(pid), Some(pid), "the stranger leads group {pid}");
        Some(got)
    } else {
        None
    };
    assert_eq!(
        signal_server(shell, &test, &cookie, pid, start),
        Some(1),
        "nothing of ours holds group {pid}: nothing is signalled"
    );
    if let Some(mut stranger) = stranger {
        assert!(
            stranger.try_wait().expect("try_wait").is_none(),
            "the stranger's group was killed"
        );
        stranger.kill().expect("killing the stranger");
        stranger.wait().expect("reaping the stranger");
    }
    test.assert_none_survive(SLACK);
}

fn a_reaped_server_s_group_held_by_a_cookie_carrier_is_killed(shell: &Shell) {
    let test = Cookie::new();
    let cookie = tether_supervisor::ids::random_id().expect("a cookie");
    // The "server" leaves a member in its group, carrying the cookie, and exits; it is reaped.
    let script = format!("TETHER_REMOTE_COOKIE={cookie} sleep 600 & echo $!");
    let mut server = group_leader(&test, "sh", &["-c", &script]);
    let pid = server.id() as i32;
    let start = procfs::start_time_of(pid).expect("the server's start time");
    server.wait().expect("reaping the server");
    // Polled: a member caught in the middle of its exec shows no environment for a moment.
    let mut member = None;
    let found = eventually(SLACK, || {
        member = test.carriers().into_iter().find(|&p| procfs::pgid_of(p) == Some(pid));
        member.is_some()
    });
    assert!(found, "no member left in the server's group");
    let member = member.unwrap_or_default();
    assert_eq!(signal_server(shell, &test, &cookie, pid, start), Some(0));
    assert!(
        eventually(SLACK, || procfs::state_of(member).is_none_or(|s| s == 'Z')),
        "the member of the server's group was not killed"
    );
    test.assert_none_survive(SLACK);
}
