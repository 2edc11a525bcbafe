//! Servers over streamable HTTP behind the gateway, against the fixture in its `--http` mode
//! (which records what happens to its sessions): calls go through, every upstream session is
//! in the ledger and ended with a DELETE when its scope ends (405 accepted), a session the
//! server forgot is initialized again once, a SIGKILLed gateway's sessions are DELETEd by the
//! next one, and every way an HTTP server can answer badly gives the client an error naming
//! the server and the cause while other servers keep working.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use super::support::{error_message, fixture_server, instances, toml_str, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode, StderrLog, FIXTURE};

/// The fixture serving streamable HTTP, recording its sessions.
struct Remote {
    child: Child,
    log: StderrLog,
    url: String,
    record: PathBuf,
}

impl Remote {
    fn start(cookie: &Cookie, name: &str, flags: &[&str]) -> Remote {
        std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
        let record = cookie.state_dir().join(format!("{name}.record"));
        let mut cmd = Command::new(FIXTURE);
        cmd.args(["--http", "127.0.0.1:0", "--tag", &cookie.0, "--http-record"])
            .arg(&record)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cookie.set_env(&mut cmd);
        let mut child = cmd.spawn().expect("starting the HTTP fixture");
        let log = StderrLog::collect(&mut child);
        let mut url = None;
        let up = eventually(SLACK, || {
            url = log
                .lines()
                .iter()
                .find_map(|l| l.strip_prefix("tether-fixture: listening on ").map(str::to_string));
            url.is_some()
        });
        assert!(up, "the HTTP fixture did not listen: {:?}", log.lines());
        Remote {
            child,
            log,
            url: url.unwrap_or_default(),
            record,
        }
    }

    /// What happened to its sessions, a line each.
    fn records(&self) -> Vec<String> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The session ids it gave.
    fn sessions(&self) -> Vec<String> {
        self.records()
            .iter()
            .filter_map(|l| l.strip_prefix("initialize ").map(str::to_string))
            .collect()
    }

    fn wait_record(&self, line: &str) {
        assert!(
            eventually(SLACK, || self.records().iter().any(|l| l == line)),
            "the HTTP fixture never recorded {line:?}: {:?}; its log: {:?}",
            self.records(),
            self.log.lines()
        );
    }

