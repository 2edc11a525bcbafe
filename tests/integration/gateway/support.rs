//! Driving a real `tether serve`: start it on a configuration of the test's own (written in its
//! state directory, listening on 127.0.0.1:0), find the port it bound in its log, speak MCP to
//! it over HTTP like a client would, and end it by signal.
//!
//! The gateway runs with the test's cookie in its environment, so every shim, server and
//! escapee it starts carries it, and the survivor checks find them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use super::http::{self, Response};
use crate::harness::{eventually, Cookie, Mode, StderrLog, FIXTURE, TETHER};

/// Time for anything the gateway does on a loaded machine (polled: a pass costs what it takes).
pub const SLACK: Duration = Duration::from_secs(10);

/// The message of an error answer ("" for any other).
pub fn error_message(answer: &Value) -> &str {
    answer
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Runs `test` with the cgroup layer on, then forced off.
pub fn in_both_modes(test: impl Fn(Mode)) {
    for mode in [Mode::Cgroup, Mode::NoCgroup] {
        test(mode);
    }
}

/// A `[servers.NAME]` table running the fixture with the test's tag and `flags`.
pub fn fixture_server(name: &str, cookie: &Cookie, flags: &[&str], extra: &str) -> String {
    let mut args = vec!["--tag".to_string(), cookie.0.clone()];
    args.extend(flags.iter().map(|f| f.to_string()));
    format!(
        "[servers.{name}]\ncommand = {}\nargs = {}\ngrace = \"300ms\"\n{extra}\n",
        toml_str(FIXTURE),
        serde_json::to_string(&args).expect("args")
    )
}

/// The `name` of each item of a listing answer's `result.{field}` (`tools`, `prompts`).
pub fn names(answer: &Value, field: &str) -> Vec<String> {
    answer
        .pointer(&format!("/result/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// A running `tether serve`.
pub struct Gateway {
    /// The process.
    pub child: Child,
    /// Its stderr.
    pub log: StderrLog,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its configuration file.
    pub config: PathBuf,
}

impl Gateway {
    /// Starts `tether serve` on `config` (TOML) in `mode`, and waits until it listens.
    pub fn start(cookie: &Cookie, mode: Mode, config: &str) -> Gateway {
        let path = cookie.state_dir().join("gateway.toml");
        std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
        std::fs::write(&path, config).expect("writing the configuration");
        Gateway::start_file(cookie, mode, path, &[])
    }

    /// Starts `tether serve --config FILE` with extra arguments, on 127.0.0.1:0.
    pub fn start_file(cookie: &Cookie, mode: Mode, config: PathBuf, extra: &[&str]) -> Gateway {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Gateway::start_with(cookie, mode, config, &args)
    }

    /// Starts `tether serve --config FILE ARGS…` (which must say where to listen).
    pub fn start_with(cookie: &Cookie, mode: Mode, config: PathBuf, args: &[&str]) -> Gateway {
        let (child, log) = Gateway::spawn(cookie, mode, &config, args);
        Gateway::listening(child, log, config)
    }

    /// Spawns `tether serve --config FILE ARGS…` without waiting for anything.
    pub fn spawn(cookie: &Cookie, mode: Mode, config: &std::path::Path, args: &[&str]) -> (Child, StderrLog) {
        Gateway::spawn_via(&[], cookie, mode, config, args)
    }

    /// The same, run by `launcher` (a program and its arguments that run the rest as a command,
    /// such as `unshare --pid --fork`); empty for none.
    pub fn spawn_via(
        launcher: &[&str],
        cookie: &Cookie,
        mode: Mode,
        config: &std::path::Path,
        args: &[&str],
    ) -> (Child, StderrLog) {
        let mut cmd = crate::harness::tether_via(launcher);
        cmd.args(["serve", "--config"]).arg(config).args(args);
        cookie.set_env(&mut cmd);
        if let Some(off) = mode.disable() {
            cmd.env("TETHER_DISABLE", off);
        }
        cmd.env("TETHER_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting tether serve");
        let log = StderrLog::collect(&mut child);
        (child, log)
    }

    /// Waits until a spawned `tether serve` listens (it fails the test if it exits first).
    pub fn listening(mut child: Child, log: StderrLog, config: PathBuf) -> Gateway {
        let mut addr = None;
        let listening = eventually(SLACK, || {
            addr = log.lines().iter().find_map(|l| listening_addr(l));
            addr.is_some() || child.try_wait().ok().flatten().is_some()
        });
        let Some(addr) = addr.filter(|_| listening) else {
            let _ = child.kill();
            panic!(
                "tether serve did not start listening; stderr:\n{}",
                log.lines().join("\n")
            );
        };
        Gateway {
            child,
            log,
            addr,
            config,
        }
    }

    /// The gateway's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.lines().join("\n")
    }

    /// Sends `signal` to the gateway.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("signalling the gateway");
    }

    /// Waits for the gateway to exit; returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        self.log.wait_exit(&mut self.child, within)
    }

    /// A client of `/mcp/{server}` (or `/mcp` for `None`).
    pub fn client(&self, server: Option<&str>) -> Client {
        Client::new(self.addr, server)
    }

    /// Ends the gateway with SIGTERM, expects a clean exit, and proves nothing of the test's is
    /// left once it is gone.
    pub fn shut_down(self, cookie: &Cookie) {
        self.stop();
        cookie.assert_none_survive(SLACK);
    }

    /// Ends the gateway with SIGTERM and expects a clean exit; what else carries the cookie (a
    /// server the test started itself) is the test's to end before its survivor check.
    pub fn stop(mut self) {
        self.signal(Signal::SIGTERM);
        let status = self.wait_exit(SLACK);
        assert!(
            status.success(),
            "tether serve exited with {status}; log:\n{}",
            self.log()
        );
    }

    /// Waits until the log has a line containing `needle`.
    pub fn wait_log(&self, needle: &str) {
        assert!(
            eventually(SLACK, || self.log().contains(needle)),
            "the gateway never logged {needle:?}; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // A failing test must not leave its gateway behind (the cookie's check kills the rest).
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the gateway's "serving … at http://ADDR/mcp/…" line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split(" at http://").nth(1)?;
    rest.split('/').next()?.parse().ok()
}

/// An MCP client over streamable HTTP.
pub struct Client {
    /// The gateway.
    pub addr: SocketAddr,
    /// `/mcp/{server}` or `/mcp`.
    pub path: String,
    /// The session, once initialized.
    pub session: Option<String>,
    /// A bearer token to present.
    pub token: Option<String>,
    /// The next request id.
    next_id: u64,
}

impl Client {
    /// A client of the gateway at `addr`, for `/mcp/{server}` (or `/mcp` for `None`).
    pub fn new(addr: SocketAddr, server: Option<&str>) -> Client {
        Client {
            addr,
            path: server.map_or("/mcp".to_string(), |s| format!("/mcp/{s}")),
            session: None,
            token: None,
            next_id: 1,
        }
    }

    /// Another client on the same session (for a request sent from another thread).
    pub fn twin(&self) -> Client {
        Client {
            session: self.session.clone(),
            token: self.token.clone(),
            ..Client::new(self.addr, None)
        }
        .at(&self.path)
    }

    fn at(mut self, path: &str) -> Client {
        self.path = path.to_string();
        self
    }

    /// Sends one message as the client would; returns the raw response.
    pub fn post(&self, message: &Value) -> Response {
        self.post_raw(message.to_string().as_bytes(), &[])
    }

    /// The headers of every POST of this client: JSON in, JSON or events out, its bearer token
    /// and its session, when it has them.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("Accept", "application/json, text/event-stream".to_string()),
        ];
        if let Some(t) = &self.token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        if let Some(s) = &self.session {
            headers.push(("Mcp-Session-Id", s.clone()));
        }
        headers
    }

    /// Sends raw bytes as the client would, with `extra` headers; an error when the connection
    /// fails.
    pub fn try_post_with(&self, body: &[u8], extra: &[(&str, &str)]) -> std::io::Result<Response> {
        let own = self.headers();
        let mut headers: Vec<(&str, &str)> = own.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.extend_from_slice(extra);
        http::request(self.addr, "POST", &self.path, &headers, body)
    }

    /// Sends raw bytes as the client would; an error when the connection fails.
    pub fn try_post(&self, body: &[u8]) -> std::io::Result<Response> {
        self.try_post_with(body, &[])
    }

    /// Sends raw bytes with extra headers.
    pub fn post_raw(&self, body: &[u8], extra: &[(&str, &str)]) -> Response {
        self.try_post_with(body, extra).expect("POST to the gateway")
    }

    /// Sends a request whose answer is streamed, and returns the stream once its headers are in
    /// (the request is then in flight upstream).
    pub fn stream(&self, message: &Value) -> http::EventStream {
        let own = self.headers();
        let headers: Vec<(&str, &str)> = own.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = http::EventStream::request(self.addr, "POST", &self.path, &headers, message.to_string().as_bytes())
            .expect("POST");
        assert_eq!(s.status, 200);
        s
    }

    /// `initialize`; panics unless it succeeds. Returns the result.
    pub fn initialize(&mut self) -> Value {
        let r = self.try_initialize();
        let result = r.1.get("result").cloned();
        result.unwrap_or_else(|| panic!("initialize failed: {}", r.1))
    }

    /// `initialize` then `notifications/initialized`; returns the status and the answer.
    pub fn try_initialize(&mut self) -> (u16, Value) {
        let id = self.id();
        let r = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}},
            "clientInfo": {"name": "tether-test", "version": "1"}
        }}));
        let answer = r.messages().into_iter().next().unwrap_or(Value::Null);
        if let Some(sid) = r.header("mcp-session-id") {
            self.session = Some(sid.to_string());
            let note = self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
            assert_eq!(note.status, 202, "notifications/initialized: {}", note.text());
        }
        (r.status, answer)
    }

    /// A request; returns the final answer (the last message of an event stream).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.id();
        let r = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let answer = r
            .messages()
            .into_iter()
            .find(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none());
        answer.unwrap_or_else(|| panic!("no answer to {method} (status {}): {}", r.status, r.text()))
    }

    /// `tools/call`; returns the answer.
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }

    /// `echo` through the gateway; panics unless the text comes back.
    pub fn echo(&mut self, text: &str) {
        let a = self.call_tool("echo", json!({"text": text}));
        assert_eq!(
            a.pointer("/result/content/0/text").and_then(Value::as_str),
            Some(text),
            "echo answered {a}"
        );
    }

    /// `DELETE` of the session; returns the status.
    pub fn delete(&mut self) -> u16 {
        let sid = self.session.clone().expect("a session to delete");
        let r = http::request(self.addr, "DELETE", &self.path, &[("Mcp-Session-Id", &sid)], b"").expect("DELETE");
        r.status
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The gateway's live instances of `server` in the test's ledger (`tether ps --json`).
pub fn instances(cookie: &Cookie, server: &str) -> Vec<Value> {
    let ps = crate::harness::tether_json_ok(cookie, "ps", &["--ledger"]);
    ps["owners"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["instances"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["server"] == server && i["state"] == "running")
        .collect()
}

/// A running `tether serve --stdio`: the test is its one client, on its stdin and stdout.
pub struct StdioGateway {
    /// The process.
    pub child: Child,
    /// Its stderr.
    pub log: StderrLog,
    stdin: Option<Box<dyn std::io::Write + Send>>,
    stdout: std::io::BufReader<Box<dyn std::io::Read + Send>>,
}

/// The client's end of a socketpair, for writing: dropping it shuts down the sending side, the
/// client's EOF (closing this fd alone would not: the reading copy holds the socket open).
struct SocketWriter(std::os::unix::net::UnixStream);

impl std::io::Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Drop for SocketWriter {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Write);
    }
}

