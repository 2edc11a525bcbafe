//! The admin API through the CLI: `tether sessions` lists a running gateway's sessions and
//! instances (with their shims' pids and process counts), `tether kill` ends a session or an
//! instance and every process of it, `tether reload` applies a changed configuration; the
//! socket is 0600, an unknown id and a missing gateway are errors that say so.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{eventually, tether_json_ok, tether_run, Cookie, Mode};

/// The shim pids of the instances `listing` shows for session `key`.
fn shims_of(listing: &Value, key: &str) -> Vec<i32> {
    listing["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["session"] == key)
        .filter_map(|i| i["shim_pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect()
}

fn alive(pid: i32) -> bool {
    tether_supervisor::process::procfs::state_of(pid).is_some_and(|s| s != 'Z')
}

#[test]
fn sessions_kill_and_reload_through_the_admin_socket() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\""),
    );
    let socket = cookie.state_dir().join("admin.sock");
    let mode = std::fs::metadata(&socket)
        .expect("the admin socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the admin socket is the gateway user's only");

    let (mut a, mut b) = (gw.client(Some("fx")), gw.client(Some("fx")));
    for c in [&mut a, &mut b] {
        c.initialize();
        c.echo("listed");
    }
    let listing = tether_json_ok(&cookie, "sessions", &[]);
    let sessions = listing["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{listing:#}");
    let key = |i: usize| sessions[i]["key"].as_str().expect("a key").to_string();
    let (first, second) = (key(0), key(1));
    for k in [&first, &second] {
        let shims = shims_of(&listing, k);
        assert_eq!(shims.len(), 1, "one instance for session {k}: {listing:#}");
        assert!(alive(shims[0]), "shim {} of session {k} runs", shims[0]);
    }
    assert!(
        listing["instances"][0]["processes"].as_u64().is_some_and(|n| n >= 2),
        "a shim and its server at least: {listing:#}"
    );

    // A session, by its key: its instance's whole tree ends; the other session is untouched.
    let ended = tether_json_ok(&cookie, "kill", &[&first]);
    assert_eq!(ended["ended"], "session", "{ended}");
    let shim = shims_of(&listing, &first)[0];
    assert!(
        eventually(SLACK, || !alive(shim)),
        "the killed session's shim {shim} is still alive"
    );
    let other = shims_of(&listing, &second)[0];
    assert!(alive(other), "the other session's shim {other} was ended too");

    // An instance, by the start of its id.
    let instance = listing["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["session"] == second.as_str())
        .and_then(|i| i["id"].as_str())
        .expect("the second session's instance")
        .to_string();
    let ended = tether_json_ok(&cookie, "kill", &[&instance[..8]]);
    assert_eq!(
        (ended["ended"].as_str(), ended["id"].as_str()),
        (Some("instance"), Some(instance.as_str()))
    );
    assert!(
        eventually(SLACK, || !alive(other)),
        "the killed instance's shim {other} is still alive"
    );

    // Both ends are in the recent teardowns, newest first, with their reasons and durations.
    let mut recent = Value::Null;
    let listed = eventually(SLACK, || {
        recent = tether_json_ok(&cookie, "teardowns", &[]);
        recent.as_array().is_some_and(|r| r.len() == 2)
    });
    assert!(listed, "two teardowns expected: {recent:#}");
    for t in recent.as_array().into_iter().flatten() {
        assert_eq!(t["server"], "fx", "{t}");
        assert!(t["reason"].as_str().is_some_and(|r| r.contains("tether kill")), "{t}");
        assert!(t["teardown_ms"].as_u64().is_some(), "{t}");
    }
    assert_eq!(
        recent[0]["instance"].as_str(),
        Some(&instance[..8]),
        "newest first: {recent:#}"
    );

    let unknown = tether_run(&cookie, &["kill", "nosuchid"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no session or instance \"nosuchid\""),
        "{unknown:?}"
    );

    // A server added to the file is served once `tether reload` says so.
    let mut config = std::fs::read_to_string(&gw.config).expect("the config");
    config.push_str(&fixture_server("more", &cookie, &[], ""));
    std::fs::write(&gw.config, config).expect("writing the config");
    let reloaded = tether_json_ok(&cookie, "reload", &[]);
    assert_eq!(reloaded["applied"], true, "{reloaded}");
    let mut more = gw.client(Some("more"));
    more.initialize();
    more.echo("after the reload");
    gw.shut_down(&cookie);

    let gone = tether_run(&cookie, &["sessions"]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no gateway answers"),
        "{gone:?}"
    );
}

/// `GET /metrics` on the admin socket, the body.
fn scrape(cookie: &Cookie) -> String {
    use std::io::{Read, Write};
    let mut s =
        std::os::unix::net::UnixStream::connect(cookie.state_dir().join("admin.sock")).expect("the admin socket");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("asking for the metrics");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("the metrics");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("application/openmetrics-text"),
        "{head}"
    );
    body.to_string()
}

/// The value of the sample `name` (with its labels, as written), if present.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

#[test]
fn metrics_move_with_a_session_its_call_and_its_end() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\""),
    );
    let before = scrape(&cookie);
    assert_eq!(sample(&before, "tether_sessions"), Some(0.0), "{before}");
    assert_eq!(
        sample(&before, "tether_instances_started_total{server=\"fx\"}"),
        None,
        "{before}"
    );

    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("counted");
    let during = scrape(&cookie);
    for (name, want) in [
        ("tether_sessions", 1.0),
        ("tether_instances{server=\"fx\",lifetime=\"session\"}", 1.0),
        ("tether_instances_started_total{server=\"fx\"}", 1.0),
        ("tether_tool_call_seconds_count{server=\"fx\"}", 1.0),
    ] {
        assert_eq!(sample(&during, name), Some(want), "{name} in {during}");
    }
    assert!(
        sample(&during, "tether_processes").is_some_and(|n| n >= 2.0),
        "{during}"
    );

    assert_eq!(c.delete(), 200);
    let mut after = String::new();
    let ended = eventually(SLACK, || {
        after = scrape(&cookie);
        sample(&after, "tether_instances_ended_total{server=\"fx\"}") == Some(1.0)
    });
    assert!(ended, "the instance's end was not counted: {after}");
    assert_eq!(
        sample(&after, "tether_teardown_seconds_count{server=\"fx\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(sample(&after, "tether_sessions"), Some(0.0), "{after}");
    gw.shut_down(&cookie);
}
