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
    assert_eq!(instances(&cookie, "fx").len(), 50);
    assert!(
        eventually(Duration::from_secs(2) + 3 * SLACK, || instances(&cookie, "fx")
            .is_empty()),
        "instances left: {}",
        instances(&cookie, "fx").len()
    );
    cookie.assert_only_left(&[gw.pid()], SLACK);
    gw.shut_down(&cookie);
}
