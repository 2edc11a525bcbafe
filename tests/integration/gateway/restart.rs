//! Restarts under load: the gateway ended by SIGTERM five times and SIGKILLed five times while
//! clients hold sessions on per-session and shared instances of a forking, TERM-ignoring server.
//! After each, nothing survives; after a SIGKILL that also takes the shims, the next start's
//! sweep ends what the watchdogs or the kernel left and says so.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::support::{fixture_server, in_both_modes, Gateway, SLACK};
use crate::harness::{Cookie, Mode, ZOO, ZOO_SLEEPERS};

/// The gateway, then per instance its shim, its watchdog, the server and the zoo.
const PER_INSTANCE: usize = 3 + ZOO_SLEEPERS;

fn config(cookie: &Cookie) -> String {
    format!(
        "{}\n{}",
        fixture_server("shared", cookie, ZOO, ""),
        fixture_server("own", cookie, ZOO, "lifetime = \"session\"")
    )
}

fn busy_gateway(cookie: &Cookie, path: Option<std::path::PathBuf>) -> Gateway {
    let gw = match path {
        None => Gateway::start(cookie, Mode::Cgroup, &config(cookie)),
        Some(p) => Gateway::start_file(cookie, Mode::Cgroup, p, &[]),
    };
    for server in ["shared", "own", "own"] {
        let mut c = gw.client(Some(server));
        c.initialize();
        c.echo(server);
    }
    cookie.wait_for_carriers(1 + 3 * PER_INSTANCE);
    gw
}

#[test]
fn five_sigterms_and_five_sigkills_leave_nothing() {
    let cookie = Cookie::new();
    let mut path = None;
    for round in 0..10 {
        let mut gw = busy_gateway(&cookie, path.clone());
        path = Some(gw.config.clone());
        if round < 5 {
            gw.signal(Signal::SIGTERM);
            assert!(gw.wait_exit(SLACK).success(), "round {round}: {}", gw.log());
        } else {
            gw.signal(Signal::SIGKILL);
            gw.wait_exit(SLACK);
        }
        cookie.assert_none_survive(Duration::from_millis(300) + SLACK);
    }
    let last = busy_gateway(&cookie, path);
    // Every shim ended its tree and closed its row, SIGKILL or not.
    last.wait_log("start-up sweep: nothing left by a dead Tether");
    last.shut_down(&cookie);
}

#[test]
fn the_start_up_sweep_ends_and_names_what_a_dead_gateway_s_shims_left() {
    // With the cgroup layer, the sweep kills the instance's cgroup; without it, the recorded
    // processes and whatever carries the instance's cookie.
    in_both_modes(|mode| {
        let cookie = Cookie::new();
        let gw = Gateway::start(&cookie, mode, &config(&cookie));
        let mut c = gw.client(Some("own"));
        c.initialize();
        c.echo("soon orphaned");
        cookie.wait_for_carriers(1 + PER_INSTANCE);
        // Power-loss style: the gateway, its shims, their watchdogs and keepers (without a
        // cgroup) die at once; the servers and their escapees are left running.
        let ps = crate::harness::tether_json_ok(&cookie, "ps", &["--ledger"]);
        let holders: Vec<i32> = ps["owners"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|o| o["instances"].as_array().cloned().unwrap_or_default())
            .filter_map(|i| i["holder_pid"].as_i64().map(|p| p as i32))
            .collect();
        let watchdogs: Vec<i32> = tether_supervisor::process::procfs::all_pids()
            .into_iter()
            .filter(|&p| {
                let tether = ["tether-watchdog", "tether-keeper"]
                    .iter()
                    .any(|n| crate::harness::is_named(p, n));
                tether && cookie.carriers().contains(&p)
            })
            .collect();
        for pid in watchdogs.iter().chain(&holders).chain(std::iter::once(&gw.pid())) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGKILL);
        }
        let mut gw = gw;
        gw.wait_exit(SLACK);
        let next = Gateway::start_file(&cookie, mode, gw.config.clone(), &[]);
        next.wait_log("start-up sweep: 1 orphaned instance(s)");
        let log = next.log();
        assert!(log.contains("[own "), "the sweep names the server it ended: {log}");
        let metrics = super::metrics::scrape(&cookie);
        assert_eq!(
            super::metrics::sample(&metrics, "tether_sweeps_total"),
            Some(1.0),
            "{metrics}"
        );
        assert!(
            super::metrics::sample(&metrics, "tether_swept_processes_total").is_some_and(|n| n >= 1.0),
            "the processes the sweep killed are counted: {metrics}"
        );
        cookie.assert_only_left(&[next.pid()], SLACK);
        next.shut_down(&cookie);
    });
}
