//! Hostile servers: a stderr that never ends (nor is UTF-8), a stdout closed by a process that
//! stays alive, a flood of notifications, answers to requests never sent, answers nested
//! 100,000 deep. Garbage, invalid UTF-8, truncated and oversized answers are `bad_input`'s; a
//! server that stops reading is `teardown`'s.

use serde_json::{json, Value};

use super::super::metrics::{sample, scrape, wait_sample};
use super::super::support::{error_message, fixture_server, names, Gateway, SLACK};
use super::memory::{assert_grew_less_than, peak_rss_kib};
use crate::harness::{eventually, Cookie, Mode};

#[test]
fn a_server_writing_to_stderr_without_end_or_utf8_is_served_and_costs_no_memory() {
    let cookie = Cookie::new();
    let config = format!(
        "{}\n{}",
        fixture_server("flood", &cookie, &["--stderr-flood"], ""),
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("flood"));
    c.initialize();
    let before = peak_rss_kib(gw.pid());
    // Lines that are not UTF-8, and lines of a megabyte, keep passing through the gateway's log.
    assert!(
        eventually(std::time::Duration::from_secs(40), || gw
            .log
            .lines()
            .iter()
            .rev()
            .take(50)
            .any(|l| flood_line(l).is_some_and(|n| n >= 20_000))),
        "the flood never reached line 20000; the log ends:\n{}",
        gw.log
            .lines()
            .iter()
            .rev()
            .take(5)
            .map(|l| l.chars().take(300).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let log = gw.log();
    assert!(log.contains("-byte line, cut) server=flood"), "no line was cut");
    c.echo("served through the flood");
    assert_grew_less_than(gw.pid(), before, 30, "a stderr flood");
    let mut other = gw.client(Some("fx"));
    other.initialize();
    other.echo("and another server too");
    gw.shut_down(&cookie);
}

/// The number of a stderr flood line logged whole (with its byte that is not UTF-8 replaced).
fn flood_line(line: &str) -> Option<u64> {
    let rest = line.split("stderr: tether-fixture: stderr flood line ").nth(1)?;
    let (n, rest) = rest.split_once(' ')?;
    rest.starts_with('\u{FFFD}').then(|| n.parse().ok()).flatten()
}

/// The server inherits its stdout from its shim, which lets go of its own copy once the server
/// has it: the gateway reads the end of file the moment the server closes it, and ends the
/// instance then, not at a timeout. Two such servers: one closes it at start (its `initialize`
/// is in flight), one at its first `tools/call` (that call is). Their timeouts are ones no test
/// waits for, so an answer within the deadline proves it was not a timeout that ended them.
#[test]
fn a_server_that_closes_stdout_and_stays_is_ended_at_once() {
    let cookie = Cookie::new();
    let config = format!(
        "{}\n{}\n{}",
        fixture_server(
            "mute",
            &cookie,
            &["--close-stdout-and-stay"],
            "startup_timeout = \"1h\""
        ),
        fixture_server(
            "later",
            &cookie,
            &["--close-stdout-at-call"],
            "request_timeout = \"1h\""
        ),
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut mute = gw.client(Some("mute"));
    let answer = within_slack(&gw, "initialize", move || mute.try_initialize().1);
    ended_at_once(&gw, &cookie, "mute", "--close-stdout-and-stay", &answer);
    let mut later = gw.client(Some("later"));
    later.initialize();
    let answer = within_slack(&gw, "tools/call", move || {
        later.call_tool("echo", json!({"text": "never"}))
    });
    ended_at_once(&gw, &cookie, "later", "--close-stdout-at-call", &answer);
    let mut other = gw.client(Some("fx"));
    other.initialize();
    other.echo("served beside them");
    gw.shut_down(&cookie);
}

#[test]
fn an_ssh_server_that_closes_its_stdio_and_stays_is_ended_at_once() {
    // The remote wrapper keeps only a read end of the channel's stdout, so the server's close
    // reaches sshd, ssh and the gateway as an end of file. Of stdout and stderr both: OpenSSH
    // sends the channel's end of file once both are closed (one alone is seen at the timeouts).
    let Some(sshd) = crate::sshd::Sshd::start() else { return };
    let cookie = Cookie::new();
    let config = crate::gateway::ssh::remote_server_with(
        &sshd,
        &cookie,
        &["--close-stdio-and-stay"],
        "lifetime = \"session\"\nstartup_timeout = \"1h\"",
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut mute = gw.client(Some("remote"));
    let answer = within_slack(&gw, "initialize", move || mute.try_initialize().1);
    ended_at_once(&gw, &cookie, "remote", "--close-stdio-and-stay", &answer);
    gw.shut_down(&cookie);
}

/// What `ask` gets, on a thread of its own, failing the test when it takes longer than SLACK.
fn within_slack(gw: &Gateway, what: &str, ask: impl FnOnce() -> Value + Send + 'static) -> Value {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(ask());
    });
    rx.recv_timeout(SLACK)
        .unwrap_or_else(|_| panic!("{what} got no answer within {SLACK:?}; log:\n{}", gw.log()))
}

/// The call in flight on `server` got the reason, and the server (the fixture run with `flag`)
/// is ended with its tree and its shim, counted as a failure.
fn ended_at_once(gw: &Gateway, cookie: &Cookie, server: &str, flag: &str, answer: &Value) {
    assert_eq!(
        error_message(answer),
        format!("server {server:?}: the server closed its stdout but did not exit"),
        "{answer}"
    );
    let mut left = Vec::new();
    assert!(
        eventually(SLACK, || {
            left = carriers_running(cookie, flag);
            left.is_empty()
        }),
        "server {server:?}'s tree outlived its end: {left:?}; log:\n{}",
        gw.log()
    );
    wait_sample(
        cookie,
        &format!("tether_instances_ended_total{{server={server:?},reason=\"server_failed\"}}"),
        1.0,
    );
}

/// The test's live processes whose command line holds `flag` (a shim's holds its server's).
fn carriers_running(cookie: &Cookie, flag: &str) -> Vec<i32> {
    cookie
        .carriers()
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == flag.as_bytes()))
        })
        .collect()
}

