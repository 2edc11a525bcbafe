//! Signals while the gateway starts: its handlers are installed before anything else, so a
//! SIGHUP or SIGTERM that arrives during the start-up sweep (held here by taking the sweep's
//! lock first, as a `tether reap` in progress would) is acted on once the gateway serves, and
//! never takes its default action, which for both is death on the spot.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode};

/// The test's configuration file, and the sweep lock taken (the gateway's start-up waits on it).
fn held_start(cookie: &Cookie) -> (PathBuf, Flock<std::fs::File>) {
    let dir = cookie.state_dir();
    std::fs::create_dir_all(&dir).expect("state dir");
    let config = dir.join("gateway.toml");
    std::fs::write(&config, fixture_server("fx", cookie, &[], "")).expect("configuration");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join("sweep.lock"))
        .expect("opening the sweep lock");
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("taking the sweep lock");
    (config, lock)
}

/// Whether `pid` has handlers for every one of `signals` (`SigCgt` in its status).
fn catches(pid: i32, signals: &[Signal]) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let caught = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    signals.iter().all(|s| caught & (1 << (*s as i32 - 1)) != 0)
}

/// Spawns the gateway and waits until it catches SIGHUP, SIGINT and SIGTERM (it is then
/// waiting for the lock: nothing of its start-up is done).
fn spawn_held(cookie: &Cookie, config: &std::path::Path) -> (std::process::Child, crate::harness::StderrLog) {
    let (child, log) = Gateway::spawn(cookie, Mode::Cgroup, config, &["--listen", "127.0.0.1:0"]);
    let pid = child.id() as i32;
    assert!(
        eventually(SLACK, || catches(
            pid,
            &[Signal::SIGHUP, Signal::SIGINT, Signal::SIGTERM]
        )),
        "tether serve never installed its signal handlers; log:\n{}",
        log.lines().join("\n")
    );
    assert!(
        !log.lines().iter().any(|l| l.contains("start-up sweep")),
        "the sweep waits for the lock"
    );
    (child, log)
}

#[test]
fn a_sighup_during_start_up_is_a_reload_once_serving_not_death() {
    let cookie = Cookie::new();
    let (config, lock) = held_start(&cookie);
    let (child, log) = spawn_held(&cookie, &config);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).expect("SIGHUP");
    drop(lock);
    // `listening` fails the test if the gateway died instead.
    let gw = Gateway::listening(child, log, config);
    gw.wait_log("SIGHUP: reloading");
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("served after a SIGHUP at start-up");
    gw.shut_down(&cookie);
}

#[test]
fn a_sigterm_during_start_up_is_a_clean_shutdown_once_it_can_be() {
    let cookie = Cookie::new();
    let (config, lock) = held_start(&cookie);
    let (mut child, log) = spawn_held(&cookie, &config);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    drop(lock);
    let status = log.wait_exit(&mut child, SLACK);
    let text = log.lines().join("\n");
    assert!(status.success(), "exited with {status}; log:\n{text}");
    assert!(
        text.contains("start-up sweep"),
        "the sweep ran to its end first:\n{text}"
    );
    assert!(text.contains("stopped (SIGTERM)"), "{text}");
    cookie.assert_none_survive(SLACK);
}