impl StdioGateway {
    /// Starts `tether serve --stdio` on `config` (TOML, written in the test's state directory),
    /// its stdin and stdout two pipes.
    pub fn start(cookie: &Cookie, config: &str) -> StdioGateway {
        let mut child = Self::command(cookie, config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tether serve --stdio");
        let log = StderrLog::collect(&mut child);
        let stdin = child
            .stdin
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Write + Send>);
        let stdout = Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>;
        StdioGateway {
            child,
            log,
            stdin,
            stdout: std::io::BufReader::new(stdout),
        }
    }

    /// The same, its stdin and stdout one end of a socketpair, as Node's `child_process` (and
    /// so every Electron client) gives a server.
    pub fn start_over_socket(cookie: &Cookie, config: &str) -> StdioGateway {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a socketpair");
        let theirs = std::os::fd::OwnedFd::from(theirs);
        let twin = theirs.try_clone().expect("a second fd of the socket");
        let mut child = Self::command(cookie, config)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::from(twin))
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tether serve --stdio");
        let log = StderrLog::collect(&mut child);
        let reader = ours.try_clone().expect("a second fd of our end");
        StdioGateway {
            child,
            log,
            stdin: Some(Box::new(SocketWriter(ours))),
            stdout: std::io::BufReader::new(Box::new(reader)),
        }
    }

    fn command(cookie: &Cookie, config: &str) -> Command {
        std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
        let path = cookie.state_dir().join("stdio.toml");
        std::fs::write(&path, config).expect("writing the configuration");
        let mut cmd = Command::new(TETHER);
        cookie.set_env(&mut cmd);
        cmd.args(["serve", "--stdio", "--config"]).arg(&path);
        cmd
    }

    /// Writes one message.
    pub fn send(&mut self, message: &Value) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{message}").expect("writing to the gateway's stdin");
    }

    /// Writes raw bytes, as a hostile client would.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).expect("writing to the gateway's stdin");
    }

    /// Reads the next message the gateway writes.
    pub fn next_message(&mut self) -> Value {
        use std::io::BufRead;
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("reading the gateway's stdout");
        assert!(n > 0, "stdout closed; log:\n{}", self.log.lines().join("\n"));
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// Sends a request and reads lines until its answer.
    pub fn ask(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let v = self.next_message();
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    /// Closes its stdin (the client's EOF) and expects a clean exit.
    pub fn close(mut self) {
        drop(self.stdin.take());
        let status = self.log.wait_exit(&mut self.child, SLACK);
        assert!(status.success(), "{}", self.log.lines().join("\n"));
    }
}