/// A call's stream holds at most 256 messages: what its client does not read as fast as the
/// server writes is dropped (the answer never is), counted by server in
/// `tether_dropped_messages_total`, and told at warn level at most once per 10 s. The client
/// here reads nothing until the counter moves, so drops are certain; every notification is then
/// either read or counted.
#[test]
fn a_notification_flood_reaches_its_caller_and_the_answer_follows() {
    let cookie = Cookie::new();
    let n = 100_000;
    let config = format!(
        "{}\n{}",
        fixture_server(
            "chatty",
            &cookie,
            &["--notification-flood", &n.to_string()],
            "lifetime = \"session\""
        ),
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("chatty"));
    c.initialize();
    let before = peak_rss_kib(gw.pid());
    let started = std::time::Instant::now();
    let mut s = c.stream(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "after the flood"}}}));
    let dropped = "tether_dropped_messages_total{server=\"chatty\",where=\"call\"}";
    wait_sample(&cookie, dropped, 1.0);
    gw.wait_log("dropped 1 message for a client that does not read as fast as the server writes: a call's stream full (256 messages)");
    let (mut notes, mut answer) = (0, Value::Null);
    while let Some(m) = s.next(SLACK) {
        if m["id"] == 9 {
            answer = m;
            break;
        }
        notes += usize::from(m["method"] == "notifications/message");
    }
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("after the flood")),
        "{answer}"
    );
    // The reader routes in order: every drop was counted before the answer was.
    let counted = sample(&scrape(&cookie), dropped).unwrap_or_default();
    assert!(notes > 0 && notes < n, "{notes} notifications");
    assert_eq!(counted as usize, n - notes, "{notes} read, {counted} counted dropped");
    let warnings = gw
        .log
        .lines()
        .iter()
        .filter(|l| l.contains("does not read as fast"))
        .count();
    let intervals = started.elapsed().as_secs() / 10;
    assert!(
        warnings as u64 <= intervals + 1,
        "{warnings} warnings in {} intervals of 10 s",
        intervals + 1
    );
    assert_grew_less_than(gw.pid(), before, 50, "a notification flood");
    let mut other = gw.client(Some("fx"));
    other.initialize();
    other.echo("another server serves on");
    gw.shut_down(&cookie);
}

#[test]
fn answers_to_requests_never_sent_are_dropped_and_the_real_answer_arrives() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("liar", &cookie, &["--reply-unsolicited"], ""),
    );
    let mut c = gw.client(Some("liar"));
    c.initialize();
    for text in ["one", "two"] {
        let r = c.post(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}}));
        let messages = r.messages();
        assert_eq!(messages.len(), 1, "only the answer: {messages:?}");
        assert_eq!(messages[0].pointer("/result/content/0/text"), Some(&json!(text)));
    }
    gw.wait_log("an answer to no request in flight: 987654321");
    gw.wait_log("an answer to no request in flight: \"never-sent\"");
    gw.shut_down(&cookie);
}

/// A server's answers nested 100,000 deep. The gateway routes answers as bytes (it splices the
/// id, it does not read the result), so a call's answer passes through whole, and nothing can
/// overflow the gateway's stack. Where the gateway must read an answer (a listing it filters
/// or aggregates), it reads at most 128 levels: the filtered listing is refused whole, never
/// passed on unfiltered, and the aggregated listing leaves that server out, each naming the
/// depth.
#[test]
fn a_server_answer_nested_100000_deep_passes_through_or_is_refused_naming_its_depth() {
    let cookie = Cookie::new();
    let config = format!(
        "{}\n{}",
        fixture_server(
            "deep",
            &cookie,
            &["--deep-reply", "100000"],
            "tools = { exclude = [\"no_such_tool\"] }"
        ),
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("deep"));
    c.initialize();
    let nested = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "through"}}}));
    let text = r.text();
    assert!(
        text.contains(&format!(r#"{{"jsonrpc":"2.0","id":41,"result":{{"deep":{nested},"#)),
        "the answer did not pass through whole under the client's id: {}…",
        text.chars().take(300).collect::<String>()
    );
    assert!(
        text.contains(r#""text":"through""#),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );

    let listing = c.post(&json!({"jsonrpc": "2.0", "id": 42, "method": "tools/list"}));
    let answer = listing.messages().pop().unwrap_or(Value::Null);
    assert_eq!(answer["id"], 42, "{answer}");
    assert_eq!(
        error_message(&answer),
        "server \"deep\": its tools/list answer cannot be filtered (its tools filter), so none of it is passed on: nested 100002 deep, deeper than the 128 levels Tether reads",
        "{answer}"
    );

    let mut all = gw.client(None);
    all.initialize();
    let tools = all.request("tools/list", json!({}));
    let names = names(&tools, "tools");
    assert!(!names.is_empty(), "the other server's tools are listed: {tools}");
    assert!(!names.iter().any(|n| n.starts_with("deep__")), "{tools}");
    gw.wait_log("left out of tools/list: its answer cannot be read: nested 100002 deep, deeper than the 128 levels Tether reads");
    let again = c.post(&json!({"jsonrpc": "2.0", "id": 43, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "serves on"}}}));
    assert!(
        again.text().contains(r#""text":"serves on""#),
        "the deep server stopped serving"
    );
    let mut other = gw.client(Some("fx"));
    other.initialize();
    other.echo("and so does another");
    gw.shut_down(&cookie);
}
