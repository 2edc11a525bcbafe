//! Lifetimes: `shared` serves every session from one instance, `session` gives each session its
//! own and ends it with the session, `request` lives for one call.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::support::{fixture_server, instances, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode};

#[test]
fn a_shared_instance_serves_every_session_and_outlives_them() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut clients: Vec<_> = (0..3).map(|_| gw.client(Some("fx"))).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.initialize();
        c.echo(&format!("hello from client {i}"));
    }
    assert_eq!(
        instances(&cookie, "fx").len(),
        1,
        "one shared instance for three sessions"
    );
    for c in &mut clients {
        assert_eq!(c.delete(), 200);
    }
    // The sessions are over; the shared instance is the gateway's and stays.
    assert_eq!(instances(&cookie, "fx").len(), 1);
    let mut late = gw.client(Some("fx"));
    late.initialize();
    late.echo("still there");
    gw.shut_down(&cookie);
}

#[test]
fn session_instances_are_one_per_session_and_end_with_it() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &["--children", "2"], "lifetime = \"session\""),
    );
    let mut clients: Vec<_> = (0..3).map(|_| gw.client(Some("fx"))).collect();
    for c in &mut clients {
        c.initialize();
        c.echo("mine");
    }
    let before = instances(&cookie, "fx");
    assert_eq!(before.len(), 3, "one instance per session: {before:?}");
    assert_eq!(clients[0].delete(), 200);
    assert!(
        eventually(SLACK, || instances(&cookie, "fx").len() == 2),
        "the deleted session's instance did not end"
    );
    // The others are untouched and still serve.
    clients[1].echo("still mine");
    clients[2].echo("still mine too");
    gw.shut_down(&cookie);
}

#[test]
fn a_request_instance_lives_for_one_call() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &["--children", "1"], "lifetime = \"request\""),
    );
    let mut c = gw.client(Some("fx"));
    c.initialize();
    for i in 0..3 {
        c.echo(&format!("call {i}"));
        assert!(
            eventually(SLACK, || instances(&cookie, "fx").is_empty()),
            "the instance of call {i} did not end with it"
        );
    }
    let ps = crate::harness::tether_json_ok(&cookie, "ps", &["--all"]);
    let started = ps["owners"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["instances"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["scope"] == "request")
        .count();
    assert!(
        started >= 3,
        "three calls, three instances at least (one more answered initialize): {started}"
    );
    let mut gw = gw;
    gw.signal(Signal::SIGTERM);
    assert!(gw.wait_exit(SLACK).success(), "{}", gw.log());
    cookie.assert_none_survive(Duration::from_secs(5));
}
