//! Each teardown trigger against the whole escapee zoo (group children, a setsid child, a
//! double-forked daemon, an `env -i` double fork, all ignoring SIGTERM, under a server that
//! ignores EOF and SIGTERM), with the cgroup layer on and forced off: zero survivors within
//! grace + 1 s of the trigger.

#![allow(clippy::disallowed_methods)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::launch::{Launch, LedgerChoice, ServerCommand};
use tether_supervisor::layers::Layer;

use crate::harness::{Cookie, Mode, WrapBuilder, Wrapped, FIXTURE, ZOO, ZOO_ESCAPEES, ZOO_SLEEPERS};

const GRACE: Duration = Duration::from_millis(300);
const SLACK: Duration = Duration::from_secs(1);

/// Starts the zoo under `tether wrap` and checks it is all there and contained as `mode` says.
fn zoo(cookie: &Cookie, mode: Mode) -> Wrapped {
    let w = WrapBuilder::new(cookie, mode).grace(GRACE).fixture(ZOO).spawn();
    let ready = w.wait_ready();
    assert_eq!(ready.sleepers.len(), ZOO_SLEEPERS, "zoo incomplete: {ready:?}");
    w.assert_layers(mode);
    // The zoo is alive: the check at the end is not vacuous.
    assert!(
        cookie.carriers().len() >= 2 + ZOO_SLEEPERS,
        "expected tether, server and {ZOO_SLEEPERS} sleepers: {:?}",
        cookie.carriers()
    );
    w
}

macro_rules! in_every_mode {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn with_cgroup() {
                $body(Mode::Cgroup)
            }
            #[test]
            fn without_cgroup() {
                $body(Mode::NoCgroup)
            }
        }
    };
}

in_every_mode!(client_closes_stdin, |mode| {
    let cookie = Cookie::new();
    let mut w = zoo(&cookie, mode);
    let t0 = Instant::now();
    w.stdin.take();
    cookie.assert_none_survive(GRACE + SLACK);
    let status = w.wait_exit(SLACK);
    // The server ignored EOF and SIGTERM, so SIGKILL ended it, and the shim says so.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(t0.elapsed() >= GRACE, "killed before the grace period ran out");
});

in_every_mode!(client_stops_reading_stdout, |mode| {
    let cookie = Cookie::new();
    let mut w = zoo(&cookie, mode);
    w.stdout.take();
    cookie.assert_none_survive(GRACE + SLACK);
    w.wait_exit(SLACK);
    assert!(
        w.stderr_lines()
            .iter()
            .any(|l| l.contains("client stopped reading stdout")),
        "{:?}",
        w.stderr_lines()
    );
});

fn signalled(mode: Mode, signal: Signal) {
    let cookie = Cookie::new();
    let mut w = zoo(&cookie, mode);
    kill(Pid::from_raw(w.pid()), signal).expect("signal tether");
    cookie.assert_none_survive(GRACE + SLACK);
    w.wait_exit(SLACK);
}

in_every_mode!(sigterm_to_tether, |mode| signalled(mode, Signal::SIGTERM));
in_every_mode!(sigint_to_tether, |mode| signalled(mode, Signal::SIGINT));
in_every_mode!(sighup_to_tether, |mode| signalled(mode, Signal::SIGHUP));

in_every_mode!(client_process_exits, |mode| {
    // The client is a shell that starts tether in the background (stdin passed explicitly: an
    // async list would get /dev/null) and exits on SIGUSR1, while the test keeps both pipes
    // open, so the only trigger is the parent's exit.
    let cookie = Cookie::new();
    let builder = WrapBuilder::new(&cookie, mode).grace(GRACE).fixture(ZOO);
    let mut client = builder
        .command_via_sh(r#"trap 'exit 0' USR1; "$@" <&0 & wait"#)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client shell");
    let stderr = client.stderr.take().expect("stderr");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(l);
        }
    });
    let ready = crate::harness::eventually(Duration::from_secs(20), || {
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.starts_with("tether-fixture: ready"))
    });
    assert!(ready, "zoo never ready: {:?}", lines.lock().expect("lock"));
    kill(Pid::from_raw(client.id() as i32), Signal::SIGUSR1).expect("signal client");
    assert!(client.wait().expect("client wait").success());
    cookie.assert_none_survive(GRACE + SLACK);
    assert!(
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains("client process exited")),
        "{:?}",
        lines.lock()
    );
    // Keep the pipes open until here.
    drop(client.stdin.take());
});

