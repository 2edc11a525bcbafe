//! Caps: `max_instances` refuses a new instance past it with an error naming the cap, not a
//! hang; `max_processes` refuses instances while the gateway's processes are at it; `max_procs`
//! caps one instance's tree.

use super::support::{error_message, fixture_server, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode};

#[test]
fn a_session_past_max_instances_gets_an_error_naming_the_cap() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\"\nmax_instances = 2"),
    );
    let mut first = gw.client(Some("fx"));
    first.initialize();
    let mut second = gw.client(Some("fx"));
    second.initialize();
    let mut third = gw.client(Some("fx"));
    let (status, answer) = third.try_initialize();
    assert_eq!(status, 200);
    assert!(error_message(&answer).contains("max_instances (2) reached"), "{answer}");
    // A session's end makes room.
    assert_eq!(first.delete(), 200);
    assert!(eventually(SLACK, || {
        let mut again = gw.client(Some("fx"));
        let (_, answer) = again.try_initialize();
        answer.get("result").is_some()
    }));
    second.echo("unaffected");
    gw.shut_down(&cookie);
}

#[test]
fn a_burst_of_starts_cannot_pass_max_processes_between_two_counts() {
    let cookie = Cookie::new();
    let config = format!(
        "[gateway]\nmax_processes = 4\n\n{}",
        fixture_server("fx", &cookie, &[], "lifetime = \"session\"")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    // Five sessions at once, each starting an instance of three processes (shim, watchdog,
    // server): the count of the last tick says none are alive, but each start counts until the
    // next tick, so at most two pass (0, then 3, below 4).
    let opened: Vec<bool> = std::thread::scope(|scope| {
        let tries: Vec<_> = (0..5)
            .map(|_| {
                scope.spawn(|| {
                    let mut c = gw.client(Some("fx"));
                    let (_, answer) = c.try_initialize();
                    c.session.is_some() && answer.get("result").is_some()
                })
            })
            .collect();
        tries.into_iter().map(|t| t.join().expect("a client")).collect()
    });
    let passed = opened.iter().filter(|o| **o).count();
    assert!(
        (1..=2).contains(&passed),
        "{passed} of 5 starts passed a cap of 4 processes"
    );
    gw.shut_down(&cookie);
}

#[test]
fn the_gateway_s_max_processes_refuses_new_instances() {
    let cookie = Cookie::new();
    let config = format!(
        "[gateway]\nmax_processes = 4\n\n{}",
        fixture_server("fx", &cookie, &["--children", "3"], "lifetime = \"session\"")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut first = gw.client(Some("fx"));
    first.initialize();
    first.echo("one instance: its shim, watchdog, server and three children");
    // Counted every second: the next instance is refused once the count is in.
    let mut refused = None;
    assert!(
        eventually(SLACK, || {
            let mut c = gw.client(Some("fx"));
            let (_, answer) = c.try_initialize();
            if c.session.is_some() {
                assert_eq!(c.delete(), 200);
            }
            refused = Some(answer.clone());
            error_message(&answer).contains("max_processes (4) is reached")
        }),
        "never refused: {refused:?}"
    );
    first.echo("the first goes on");
    gw.shut_down(&cookie);
}

#[test]
fn max_procs_caps_one_instance_s_tree() {
    if !crate::harness::require(
        crate::harness::Feature::Cgroup,
        "skipping: pids.max needs a cgroup (without one the shim warns that max_procs is not enforced)",
    ) {
        return;
    }
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &["--children", "8"], "max_procs = 4"),
    );
    let mut c = gw.client(Some("fx"));
    let (_, answer) = c.try_initialize();
    // The fixture cannot fork its eight children under pids.max = 4: it fails to start, and
    // the client is told so, naming the server.
    assert!(error_message(&answer).contains("\"fx\""), "{answer}");
    assert!(gw.log().contains("pids.max=4"), "{}", gw.log());
    gw.shut_down(&cookie);
}

#[test]
fn a_session_past_max_sessions_is_refused_naming_the_cap() {
    let cookie = Cookie::new();
    let config = format!(
        "[gateway]\nmax_sessions = 2\n\n{}",
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut first = gw.client(Some("fx"));
    first.initialize();
    let mut second = gw.client(Some("fx"));
    second.initialize();
    let mut third = gw.client(Some("fx"));
    let (_, answer) = third.try_initialize();
    assert!(error_message(&answer).contains("max_sessions (2)"), "{answer}");
    assert_eq!(first.delete(), 200);
    third.initialize();
    gw.shut_down(&cookie);
}
