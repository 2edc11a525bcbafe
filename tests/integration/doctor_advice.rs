//! `tether doctor` finds the orphans a double crash leaves (shim *and* watchdog SIGKILLed on a
//! host without cgroups, and without the keeper that would end them), and the fix it prints, run as printed by a shell, ends them.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::ledger::{Ledger, ProcessRole};

use crate::harness::{eventually, is_named, tether_json, Cookie, Mode, WrapBuilder, ZOO};

fn doctor(cookie: &Cookie) -> (bool, serde_json::Value) {
    let (out, json) = tether_json(cookie, "doctor", &[]);
    (out.status.success(), json)
}

#[test]
fn doctor_names_each_orphan_and_its_fix_works() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::NoKeeper).fixture(ZOO).spawn();
    let ready = w.wait_ready();
    let env_i = ready.sleepers_of("env-i");
    // Wait until the shim recorded the scrubbed escapee: only the ledger can find it later.
    let recorded = eventually(Duration::from_secs(10), || {
        let Ok(l) = Ledger::open(&cookie.state_dir()) else {
            return false;
        };
        let all = l.all_instances().unwrap_or_default();
        all.iter().any(|i| {
            l.processes_of(&i.intent.id)
                .unwrap_or_default()
                .iter()
                .any(|p| p.role == ProcessRole::Adopted && env_i.contains(&p.identity.pid))
        })
    });
    assert!(recorded, "the env -i escapee {env_i:?} was never recorded");
    let (healthy, before) = doctor(&cookie);
    assert!(healthy, "a healthy live instance is not an orphan: {before:#}");

    // The double crash: the watchdog and the shim, both SIGKILLed.
    let watchdogs: Vec<i32> = cookie
        .carriers()
        .into_iter()
        .filter(|&p| is_named(p, "tether-watchdog"))
        .collect();
    assert_eq!(watchdogs.len(), 1, "one watchdog expected");
    kill(Pid::from_raw(watchdogs[0]), Signal::SIGKILL).expect("kill watchdog");
    kill(Pid::from_raw(w.pid()), Signal::SIGKILL).expect("kill shim");
    w.wait_exit(Duration::from_secs(5));
    assert!(eventually(Duration::from_secs(5), || !cookie
        .carriers()
        .contains(&watchdogs[0])));
    let survivors: BTreeSet<i32> = cookie.carriers().into_iter().collect();
    let sleepers: BTreeSet<i32> = ready.sleepers.iter().map(|(p, _)| *p).collect();
    assert!(
        survivors.is_subset(&sleepers) && survivors.len() >= 4,
        "survivors {survivors:?}"
    );

    let (healthy, diag) = doctor(&cookie);
    assert!(!healthy, "orphans must make doctor fail: {diag:#}");
    let orphans = diag["orphans"].as_array().expect("orphans");
    let named: BTreeSet<i32> = orphans
        .iter()
        .filter_map(|o| o["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    assert_eq!(named, survivors, "{diag:#}");
    let fixes: BTreeSet<&str> = orphans.iter().filter_map(|o| o["fix"].as_str()).collect();
    assert_eq!(fixes.len(), 1, "one command fixes them all: {fixes:?}");
    let fix = fixes.into_iter().next().expect("fix");
    assert!(fix.ends_with(" reap"), "{fix}");

    let out = std::process::Command::new("sh")
        .args(["-c", fix])
        .env_remove("TETHER_STATE_DIR")
        .output()
        .expect("running the fix");
    assert!(out.status.success(), "{fix}: {}", String::from_utf8_lossy(&out.stderr));
    cookie.assert_none_survive(Duration::from_secs(2));
    let (healthy, after) = doctor(&cookie);
    assert!(
        healthy && after["orphans"].as_array().is_some_and(Vec::is_empty),
        "{after:#}"
    );
}
