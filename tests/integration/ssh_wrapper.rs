//! The remote wrapper, kill and preflight scripts against a real sshd, run by dash and by
//! bash --posix: identity first, data untouched, and nothing left on the "remote" host whether
//! the client dies, the server exits or Tether kills it explicitly.
//!
//! The "remote" host is this one, so survivors are counted in this /proc: by the fixture's tag
//! in argv and by the wrapper's cookie (see [`Case`]).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tether_supervisor::process::procfs;
use tether_supervisor::ssh::replies::{KillReport, Leader, Preflight, Refusal};
use tether_supervisor::ssh::scripts::{self, Shell};
use tether_supervisor::ssh::RemoteIdentity;

use crate::harness::{eventually, which, FIXTURE, ZOO, ZOO_ESCAPEES, ZOO_SLEEPERS};
use crate::ssh_remote::{bash, dash, with_both_shells, Case, Remote, GRACE, PATIENCE};

/// How long survivors of a teardown may take to be gone.
const CLEANUP: Duration = Duration::from_secs(3);

with_both_shells!(
    identity_first_then_json_rpc,
    client_sigkill_leaves_no_survivor,
    server_exit_status_passes_through,
    a_missing_command_exits_127,
    cookie_sweep_takes_an_escapee_without_stdio,
    remote_kill_refuses_strangers_then_kills,
    remote_kill_lets_a_polite_server_go_on_sigterm,
    every_byte_and_a_megabyte_line_round_trip,
    without_setsid_the_sweeps_still_clean_up,
);

fn identity_first_then_json_rpc(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    // The server writes to stderr as soon as it runs: the identity must still come before.
    let mut r = case.start(shell, &["--stderr-lines", "20"]);
    let id = r.identity();
    // The line is written just before the exec into the server: /proc may show the trampoline,
    // or nothing while the exec runs, for a moment.
    let entry = format!("TETHER_REMOTE_COOKIE={}", case.cookie.0);
    let is_server = || {
        procfs::cmdline_of(id.pid).is_some_and(|c| c.starts_with(FIXTURE) && c.contains(&case.tag.0))
            && procfs::environ_has(id.pid, entry.as_bytes())
    };
    assert!(
        eventually(PATIENCE, is_server),
        "pid {} did not become the server with the cookie: {:?}",
        id.pid,
        procfs::cmdline_of(id.pid)
    );
    assert_eq!(id.pgid, id.pid, "the server leads its own group");
    assert_eq!(session_of(id.pid), Some(id.pid), "the server leads its own session");
    assert_eq!(Some(id.start_ticks), procfs::start_time_of(id.pid));
    assert_eq!(id.boot_id, procfs::boot_id().expect("boot id"));

    r.send(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n");
    let reply: Value = serde_json::from_str(&r.read_line(PATIENCE)).expect("a JSON reply");
    assert_eq!(reply["id"], 7, "{reply}");
    assert_eq!(reply["result"], serde_json::json!({}), "{reply}");

    r.stdin.take();
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", r.stderr_lines().join("\n"));
    let after = r.stderr_after_identity();
    assert!(!after.iter().any(|l| l.starts_with("TETHER-REMOTE-ID")), "{after:?}");
    assert_eq!(after.first().map(String::as_str), Some("tether-fixture: stderr line 1"));
    case.assert_clean(CLEANUP);
}

fn client_sigkill_leaves_no_survivor(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let mut r = case.start(shell, ZOO);
    r.identity();
    r.wait_ready();
    // The server and its sleepers (same group, setsid, double fork, env -i) carry the tag.
    case.tag.wait_for_carriers(1 + ZOO_SLEEPERS);
    r.child.kill().expect("SIGKILL to ssh");
    r.child.wait().expect("reaping ssh");
    let t0 = Instant::now();
    case.assert_clean(CLEANUP);
    eprintln!(
        "{}: remote tree gone {:?} after the client's SIGKILL",
        shell.program,
        t0.elapsed()
    );
}

fn server_exit_status_passes_through(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let flags = [&["--exit-after", "1", "--exit-code", "7"], ZOO_ESCAPEES].concat();
    let mut r = case.start(shell, &flags);
    r.identity();
    r.wait_ready();
    case.tag.wait_for_carriers(1 + ZOO_SLEEPERS);
    r.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"x\"}}}\n");
    let reply: Value = serde_json::from_str(&r.read_line(PATIENCE)).expect("a JSON reply");
    assert_eq!(reply["id"], 1, "{reply}");
    // stdin stays open: the server exits by itself, and its escapees hold the channel open
    // until the wrapper kills them.
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(7), "stderr:\n{}", r.stderr_lines().join("\n"));
    case.assert_clean(CLEANUP);
}

