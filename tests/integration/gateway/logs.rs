//! `--log-format json`: every line of the gateway's log is one JSON object (time, level, pid,
//! message, and the event's fields as keys of their own), and each lifecycle step is an event
//! that names its session, instance and server: session opened, instance starting (with its
//! shim's pid), ready, the session's end and why, the instance's end and why, and the instance
//! ended (its shim's exit status and how long it lived).

use serde_json::{json, Value};

use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode};

/// The log's events, every line parsed (a line that is not a JSON object fails the test).
fn events(gw: &Gateway) -> Vec<Value> {
    gw.log()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
            assert!(v.is_object(), "not a JSON object: {l}");
            v
        })
        .collect()
}

fn find<'a>(events: &'a [Value], message: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} event in {events:#?}"))
}

#[test]
fn json_logs_name_every_lifecycle_step_with_its_fields() {
    let cookie = Cookie::new();
    let config = cookie.state_dir().join("gateway.toml");
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    std::fs::write(&config, fixture_server("fx", &cookie, &[], "lifetime = \"session\"")).expect("config");
    let gw = Gateway::start_file(&cookie, Mode::Cgroup, config, &["--log-format", "json"]);
    let mut client = gw.client(Some("fx"));
    client.initialize();
    client.echo("logged");
    assert_eq!(client.delete(), 200);
    assert!(
        eventually(SLACK, || gw.log().contains("\"instance ended\"")),
        "no instance end logged: {}",
        gw.log()
    );
    let all = events(&gw);
    for e in &all {
        for key in ["time", "level", "pid", "message"] {
            assert!(e.get(key).is_some(), "no {key} in {e}");
        }
        assert_eq!(e["pid"], json!(gw.pid()), "{e}");
    }
    let opened = find(&all, "session opened");
    let session = opened["session"].as_str().expect("the session's key");
    assert_eq!(opened["server"], "fx", "{opened}");
    let starting = find(&all, "instance starting");
    let instance = starting["instance"].as_str().expect("the instance's id");
    assert_eq!(
        (&starting["server"], &starting["lifetime"]),
        (&json!("fx"), &json!("session")),
        "{starting}"
    );
    assert!(starting["shim_pid"].as_u64().is_some_and(|p| p > 1), "{starting}");
    assert_eq!(find(&all, "instance ready")["instance"], instance);
    let ended = find(&all, "session ended");
    assert_eq!(ended["session"], session, "{ended}");
    assert!(
        ended["reason"].as_str().is_some_and(|r| r.contains("DELETE")),
        "{ended}"
    );
    let ending = find(&all, "ending the instance");
    assert_eq!(ending["instance"], instance, "{ending}");
    assert!(ending["reason"].as_str().is_some_and(|r| !r.is_empty()), "{ending}");
    let gone = find(&all, "instance ended");
    assert_eq!(
        (&gone["instance"], &gone["server"]),
        (&json!(instance), &json!("fx")),
        "{gone}"
    );
    assert_eq!(gone["shim_pid"], starting["shim_pid"], "{gone}");
    assert!(gone["status"].as_str().is_some_and(|s| !s.is_empty()), "{gone}");
    assert!(gone["lived_ms"].as_u64().is_some(), "{gone}");
    assert_eq!(
        (&gone["cause"], &gone["escalated"]),
        (&json!("client"), &json!(false)),
        "{gone}"
    );
    assert!(gone["teardown_ms"].as_u64().is_some(), "{gone}");
    gw.shut_down(&cookie);
}
