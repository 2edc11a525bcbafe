//! Sessions abandoned without DELETE (the common case): fifty of them, each with its own
//! instance, all ended by the idle timeout, none left.

use std::time::Duration;

use super::support::{fixture_server, instances, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode};

#[test]
fn fifty_abandoned_sessions_are_all_ended_by_the_idle_timeout() {
    let cookie = Cookie::new();
    let config = format!(
        "[gateway]\nsession_idle_timeout = \"2s\"\n\n{}",
        fixture_server("fx", &cookie, &["--children", "1"], "lifetime = \"session\"")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    for i in 0..50 {
        let mut c = gw.client(Some("fx"));
        c.initialize();
        c.echo(&format!("session {i}"));
    }
    assert!(
        eventually(Duration::from_secs(2) + 3 * SLACK, || instances(&cookie, "fx")
            .is_empty()),
        "instances left: {}",
        instances(&cookie, "fx").len()
    );
    // Fifty instances in all, one per session (however fast they came on this machine), each
    // recorded as ended.
    let rows = tether_supervisor::ledger::Ledger::open(&cookie.state_dir())
        .and_then(|l| l.all_instances())
        .expect("the ledger");
    let fx: Vec<_> = rows.iter().filter(|r| r.intent.server == "fx").collect();
    assert_eq!(fx.len(), 50, "one instance per session");
    assert!(fx
        .iter()
        .all(|r| !r.state.is_open() && r.intent.scope.starts_with("session")));
    cookie.assert_only_left(&[gw.pid()], SLACK);
    gw.shut_down(&cookie);
}