in_every_mode!(server_exits_and_its_leftovers_die_at_once, |mode| {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, mode)
        .grace(Duration::from_secs(30))
        .fixture(ZOO_ESCAPEES)
        .fixture(&["--exit-after", "1", "--exit-code", "7"])
        .spawn();
    assert_eq!(w.wait_ready().sleepers.len(), ZOO_SLEEPERS);
    let request =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"bye"}}}"#;
    use std::io::{BufRead, Write};
    writeln!(w.stdin.as_mut().expect("stdin"), "{request}").expect("write");
    let mut reply = String::new();
    w.stdout.as_mut().expect("stdout").read_line(&mut reply).expect("read");
    assert!(reply.contains("bye"), "{reply}");
    // A 30 s grace does not apply: the server is gone, its leftovers are killed at once.
    cookie.assert_none_survive(SLACK);
    assert_eq!(w.wait_exit(SLACK).code(), Some(7));
});

#[test]
fn lifeline_cut_ends_the_tree() {
    for mode in [Mode::Cgroup, Mode::NoCgroup] {
        let cookie = Cookie::new();
        let mut argv = vec![FIXTURE.into(), "--tag".into(), cookie.0.clone().into()];
        argv.extend(ZOO.iter().map(Into::into));
        let server = ServerCommand::Local(argv);
        let mut launch = Launch::new(
            crate::harness::TETHER.into(),
            server,
            tether_supervisor::ids::random_id().expect("id"),
            tether_supervisor::ids::random_id().expect("id"),
        );
        launch.grace = GRACE;
        launch.ledger = LedgerChoice::At(cookie.state_dir());
        launch.disabled.insert(Layer::Pdeathsig);
        if mode == Mode::NoCgroup {
            launch.disabled.insert(Layer::Cgroup);
        }
        let mut shim = launch.spawn().expect("launch");
        // The client keeps the server's stdin open: only the lifeline can trigger.
        let _stdin = shim.stdin.take();
        // tether and its watchdog (the tag is in their argv), the server and its sleepers.
        cookie.wait_for_carriers(3 + ZOO_SLEEPERS);
        shim.cut_lifeline();
        cookie.assert_none_survive(GRACE + SLACK);
        let status = shim.child.wait().expect("wait shim");
        assert!(status.code().is_some() || status.signal_is_kill(), "{status:?}");
    }
}

trait SignalIsKill {
    fn signal_is_kill(&self) -> bool;
}
impl SignalIsKill for std::process::ExitStatus {
    fn signal_is_kill(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.signal() == Some(9)
    }
}

// Any catchable fatal signal ends the instance properly; only SIGKILL skips the shim's own
// teardown (and the watchdog covers that).
in_every_mode!(sigquit_to_tether, |mode| signalled(mode, Signal::SIGQUIT));
in_every_mode!(sigusr1_to_tether, |mode| signalled(mode, Signal::SIGUSR1));

#[test]
fn a_server_that_exits_on_eof_has_its_leftovers_killed_at_once() {
    // The MCP spec's shutdown: the client closes stdin and the server exits. Whatever the server
    // left behind dies then, not at the end of a (here 30 s) grace period.
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::NoCgroup)
        .grace(Duration::from_secs(30))
        .fixture(&["--children", "2", "--setsid-escapee", "--tough-children"])
        .spawn();
    assert_eq!(w.wait_ready().sleepers.len(), 3);
    w.stdin.take();
    cookie.assert_none_survive(SLACK);
    assert_eq!(w.wait_exit(SLACK).code(), Some(0));
}

#[test]
fn a_client_that_ignores_sigchld_still_gets_the_servers_status() {
    // SIG_IGN for SIGCHLD survives exec and makes the kernel reap children by itself; the shim
    // resets it, or it would lose the server's status and its pinned process group.
    let cookie = Cookie::new();
    let builder = WrapBuilder::new(&cookie, Mode::Cgroup).fixture(&["--exit-code", "3", "--children", "1"]);
    let mut cmd = builder.command_via_sh(r#"trap '' CHLD; exec "$@""#);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    cookie.wait_for_carriers(4);
    drop(child.stdin.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(3), "{status:?}");
    cookie.assert_none_survive(SLACK);
}
