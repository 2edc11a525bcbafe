//! The metrics on the admin socket, scraped for real while events happen: each counter moves
//! when its event does (a start; every kind of end, by reason; a SIGKILL escalation; trouble
//! from a server, by kind; a cap refusing; a sweep and the strangers it leaves alone), and what
//! is alive (sessions, instances, processes, orphans, the ledger's size) is read at scrape time.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::support::{fixture_server, toml_str, Gateway, SLACK};
use crate::harness::{eventually, tether_run, Cookie, Mode, FIXTURE};

/// `method path` on the admin socket: the status and the body.
pub fn admin(cookie: &Cookie, method: &str, path: &str) -> (u16, String) {
    let mut s =
        std::os::unix::net::UnixStream::connect(cookie.state_dir().join("admin.sock")).expect("the admin socket");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("asking the admin API");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("the admin API's answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status");
    if path == "/metrics" {
        assert!(
            head.to_ascii_lowercase().contains("application/openmetrics-text"),
            "{head}"
        );
    }
    (status, body.to_string())
}

/// `GET /metrics` on the admin socket, the body.
pub fn scrape(cookie: &Cookie) -> String {
    let (status, body) = admin(cookie, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample `name` (with its labels, as written), if present.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

/// Scrapes until sample `name` is at least `want`; fails naming it and the last scrape.
pub fn wait_sample(cookie: &Cookie, name: &str, want: f64) {
    wait_until(cookie, name, &format!("reached {want}"), |v| v >= want);
}

/// Scrapes until sample `name` is `want`.
fn wait_exactly(cookie: &Cookie, name: &str, want: f64) {
    wait_until(cookie, name, &format!("was {want}"), |v| v == want);
}

fn wait_until(cookie: &Cookie, name: &str, what: &str, ok: impl Fn(f64) -> bool) {
    let mut last = String::new();
    let reached = eventually(SLACK, || {
        last = scrape(cookie);
        sample(&last, name).is_some_and(&ok)
    });
    assert!(reached, "{name} never {what}: {last}");
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
    assert!(
        sample(&before, "tether_ledger_bytes").is_some_and(|b| b > 0.0),
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
    wait_sample(
        &cookie,
        "tether_instances_ended_total{server=\"fx\",reason=\"client\"}",
        1.0,
    );
    let after = scrape(&cookie);
    for (name, want) in [
        ("tether_teardown_seconds_count{server=\"fx\"}", 1.0),
        ("tether_sessions_ended_total{reason=\"client\"}", 1.0),
        ("tether_sessions", 0.0),
    ] {
        assert_eq!(sample(&after, name), Some(want), "{name} in {after}");
    }
    gw.shut_down(&cookie);
}

#[test]
fn every_kind_of_end_is_counted_by_its_reason() {
    let cookie = Cookie::new();
    let servers = [
        fixture_server("own", &cookie, &[], "lifetime = \"session\""),
        fixture_server("idle", &cookie, &[], "lifetime = \"session\"\nidle_timeout = \"300ms\""),
        fixture_server("req", &cookie, &[], "lifetime = \"request\""),
        fixture_server(
            "stubborn",
            &cookie,
            &["--ignore-eof", "--ignore-sigterm"],
            "lifetime = \"session\"",
        ),
        fixture_server("crash", &cookie, &["--exit-after", "1"], "lifetime = \"session\""),
    ];
    let removed = fixture_server("removed", &cookie, &[], "");
    let gw = Gateway::start(&cookie, Mode::Cgroup, &format!("{}\n{removed}", servers.join("\n")));
    let ended =
        |server: &str, reason: &str| format!("tether_instances_ended_total{{server=\"{server}\",reason=\"{reason}\"}}");

    // The client's DELETE, and an operator's `tether kill`.
    let mut by_client = gw.client(Some("own"));
    by_client.initialize();
    by_client.echo("deleted");
    assert_eq!(by_client.delete(), 200);
    wait_sample(&cookie, &ended("own", "client"), 1.0);
    let mut by_admin = gw.client(Some("own"));
    by_admin.initialize();
    by_admin.echo("killed");
    let id = by_admin.session.clone().expect("a session id");
    let kill = tether_run(&cookie, &["kill", &id]);
    assert!(kill.status.success(), "{kill:?}");
    wait_sample(&cookie, &ended("own", "admin"), 1.0);
    wait_sample(&cookie, "tether_sessions_ended_total{reason=\"admin\"}", 1.0);

    // An instance idle past its idle_timeout; a request's instance once it is answered.
    let mut idler = gw.client(Some("idle"));
    idler.initialize();
    idler.echo("then nothing");
    wait_sample(&cookie, &ended("idle", "idle"), 1.0);
    let mut requester = gw.client(Some("req"));
    requester.initialize();
    requester.echo("one request");
    wait_sample(&cookie, &ended("req", "request_done"), 1.0);

    // A server that ignores EOF and SIGTERM: its teardown escalates to SIGKILL after the grace.
    let mut stubborn = gw.client(Some("stubborn"));
    stubborn.initialize();
    stubborn.echo("will not go quietly");
    assert_eq!(stubborn.delete(), 200);
    wait_sample(&cookie, &ended("stubborn", "client"), 1.0);
    wait_sample(&cookie, "tether_kill_escalations_total{server=\"stubborn\"}", 1.0);
    let teardowns = crate::harness::tether_json_ok(&cookie, "teardowns", &[]);
    let of = |server: &str| {
        teardowns
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["server"] == server)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        (&of("stubborn")["escalated"], &of("stubborn")["cause"]),
        (&Value::Bool(true), &Value::from("client")),
        "{teardowns:#}"
    );
    assert_eq!(of("own")["escalated"], false, "{teardowns:#}");
    let now = scrape(&cookie);
    assert_eq!(
        sample(&now, "tether_kill_escalations_total{server=\"own\"}"),
        None,
        "a server that exits at EOF is not counted as escalated: {now}"
    );

    // A server that exits by itself after its first call.
    let mut crashing = gw.client(Some("crash"));
    crashing.initialize();
    crashing.echo("last words");
    wait_sample(&cookie, &ended("crash", "server_exited"), 1.0);
    wait_sample(
        &cookie,
        "tether_upstream_errors_total{server=\"crash\",kind=\"exited\"}",
        1.0,
    );

    // A reload that removes a server ends its shared instance.
    let mut user = gw.client(Some("removed"));
    user.initialize();
    user.echo("soon removed");
    std::fs::write(&gw.config, servers.join("\n")).expect("rewriting the configuration");
    let reload = tether_run(&cookie, &["reload"]);
    assert!(reload.status.success(), "{reload:?}");
    wait_sample(&cookie, &ended("removed", "reload"), 1.0);
    gw.shut_down(&cookie);
}

#[test]
fn trouble_from_servers_and_caps_are_counted_by_kind() {
    let cookie = Cookie::new();
    let config = [
        fixture_server("garbled", &cookie, &["--bad-json-reply"], ""),
        fixture_server("slow", &cookie, &["--slow", "5000"], "request_timeout = \"200ms\""),
        fixture_server("capped", &cookie, &[], "lifetime = \"session\"\nmax_instances = 1"),
        format!(
            "[servers.missing]\ncommand = {}\n",
            toml_str("/nonexistent/tether-test-no-such-server")
        ),
    ]
    .join("\n");
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);

    let mut c = gw.client(Some("garbled"));
    c.initialize();
    let answer = c.call_tool("echo", serde_json::json!({"text": "x"}));
    assert!(answer.get("error").is_some(), "{answer}");
    wait_sample(
        &cookie,
        "tether_upstream_errors_total{server=\"garbled\",kind=\"malformed\"}",
        1.0,
    );

    let mut c = gw.client(Some("slow"));
    c.initialize();
    let answer = c.call_tool("echo", serde_json::json!({"text": "x"}));
    assert!(answer.get("error").is_some(), "{answer}");
    wait_sample(
        &cookie,
        "tether_upstream_errors_total{server=\"slow\",kind=\"timeout\"}",
        1.0,
    );

    let mut first = gw.client(Some("capped"));
    first.initialize();
    first.echo("the one allowed");
    let mut second = gw.client(Some("capped"));
    let (_, refused) = second.try_initialize();
    assert!(refused.get("error").is_some(), "{refused}");
    wait_sample(&cookie, "tether_caps_hit_total{cap=\"max_instances\"}", 1.0);

    let mut c = gw.client(Some("missing"));
    let (_, refused) = c.try_initialize();
    assert!(refused.get("error").is_some(), "{refused}");
    let now = scrape(&cookie);
    // Its shim starts, and exits when the exec fails: the server exited.
    assert_eq!(
        sample(&now, "tether_upstream_errors_total{server=\"missing\",kind=\"exited\"}"),
        Some(1.0),
        "a server that cannot start is counted: {now}"
    );
    gw.shut_down(&cookie);
}

#[test]
fn an_admin_sweep_is_counted_with_the_strangers_it_leaves_alone() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\""),
    );
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("not swept");
    wait_exactly(&cookie, "tether_orphan_processes", 0.0);
    // A process with a Tether cookie no ledger of this state directory knows, naming this
    // gateway as its owner: an orphan as far as the gateway can tell, a stranger to the sweep.
    let (_, me) = admin(&cookie, "GET", "/v1/gateway");
    let me: Value = serde_json::from_str(&me).expect("the gateway's JSON");
    let stranger_id = tether_supervisor::ids::random_id().expect("a random id");
    let mut cmd = Command::new(FIXTURE);
    cookie.set_env(&mut cmd);
    let mut stranger = cmd
        .env("TETHER_INSTANCE", &stranger_id)
        .env("TETHER_OWNER", me["owner"].as_str().expect("the owner id"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the stranger");
    wait_exactly(&cookie, "tether_orphan_processes", 1.0);
    let started = scrape(&cookie);
    assert_eq!(
        sample(&started, "tether_sweeps_total"),
        Some(1.0),
        "the start-up sweep: {started}"
    );

    let (status, body) = admin(&cookie, "POST", "/v1/sweep");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("the sweep's report");
    let skipped: Vec<i64> = report["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["kind"] == "skipped-unknown")
        .filter_map(|a| a["pid"].as_i64())
        .collect();
    assert!(
        skipped.contains(&i64::from(stranger.id())),
        "the stranger is reported and left alone: {report:#}"
    );
    assert_eq!(report["killed"], 0, "nothing of a live gateway is swept: {report:#}");
    let after = scrape(&cookie);
    assert_eq!(sample(&after, "tether_sweeps_total"), Some(2.0), "{after}");
    assert!(
        sample(&after, "tether_strangers_skipped_total{why=\"unknown_cookie\"}").is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(
        stranger.try_wait().expect("the stranger's state").is_none(),
        "the stranger still runs"
    );
    c.echo("still served after the sweep");
    let _ = stranger.kill();
    let _ = stranger.wait();
    wait_exactly(&cookie, "tether_orphan_processes", 0.0);
    gw.shut_down(&cookie);
}
