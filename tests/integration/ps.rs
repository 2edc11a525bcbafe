//! `tether ps` against a live zoo: the owner, the instance and every process of its tree, with
//! the cgroup layer and without, then the instance gone from the live list once it ended.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{tether_json_ok, tether_run, Cookie, Mode, WrapBuilder, ZOO};

fn lists_the_whole_tree(mode: Mode) {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, mode).fixture(ZOO).spawn();
    let ready = w.wait_ready();
    let mut expected: BTreeSet<i32> = ready.sleepers.iter().map(|(p, _)| *p).collect();
    expected.insert(ready.pid);

    let listing = tether_json_ok(&cookie, "ps", &[]);
    let owners = listing["owners"].as_array().expect("owners");
    assert_eq!(owners.len(), 1, "{listing:#}");
    let owner = &owners[0];
    assert_eq!(owner["kind"], "wrap");
    // The owner row is the shim's own (under a keeper, the keeper's child).
    assert_eq!(owner["pid"], w.shim_pid());
    assert_eq!(owner["alive"], true);
    let inst = &owner["instances"][0];
    assert_eq!(inst["server"], "tether-fixture");
    assert_eq!(inst["state"], "running");
    assert_eq!(inst["holder_alive"], true);
    let listed: BTreeSet<i32> = inst["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    assert_eq!(listed, expected, "{mode:?}: {inst:#}");
    assert!(inst["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|p| p["rss_kib"].as_u64() > Some(0)));

    let text = tether_run(&cookie, &["ps"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("tether-fixture") && text.contains(&ready.pid.to_string()),
        "{text}"
    );

    w.stdin.take();
    w.wait_exit(Duration::from_secs(5));
    // The watchdog closes the row after the shim's exit, and carries the cookie until then.
    cookie.assert_none_survive(Duration::from_secs(2));
    let after = tether_json_ok(&cookie, "ps", &[]);
    assert!(after["owners"].as_array().is_some_and(Vec::is_empty), "{after:#}");
    let all = tether_json_ok(&cookie, "ps", &["--all"]);
    assert_eq!(all["owners"][0]["instances"][0]["state"], "ended", "{all:#}");
}

#[test]
fn ps_lists_the_tree_with_cgroup() {
    lists_the_whole_tree(Mode::Cgroup);
}

#[test]
fn ps_lists_the_tree_without_cgroup() {
    lists_the_whole_tree(Mode::NoCgroup);
}