fn a_missing_command_exits_127(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let missing = format!("/nonexistent/{}", case.tag.0);
    let mut r = case.start_server(shell, &[missing.clone().into()]);
    r.identity();
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(127), "stderr:\n{}", r.stderr_lines().join("\n"));
    let after = r.stderr_after_identity();
    assert!(after.iter().any(|l| l.contains(&missing)), "{after:?}");
    case.assert_clean(CLEANUP);
}

/// An escapee in a session of its own with /dev/null as stdio is out of reach of the group
/// kill and of the stdio sweep: only the cookie in its environment finds it.
fn cookie_sweep_takes_an_escapee_without_stdio(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let server = ["sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 & exec cat"].map(OsString::from);
    let mut r = case.start_server(shell, &server);
    r.identity();
    let mut escapee = None;
    let found = eventually(PATIENCE, || {
        escapee = case
            .cookie
            .carriers()
            .into_iter()
            .find(|&p| procfs::cmdline_of(p).is_some_and(|c| c == "sleep 600"));
        escapee.is_some()
    });
    assert!(found, "the escapee never started");
    let escapee = escapee.expect("escapee");
    assert_eq!(
        session_of(escapee),
        Some(escapee),
        "the escapee leads a session of its own"
    );
    r.child.kill().expect("SIGKILL to ssh");
    r.child.wait().expect("reaping ssh");
    case.assert_clean(CLEANUP);
}

fn remote_kill_refuses_strangers_then_kills(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let mut r = case.start(shell, ZOO);
    let id = r.identity();
    r.wait_ready();
    case.tag.wait_for_carriers(1 + ZOO_SLEEPERS);

    let mut bystander = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawning sleep");
    let b = bystander.id() as i32;
    let b_start = procfs::start_time_of(b).expect("bystander start time");
    let stranger = |start_ticks| RemoteIdentity {
        pid: b,
        pgid: b,
        start_ticks,
        boot_id: id.boot_id.clone(),
    };
    // A pid taken over by a process that started at another time.
    assert_eq!(
        case.remote_kill(shell, &stranger(b_start + 1)),
        KillReport::Refused(Refusal::Start)
    );
    // Same start time (a reuse within one tick), but not carrying the cookie.
    assert_eq!(
        case.remote_kill(shell, &stranger(b_start)),
        KillReport::Refused(Refusal::Cookie)
    );
    // The right process, recorded before a reboot.
    let rebooted = RemoteIdentity {
        boot_id: "00000000-0000-4000-8000-000000000000".into(),
        ..id.clone()
    };
    assert_eq!(case.remote_kill(shell, &rebooted), KillReport::Refused(Refusal::Boot));
    assert!(
        bystander.try_wait().expect("try_wait").is_none(),
        "a refused kill hit the bystander"
    );
    assert!(
        case.tag.carriers().len() >= 6,
        "a refused kill hit the server's tree: {:?}",
        case.tag.carriers()
    );

    // The zoo's server ignores SIGTERM: the leader needs SIGKILL. The sweep finds at least the
    // setsid and double-fork sleepers by their cookie.
    match case.remote_kill(shell, &id) {
        KillReport::Killed { leader, swept } => {
            assert_eq!(leader, Leader::Kill);
            assert!(swept >= 2, "swept only {swept}");
        }
        other => panic!("expected a kill, got {other:?}"),
    }
    // The env -i sleeper has no cookie: the wrapper, seeing its server die, finds it by the
    // channel's pipes. Then ssh ends with the server's status, 128 + SIGKILL.
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(137), "stderr:\n{}", r.stderr_lines().join("\n"));
    case.assert_clean(CLEANUP);
    assert!(bystander.try_wait().expect("try_wait").is_none(), "the bystander died");
    bystander.kill().expect("killing the bystander");
    bystander.wait().expect("reaping the bystander");
}

