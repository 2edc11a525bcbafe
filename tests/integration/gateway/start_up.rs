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

/// `tether serve` is the `tether-gateway` program beside `tether`, which runs every server as
/// the `tether` beside it; either one alone says what is missing, and starts nothing.
#[test]
fn tether_and_its_gateway_program_each_name_the_other_when_it_is_missing() {
    let cookie = Cookie::new();
    let dir = cookie.state_dir().join("bin");
    std::fs::create_dir_all(&dir).expect("bin dir");
    let gateway = env!("CARGO_BIN_EXE_tether-gateway");
    let run = |program: &std::path::Path, args: &[&str]| {
        let mut cmd = std::process::Command::new(program);
        cookie.set_env(&mut cmd);
        let out = cmd.args(args).output().expect("running it");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    let alone = dir.join("tether");
    std::fs::hard_link(crate::harness::TETHER, &alone).expect("linking tether alone");
    let (status, err) = run(&alone, &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(status, Some(125), "{err}");
    assert!(err.contains(&dir.join("tether-gateway").display().to_string()), "{err}");
    std::fs::remove_file(&alone).expect("unlinking");

    let alone = dir.join("tether-gateway");
    std::fs::hard_link(gateway, &alone).expect("linking the gateway alone");
    let (status, err) = run(&alone, &["--listen", "127.0.0.1:0"]);
    assert_eq!(status, Some(125), "{err}");
    assert!(
        err.contains(&dir.join("tether").display().to_string()) && err.contains("tether wrap"),
        "{err}"
    );
    cookie.assert_none_survive(SLACK);
}
