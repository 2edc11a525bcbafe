//! What an iteration runs before its kill: a gateway with a server of every lifetime (and an
//! SSH one when the host has sshd), clients holding sessions and calling, sometimes a
//! standalone `tether wrap` under a client shell; all of it running the fixture's escapee zoo.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::json;

use super::checks::SETTLE;
use super::targets;
use crate::gateway::ssh::remote_server;
use crate::gateway::support::{fixture_server, Client, Gateway};
use crate::harness::{eventually, Cookie, Mode, WrapBuilder, ZOO};
use crate::sshd::Sshd;

/// The gateway's configuration; `generation` changes the per-session server, so that a reload
/// ends its instances.
pub fn config(cookie: &Cookie, sshd: Option<&Sshd>, generation: u32) -> String {
    let mut own: Vec<String> = ZOO.iter().map(|s| s.to_string()).collect();
    own.extend(["--stderr-lines".to_string(), (generation % 3).to_string()]);
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    let mut text = [
        fixture_server("shared", cookie, ZOO, ""),
        fixture_server("own", cookie, &own, "lifetime = \"session\""),
        fixture_server("once", cookie, ZOO, "lifetime = \"request\""),
    ]
    .join("\n");
    if let Some(sshd) = sshd {
        text.push('\n');
        text.push_str(&remote_server(sshd, cookie, "session"));
    }
    text
}

/// Writes the configuration where every gateway of the run reads it.
pub fn write_config(cookie: &Cookie, text: &str) -> PathBuf {
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let path = cookie.state_dir().join("gateway.toml");
    std::fs::write(&path, text).expect("writing the configuration");
    path
}

/// Starts a gateway on the run's configuration (its start-up sweep runs first).
pub fn gateway(cookie: &Cookie, path: &std::path::Path, mode: Mode) -> Gateway {
    Gateway::start_file(cookie, mode, path.to_path_buf(), &[])
}

/// Opens a session on `server` and makes one call; the client, or why not.
pub fn session(gw: &Gateway, server: &str) -> Result<Client, String> {
    let mut c = gw.client(Some(server));
    let (status, answer) = c.try_initialize();
    if status != 200 || c.session.is_none() {
        return Err(format!("initialize on {server}: {status} {answer}"));
    }
    let a = c.call_tool("echo", json!({"text": server}));
    match a.pointer("/result/content/0/text").and_then(|t| t.as_str()) {
        Some(t) if t == server => Ok(c),
        _ => Err(format!("echo on {server}: {a}")),
    }
}

/// Clients of every server: the shared one, `sessions` on the per-session one, the per-request
/// one and the SSH one.
pub fn sessions(gw: &Gateway, sessions: u64, ssh: bool) -> Result<Vec<Client>, String> {
    let mut servers = vec!["shared", "once"];
    servers.extend((0..sessions).map(|_| "own"));
    if ssh {
        servers.push("remote");
    }
    servers.into_iter().map(|s| session(gw, s)).collect()
}

/// Calls from a thread of their own, while the driver waits for its random moment and kills:
/// a kill lands in the middle of requests, of per-request spawns, of teardowns.
pub struct Traffic {
    /// Set to stop.
    stop: Arc<AtomicBool>,
    /// Calls made so far.
    made: Arc<AtomicU64>,
    /// Set when the thread stopped by itself (no clients, or the gateway stopped answering).
    over: Arc<AtomicBool>,
    /// The thread, joined by [`Traffic::stop`].
    thread: Option<JoinHandle<u64>>,
}

impl Traffic {
    /// Starts calling `echo` round the clients (twins of them), answers ignored (the kill
    /// makes some fail), until stopped or the gateway stops answering.
    pub fn start(clients: &[Client]) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicU64::new(0));
        let over = Arc::new(AtomicBool::new(false));
        let (flag, count, done) = (Arc::clone(&stop), Arc::clone(&made), Arc::clone(&over));
        let twins: Vec<Client> = clients.iter().map(Client::twin).collect();
        let thread = std::thread::spawn(move || {
            let mut calls = 0u64;
            while !flag.load(Ordering::SeqCst) && !twins.is_empty() {
                let c = &twins[(calls % twins.len() as u64) as usize];
                let body = json!({"jsonrpc": "2.0", "id": calls + 100, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "chaos"}}});
                calls += 1;
                let answered = c.try_post(body.to_string().as_bytes()).is_ok();
                count.store(calls, Ordering::SeqCst);
                if !answered {
                    break; // The gateway is gone: the next one gets its own clients.
                }
            }
            done.store(true, Ordering::SeqCst);
            calls
        });
        Traffic {
            stop,
            made,
            over,
            thread: Some(thread),
        }
    }

    /// Calls made so far.
    pub fn made(&self) -> u64 {
        self.made.load(Ordering::SeqCst)
    }

    /// Waits until `calls` calls were made (or the traffic stopped by itself): the moment of a
    /// kill.
    pub fn reach(&self, calls: u64) {
        eventually(SETTLE, || {
            self.made.load(Ordering::SeqCst) >= calls || self.over.load(Ordering::SeqCst)
        });
    }

    /// Stops it; returns how many calls it made.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

/// A standalone `tether wrap` of the zoo, whose client is a shell: `sleep | tether wrap …`, the
/// `sleep` holding the wrap's stdin.
pub struct WrapClient {
    /// The shell (our child).
    pub shell: Child,
}

impl WrapClient {
    /// Starts it and waits until the zoo runs under it (its server leads a ledger row).
    pub fn start(cookie: &Cookie, mode: Mode) -> WrapClient {
        let before = targets::servers(cookie).len();
        let shell = WrapBuilder::new(cookie, mode)
            .fixture(ZOO)
            .command_via_sh("sleep 1000000 | \"$@\"")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the wrap's client");
        eventually(SETTLE, || targets::servers(cookie).len() > before);
        WrapClient { shell }
    }

    /// The `sleep` feeding the wrap's stdin, while it lives.
    fn feeder(&self, cookie: &Cookie) -> Option<i32> {
        let shell = self.shell.id() as i32;
        targets::named(cookie, "sleep")
            .into_iter()
            .find(|&p| tether_supervisor::process::procfs::parent_of(p) == Some(shell))
    }

    /// The client dies: SIGKILL of the shell and of its `sleep`. Returns whether it was alive.
    pub fn kill(&mut self, cookie: &Cookie) -> bool {
        let feeder = self.feeder(cookie);
        let alive = self.shell.kill().is_ok();
        feeder.is_some_and(targets::kill) || alive
    }

    /// The client leaves (its end of the wrap's stdin closes), and the shell is reaped.
    pub fn end(mut self, cookie: &Cookie) {
        if let Some(feeder) = self.feeder(cookie) {
            targets::kill(feeder);
        }
        if !eventually(SETTLE, || self.shell.try_wait().ok().flatten().is_some()) {
            let _ = self.shell.kill();
        }
        let _ = self.shell.wait();
    }
}
