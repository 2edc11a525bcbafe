//! The remote wrapper when the connection drops before it notes its parent: sshd started it,
//! then went away before the wrapper's first look at `/proc`. The wrapper has been adopted (by
//! init or a subreaper) by then, and watching that parent would never see sshd go, so it must
//! not start the server at all.
//!
//! No sshd is needed to stand in for that moment: a subreaper of the test's own (python3, which
//! holds none of the channel's pipes) adopts the wrapper, whose starter has exited at a gate
//! before the wrapper runs a line. With sshd alive, the wrapper starts the server: every test
//! of `ssh_wrapper` proves that side.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use tether_supervisor::ssh::scripts::{self, Shell};

use crate::harness::{Cookie, FIXTURE};
use crate::ssh_remote::{bash, dash, GRACE, PATIENCE};

/// Sets itself subreaper, starts the wrapper's starter with the channel (its stdin and
/// stdout) and the gate (fd 3), lets go of all three, says so once the starter has exited, and
/// reaps until it has no child left.
const ADOPTER: &str = r#"
import ctypes, os, subprocess, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
starter = subprocess.Popen(["sh", "-c", '{ read g <&3; exec 3<&-; eval "$LINE"; } & exit'],
                           stdin=0, stdout=1, pass_fds=(3,))
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 3):
    os.dup2(null, fd)
starter.wait()
print("starter gone", file=sys.stderr, flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"#;

fn adopted_before_it_looks(shell: &Shell) {
    let tag = Cookie::new();
    let cookie = tether_supervisor::ids::random_id().expect("a cookie");
    let server = [FIXTURE.into(), "--tag".into(), tag.0.clone().into()];
    let line = scripts::wrapper_command(shell, &cookie, GRACE, &[], &server).expect("the wrapper's command");
    let (gate_read, gate_write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("a gate");
    let gate = gate_read.as_raw_fd();
    let mut cmd = Command::new("python3");
    cmd.args(["-c", ADOPTER])
        .env("LINE", &line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[allow(unsafe_code)]
    // SAFETY: only dup2, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(gate, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut adopter = cmd.spawn().expect("starting python3");
    drop(gate_read);
    let (tx, rx) = mpsc::channel();
    let stderr = adopter.stderr.take().expect("its stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        while !seen.iter().any(|l| l.contains(needle)) {
            match rx.recv_timeout(PATIENCE) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("never saw {needle:?}; stderr: {seen:#?}"),
            }
        }
    };
    wait_for("starter gone", &mut seen);
    // Only now may the wrapper run: its starter is gone, the adopter is its parent.
    let mut gate_write = std::fs::File::from(gate_write);
    gate_write.write_all(b"go\n").expect("opening the gate");
    wait_for("the connection dropped before the server started", &mut seen);
    let status = adopter.wait().expect("the adopter's end");
    assert!(status.success(), "{status}; stderr: {seen:#?}");
    assert!(
        !seen.iter().any(|l| l.starts_with("TETHER-REMOTE-ID")),
        "the server must not start: {seen:#?}"
    );
    drop(adopter.stdin.take());
    tag.assert_none_survive(PATIENCE);
}

#[test]
fn an_adopted_wrapper_does_not_start_the_server_dash() {
    adopted_before_it_looks(&dash());
}

#[test]
fn an_adopted_wrapper_does_not_start_the_server_bash() {
    adopted_before_it_looks(&bash());
}