fn remote_kill_lets_a_polite_server_go_on_sigterm(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let mut r = case.start(shell, &["--ignore-eof", "--children", "1"]);
    let id = r.identity();
    r.wait_ready();
    let report = case.remote_kill(shell, &id);
    assert!(
        matches!(
            report,
            KillReport::Killed {
                leader: Leader::Term,
                ..
            }
        ),
        "{report:?}"
    );
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(143), "stderr:\n{}", r.stderr_lines().join("\n"));
    case.assert_clean(CLEANUP);
    // Asked again, the server is gone: nothing to refuse, nothing to kill.
    assert_eq!(
        case.remote_kill(shell, &id),
        KillReport::Killed {
            leader: Leader::Gone,
            swept: 0
        }
    );
}

fn every_byte_and_a_megabyte_line_round_trip(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let mut r = case.start(shell, &["--raw-echo"]);
    r.identity();
    let mut payload: Vec<u8> = (0..=255u8).collect();
    // 1 MiB of every byte value but the newline, then the newline: one long line.
    let mut x: u32 = 1;
    payload.extend((0..1 << 20).map(|_| {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        match (x >> 24) as u8 {
            b'\n' => b' ',
            b => b,
        }
    }));
    payload.push(b'\n');
    payload.extend((0..=255u8).rev());
    let expected = payload.clone();
    let mut stdin = r.stdin.take().expect("stdin");
    // Written from a thread: the echo comes back while we are still sending.
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&payload).expect("writing the payload");
        stdin
    });
    let echoed = r.read_exact(expected.len(), Duration::from_secs(60));
    let stdin = writer.join().expect("writer thread");
    assert!(echoed == expected, "{}", first_difference(&echoed, &expected));
    drop(stdin);
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", r.stderr_lines().join("\n"));
    case.assert_clean(CLEANUP);
}

/// Where setsid(1) is missing the server shares the wrapper's session and group, and the
/// wrapper signals it by pid; the cookie and stdio sweeps must still take the rest. Run
/// directly (no ssh) with a PATH that lacks setsid, in a group of its own as under sshd.
fn without_setsid_the_sweeps_still_clean_up(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let bin = RemovedOnDrop(std::env::temp_dir().join(format!("tether-nosetsid-{}", case.cookie.0)));
    let bin = &bin.0;
    std::fs::create_dir_all(bin).expect("creating the PATH dir");
    for tool in [shell.program.as_str(), "grep", "sleep"] {
        let real = which(tool);
        std::os::unix::fs::symlink(&real, bin.join(tool)).expect("symlinking a tool");
    }
    let flags = [
        "--exit-after",
        "1",
        "--exit-code",
        "5",
        "--children",
        "1",
        "--setsid-escapee",
        "--env-i-escapee",
        "--tough-children",
    ];
    let mut argv: Vec<OsString> = vec![
        case.cookie.0.clone().into(),
        GRACE.as_millis().to_string().into(),
        OsString::new(), // no environment header
    ];
    argv.extend(case.fixture(&flags));
    let mut cmd = Command::new(bin.join(&shell.program));
    cmd.args(&shell.flags)
        .arg("-c")
        .arg(scripts::WRAPPER_SCRIPT)
        .arg(&shell.program)
        .args(argv)
        .env("PATH", bin)
        .process_group(0);
    let mut r = Remote::spawn(cmd);
    let wrapper = r.child.id() as i32;
    let id = r.identity();
    assert_eq!(
        id.pgid, wrapper,
        "without setsid the server stays in the wrapper's group"
    );
    r.wait_ready();
    r.send(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{}}}\n",
    );
    r.read_line(PATIENCE);
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(5), "stderr:\n{}", r.stderr_lines().join("\n"));
    case.assert_clean(CLEANUP);
}

/// A directory removed when the test ends, passing or not.
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn preflight_accepts_posix_login_shells() {
    let Some(case) = Case::new() else { return };
    for shell in [Shell::default(), dash(), bash()] {
        let out = case
            .sshd
            .run(scripts::preflight_command(&shell).expect("preflight command"), PATIENCE);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let preflight = Preflight::parse(&stdout, out.status.code()).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; stderr {:?}",
                shell.program,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(preflight, Preflight { setsid: true }, "{}", shell.program);
    }
}

/// Field 6 of /proc/PID/stat.
fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(3)?.parse().ok()
}

fn first_difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(i) => format!("byte {i} differs: got {:#04x}, want {:#04x}", got[i], want[i]),
        None => format!("lengths differ: got {}, want {}", got.len(), want.len()),
    }
}
