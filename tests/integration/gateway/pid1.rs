//! `tether serve` as PID 1 of a PID namespace, as a container's entrypoint: it splits into an
//! init (PID 1, `tether-init`) and the gateway (its child), so that every orphan the
//! namespace's PID 1 inherits is reaped, and signals to PID 1 still reach the gateway. Each
//! shim's watchdog outlives its shim and is re-parented to PID 1: a gateway that were PID 1
//! itself would keep one zombie per instance it ever ended (the first test fails that way with
//! the init switched off).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::ledger::{InstanceRow, InstanceState, Ledger};
use tether_supervisor::process::procfs;

use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{is_named, Cookie, Mode, ZOO};
use crate::pid1::{launcher, supported, Namespace};

/// Starts `tether serve` on `config` as PID 1 of a new PID namespace, and waits until it
/// listens.
fn start(cookie: &Cookie, mode: Mode, config: &str) -> (Gateway, Namespace) {
    let path = cookie.state_dir().join("gateway.toml");
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    std::fs::write(&path, config).expect("writing the configuration");
    let mut launcher = launcher();
    // If the test (and so unshare) dies, its namespace dies too.
    launcher.push("--kill-child".into());
    let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
    let (child, log) = Gateway::spawn_via(&launcher, cookie, mode, &path, &["--listen", "127.0.0.1:0"]);
    let ns = Namespace::of_unshare(child.id() as i32);
    (Gateway::listening(child, log, path), ns)
}

/// The gateway under the init (PID 1's child `tether-gateway`), by host pid; `None` when
/// there is none (a gateway that is PID 1 itself).
fn gateway_under(ns: &Namespace) -> Option<i32> {
    procfs::children_of(ns.init)
        .into_iter()
        .find(|&p| is_named(p, "tether-gateway"))
}

/// The test's instance rows.
fn rows(cookie: &Cookie) -> Vec<InstanceRow> {
    Ledger::open(&cookie.state_dir())
        .and_then(|l| l.all_instances())
        .expect("the ledger")
}

/// One session: `initialize`, an `echo` (its instance runs), and, with `end`, its DELETE.
fn session(gw: &Gateway, end: bool) {
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("from a session of a gateway that is PID 1");
    if end {
        assert_eq!(c.delete(), 200);
    }
}

#[test]
fn as_pid1_the_gateway_leaves_no_zombie_and_shuts_down_on_sigterm() {
    if !supported() {
        return;
    }
    for mode in [Mode::Cgroup, Mode::NoCgroup] {
        let cookie = Cookie::new();
        let config = fixture_server(
            "fx",
            &cookie,
            &["--children", "2", "--double-fork"],
            "lifetime = \"session\"",
        );
        let (mut gw, ns) = start(&cookie, mode, &config);
        for _ in 0..4 {
            session(&gw, true);
        }
        // Every instance ended with its session, and whatever its end left to PID 1 (each
        // shim's watchdog, above all) was reaped: the namespace holds its init and the gateway,
        // nothing else, and no zombie.
        let gateway = gateway_under(&ns);
        ns.wait_until(
            &format!("{mode:?}: only the init and the gateway, no zombie"),
            |members| {
                members
                    .iter()
                    .all(|&p| (p == ns.init || Some(p) == gateway) && procfs::state_of(p).is_some_and(|s| s != 'Z'))
            },
        );
        assert!(
            is_named(ns.init, "tether-init") && gateway.is_some(),
            "{mode:?}: PID 1 is tether-init, the gateway its child: {}",
            ns.describe()
        );
        // SIGHUP to PID 1 reloads, as it does outside a container.
        ns.signal_init(Signal::SIGHUP);
        gw.wait_log("SIGHUP: reloading the configuration");
        // One session left open: the shutdown ends its instance.
        session(&gw, false);
        // A container's stop: SIGTERM to PID 1, which has no default action for it.
        ns.signal_init(Signal::SIGTERM);
        let status = gw.wait_exit(SLACK);
        assert!(
            status.success(),
            "{mode:?}: unshare (so PID 1) exited with {status}; log:\n{}",
            gw.log()
        );
        assert!(gw.log().contains("stopped (SIGTERM)"), "{mode:?}: {}", gw.log());
        ns.wait_empty();
        cookie.assert_none_survive(SLACK);
        // Ended by the gateway's shutdown and each shim's watchdog, which the init waited for.
        let rows = rows(&cookie);
        assert_eq!(rows.len(), 5, "{mode:?}: {rows:#?}");
        assert!(
            rows.iter().all(|r| r.state == InstanceState::Ended),
            "{mode:?}: every row closed before PID 1 exited: {rows:#?}"
        );
    }
}

#[test]
fn as_pid1_a_killed_gateway_ends_the_init_with_137_after_its_instances_ended_by_their_lifelines() {
    if !supported() {
        return;
    }
    for mode in [Mode::Cgroup, Mode::NoCgroup] {
        let cookie = Cookie::new();
        let config = fixture_server("fx", &cookie, ZOO, "lifetime = \"session\"");
        let (mut gw, ns) = start(&cookie, mode, &config);
        for _ in 0..2 {
            session(&gw, false);
        }
        let gateway = gateway_under(&ns).unwrap_or_else(|| panic!("no gateway under the init: {}", ns.describe()));
        kill(Pid::from_raw(gateway), Signal::SIGKILL).expect("SIGKILL to the gateway");
        let status = gw.wait_exit(SLACK);
        assert_eq!(
            status.code(),
            Some(128 + Signal::SIGKILL as i32),
            "{mode:?}: the init exits with 128 + SIGKILL; log:\n{}",
            gw.log()
        );
        ns.wait_empty();
        cookie.assert_none_survive(SLACK);
        // Each shim saw its lifeline close (or its parent die: the same moment) and ended its
        // tree itself before the init exited; nothing was left for the namespace's end to kill.
        let rows = rows(&cookie);
        assert_eq!(rows.len(), 2, "{mode:?}: {rows:#?}");
        for r in &rows {
            let reason = r.end_reason.as_deref().unwrap_or_default();
            assert!(
                r.state == InstanceState::Ended
                    && (reason.contains("lifeline closed") || reason.contains("client process exited")),
                "{mode:?}: ended by the shim, on its lifeline: {rows:#?}"
            );
        }
    }
}

#[test]
fn as_pid1_a_gateway_that_cannot_start_ends_the_init_with_its_status() {
    if !supported() {
        return;
    }
    let cookie = Cookie::new();
    let path = cookie.state_dir().join("gateway.toml");
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    std::fs::write(&path, "[servers.fx]\ncommand = 42\n").expect("writing the configuration");
    let mut launcher = launcher();
    launcher.push("--kill-child".into());
    let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
    let (mut child, log) = Gateway::spawn_via(&launcher, &cookie, Mode::Cgroup, &path, &["--listen", "127.0.0.1:0"]);
    let status = log.wait_exit(&mut child, SLACK);
    let text = log.lines().join("\n");
    assert_eq!(
        status.code(),
        Some(125),
        "the gateway's own status, through the init: {text}"
    );
    assert!(
        text.contains("expected a string"),
        "the configuration error is said: {text}"
    );
    cookie.assert_none_survive(SLACK);
}