    /// `[servers.NAME]` for it.
    fn server(&self, name: &str, extra: &str) -> String {
        format!("[servers.{name}]\nurl = {}\n{extra}\n", toml_str(&self.url))
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_http_session_lives_as_long_as_its_client_session_and_ends_with_a_delete() {
    let cookie = Cookie::new();
    let remote = Remote::start(&cookie, "remote", &[]);
    let strict = Remote::start(&cookie, "strict", &["--http-misbehave", "no-delete"]);
    let config = format!(
        "{}\n{}",
        remote.server("remote", "lifetime = \"session\""),
        strict.server("strict", "lifetime = \"session\"")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    for (name, upstream) in [("remote", &remote), ("strict", &strict)] {
        let mut c = gw.client(Some(name));
        c.initialize();
        c.echo("over http");
        let sessions = upstream.sessions();
        assert_eq!(sessions.len(), 1, "{:?}", upstream.records());
        let rows = instances(&cookie, name);
        assert_eq!(rows.len(), 1, "the session is in the ledger: {rows:?}");
        let ps = crate::harness::tether_run(&cookie, &["ps"]);
        let ps = String::from_utf8_lossy(&ps.stdout);
        assert!(
            ps.contains(&format!("a session with {} over HTTP", upstream.url)),
            "{ps}"
        );
        assert_eq!(c.delete(), 200);
        upstream.wait_record(&format!("DELETE {}", sessions[0]));
        assert!(
            eventually(SLACK, || instances(&cookie, name).is_empty()),
            "the ledger row of {name} was not closed"
        );
    }
    // A server that refuses DELETE (405, as the spec allows) ends the session all the same.
    gw.wait_log("DELETE answered 405");
    gw.stop();
    drop((remote, strict));
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_shared_http_session_ends_at_shutdown_and_a_sigkilled_gateway_s_at_the_next_start() {
    let cookie = Cookie::new();
    let remote = Remote::start(&cookie, "remote", &[]);
    let config = remote.server("remote", "");
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("remote"));
    c.initialize();
    c.echo("first gateway");
    let first = remote.sessions();
    assert_eq!(first.len(), 1);
    gw.stop();
    remote.wait_record(&format!("DELETE {}", first[0]));

    // SIGKILLed: nothing is DELETEd; the next gateway on this ledger ends the session.
    let mut gw = Gateway::start_file(&cookie, Mode::Cgroup, cookie.state_dir().join("gateway.toml"), &[]);
    let mut c = gw.client(Some("remote"));
    c.initialize();
    c.echo("second gateway");
    let second = remote.sessions()[1].clone();
    gw.signal(Signal::SIGKILL);
    gw.wait_exit(SLACK);
    assert!(!remote.records().contains(&format!("DELETE {second}")));
    let next = Gateway::start_file(&cookie, Mode::Cgroup, cookie.state_dir().join("gateway.toml"), &[]);
    remote.wait_record(&format!("DELETE {second}"));
    next.wait_log("that a dead gateway left open (DELETE answered 200 OK)");
    let mut ps = Value::Null;
    let closed = eventually(SLACK, || {
        ps = crate::harness::tether_json_ok(&cookie, "ps", &["--all"]);
        ps.to_string().contains("reaped")
    });
    assert!(closed, "the row is closed as reaped: {ps}");
    next.stop();
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn clients_sharing_an_http_session_with_the_same_ids_and_tokens_each_get_their_own() {
    let cookie = Cookie::new();
    let remote = Remote::start(&cookie, "remote", &[]);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &remote.server("remote", ""));
    super::routing::eight_clients_share(&gw, "remote");
    assert_eq!(
        remote.sessions().len(),
        1,
        "one upstream session for all: {:?}",
        remote.sessions()
    );
    gw.stop();
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_session_the_server_forgot_is_initialized_again_once() {
    let cookie = Cookie::new();
    let remote = Remote::start(&cookie, "remote", &["--http-misbehave", "forget-session"]);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &remote.server("remote", ""));
    let mut c = gw.client(Some("remote"));
    c.initialize();
    c.echo("after a 404");
    let sessions = remote.sessions();
    assert_eq!(sessions.len(), 2, "initialized again: {:?}", remote.records());
    assert!(remote.records().contains(&format!("404 {}", sessions[0])));
    c.echo("on the new session");
    assert_eq!(remote.sessions().len(), 2, "once: {:?}", remote.records());
    gw.wait_log("no longer knows the session (404)");
    gw.stop();
    remote.wait_record(&format!("DELETE {}", sessions[1]));
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn every_bad_http_answer_is_an_error_naming_the_server_and_the_cause() {
    let cookie = Cookie::new();
    let cases = [
        ("garbage", "is not JSON-RPC"),
        (
            "html",
            "200 OK with text/html; charset=utf-8, not JSON or an event stream",
        ),
        (
            "status500",
            "500 Internal Server Error: internal failure in the fixture",
        ),
        (
            "redirect",
            "was redirected (302 Found) to http://127.0.0.1:9/elsewhere: redirects are not followed",
        ),
        ("cut-stream", "the event stream ended before the answer"),
        ("huge", "larger than max_message_size"),
    ];
    let remotes: Vec<Remote> = cases
        .iter()
        .map(|(mode, _)| Remote::start(&cookie, mode, &["--http-misbehave", mode]))
        .collect();
    let mut config = fixture_server("local", &cookie, &[], "");
    for ((mode, _), remote) in cases.iter().zip(&remotes) {
        config.push_str(&remote.server(&mode.replace('-', "_"), ""));
    }
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    for ((mode, cause), remote) in cases.iter().zip(&remotes) {
        let name = mode.replace('-', "_");
        let mut c = gw.client(Some(&name));
        c.initialize();
        let answer = c.call_tool("echo", json!({"text": "x"}));
        let message = error_message(&answer);
        assert!(message.contains(&format!("server {name:?}")), "{mode}: {answer}");
        assert!(message.contains(cause), "{mode}: {answer}");
        assert!(message.contains(remote.url.as_str()), "{mode} names the URL: {answer}");
        assert!(!message.contains("secret"), "{mode}: no credentials: {answer}");
        // The other servers keep working, this one too for what it answers well.
        let mut local = gw.client(Some("local"));
        local.initialize();
        local.echo("still here");
        let listed = c.request("tools/list", json!({}));
        assert!(listed.pointer("/result/tools/0").is_some(), "{mode}: {listed}");
    }
    assert!(!gw.log().contains("secret"), "no credentials in the log");
    gw.stop();
    drop(remotes);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_legacy_sse_server_serves_calls_and_its_stream_closes_with_the_client_session() {
    let cookie = Cookie::new();
    let remote = super::three_servers::BareEverything::start_mode(&cookie, "sse");
    // OpenClaw's spelling of the transport, in Tether's TOML.
    let config = format!(
        "[servers.legacy]\nurl = \"http://{}/sse\"\ntransport = \"sse\"\nlifetime = \"session\"\n",
        remote.addr
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("legacy"));
    let init = c.initialize();
    assert_eq!(init["serverInfo"]["name"], "mcp-servers/everything", "{init}");
    let sum = c.call_tool("get-sum", json!({"a": 2, "b": 40}));
    assert!(sum.to_string().contains("42"), "{sum}");
    // A question mid-call comes over the server's stream; the answer is POSTed to its endpoint.
    let mut call = c.stream(&json!({"jsonrpc": "2.0", "id": "q", "method": "tools/call", "params": {
        "name": "trigger-sampling-request", "arguments": {"prompt": "over sse"}}}));
    let question = call.next(SLACK).expect("the sampling request");
    assert_eq!(question["method"], "sampling/createMessage", "{question}");
    let r = c.post(&json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "answered over sse"}, "model": "m"}}));
    assert_eq!(r.status, 202);
    let answer = call.next(SLACK).expect("the answer");
    assert_eq!(answer["id"], "q");
    assert!(answer.to_string().contains("answered over sse"), "{answer}");
    assert!(
        eventually(SLACK, || remote.output().contains("Client Connected")),
        "{}",
        remote.output()
    );
    assert_eq!(c.delete(), 200);
    assert!(
        eventually(SLACK, || remote.output().contains("Client Disconnected")),
        "the session's stream was not closed: {}",
        remote.output()
    );
    gw.stop();
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn an_https_server_is_trusted_through_its_ca_file_and_refused_without_it() {
    let cookie = Cookie::new();
    let pem = cookie.state_dir().join("remote.pem");
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let pem_arg = pem.to_string_lossy().into_owned();
    let remote = Remote::start(&cookie, "remote", &["--tls-cert-out", &pem_arg]);
    assert!(remote.url.starts_with("https://"), "{}", remote.url);
    let config = format!(
        "{}\n{}",
        remote.server(
            "trusted",
            &format!("ca_file = {}\nlifetime = \"session\"", toml_str(&pem_arg))
        ),
        remote.server("untrusted", "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("trusted"));
    c.initialize();
    c.echo("over tls");
    let session = remote.sessions()[0].clone();
    assert_eq!(c.delete(), 200);
    remote.wait_record(&format!("DELETE {session}"));
    // Without its CA the server's certificate is not trusted: a clear error, nothing sent.
    let mut u = gw.client(Some("untrusted"));
    let (_, refused) = u.try_initialize();
    let message = error_message(&refused);
    assert!(
        message.contains("untrusted") && message.contains(remote.url.as_str()),
        "{refused}"
    );
    assert!(message.to_lowercase().contains("certificate"), "{refused}");
    assert_eq!(remote.sessions().len(), 1, "{:?}", remote.records());
    gw.stop();
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_session_the_server_opens_as_its_scope_ends_is_deleted_all_the_same() {
    let cookie = Cookie::new();
    // The server answers initialize late: the gateway shuts down while the session opens.
    let remote = Remote::start(&cookie, "remote", &["--slow", "1500"]);
    let mut gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &remote.server("remote", "lifetime = \"session\""),
    );
    let addr = gw.addr;
    let opening = std::thread::spawn(move || {
        let mut c = super::support::Client::new(addr, Some("remote"));
        c.try_initialize()
    });
    gw.wait_log("instance starting (streamable HTTP)");
    gw.signal(Signal::SIGTERM);
    let status = gw.wait_exit(SLACK);
    assert!(status.success(), "{}", gw.log());
    let _ = opening.join();
    assert!(
        eventually(SLACK, || remote.sessions().len() == 1),
        "{:?}",
        remote.records()
    );
    remote.wait_record(&format!("DELETE {}", remote.sessions()[0]));
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_reload_that_changes_an_http_server_deletes_its_old_session() {
    let cookie = Cookie::new();
    let remote = Remote::start(&cookie, "remote", &[]);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &remote.server("remote", ""));
    let mut c = gw.client(Some("remote"));
    c.initialize();
    c.echo("before the reload");
    let first = remote.sessions()[0].clone();
    std::fs::write(&gw.config, remote.server("remote", "request_timeout = \"30s\"")).expect("rewrite");
    gw.signal(Signal::SIGHUP);
    remote.wait_record(&format!("DELETE {first}"));
    // The changed server serves on a session of its own.
    let mut again = gw.client(Some("remote"));
    again.initialize();
    again.echo("after the reload");
    assert_eq!(remote.sessions().len(), 2, "{:?}", remote.records());
    gw.stop();
    drop(remote);
    cookie.assert_none_survive(SLACK);
}
