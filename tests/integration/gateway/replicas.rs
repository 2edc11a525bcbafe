//! Several replicas behind a real load balancer: two `tether serve` on loopback, each with its
//! own configuration, state directory (ledger, admin socket) and cookie, behind HAProxy in
//! `mode http`, configured with the file docs/operations/replicas.md shows (read from there, so
//! the documented file is the tested one). A session sticks to the replica that opened it
//! (learned from the `Mcp-Session-Id` of the initialize answer), a 2026-07-28 client's lasting
//! session to the replica its first request naming it reached (`Tether-Session`). One replica
//! is SIGKILLed: its instances die by their lifelines, its clients get 404 through HAProxy and
//! open sessions on the other; restarted on the same state directory, its start-up sweep finds
//! nothing, and HAProxy gives it new sessions again.
//!
//! Every server is the fixture's escapee zoo with `lifetime = "session"`, so each session has
//! processes of its own, and every process a replica starts carries that replica's cookie: the
//! fixture's `whoami` tells which replica serves a call, and the survivor checks are per replica.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use super::http;
use super::support::{fixture_server, Client, Gateway, SLACK};
use crate::harness::{carrying, eventually, require, tether_json_ok, Cookie, Feature, Mode, StderrLog, ZOO};

/// The marker before the HAProxy configuration in the operations guide.
const MARKER: &str = "<!-- tested: haproxy.cfg";

/// The configuration docs/operations/replicas.md shows, as written there.
fn documented_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations/replicas.md");
    let doc = std::fs::read_to_string(&path).expect("docs/operations/replicas.md");
    let after = &doc[doc
        .find(MARKER)
        .unwrap_or_else(|| panic!("{} has no {MARKER}", path.display()))..];
    let start = after.find("```haproxy\n").expect("a haproxy block after the marker") + "```haproxy\n".len();
    let end = after[start..].find("```").expect("the end of the haproxy block");
    after[start..start + end].to_string()
}

/// A loopback address nothing listens on (bound and released: the replicas must keep theirs
/// across a restart, as HAProxy's configuration names them).
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// Who served a `whoami`: the replica (its cookie, which everything it starts carries) and the
/// instance.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Who {
    cookie: String,
    instance: String,
}

impl Who {
    /// From the fixture's `whoami` answer.
    fn of(answer: &Value) -> Who {
        let text = answer
            .pointer("/result/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("whoami answered {answer}"));
        let facts: Value = serde_json::from_str(text).expect("whoami's JSON");
        let field = |k: &str| {
            facts[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k} in {facts}"))
                .to_string()
        };
        Who {
            cookie: field("TETHER_TEST_COOKIE"),
            instance: field("TETHER_INSTANCE"),
        }
    }
}

/// `whoami` in a client's session.
fn whoami(c: &mut Client) -> Who {
    Who::of(&c.call_tool("whoami", json!({})))
}

/// `whoami` of a 2026-07-28 client in its lasting session `name` (no initialize: the envelope
/// in every request, the session named by the `Tether-Session` header).
fn named_whoami(lb: SocketAddr, name: &str) -> Who {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "whoami",
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "replicas-test", "version": "1"},
        },
    }});
    let r = http::request(
        lb,
        "POST",
        "/mcp/fx",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "whoami"),
            ("Tether-Session", name),
        ],
        body.to_string().as_bytes(),
    )
    .expect("POST through HAProxy");
    assert_eq!(r.status, 200, "named session {name}: {}", r.text());
    Who::of(&r.messages().pop().expect("an answer"))
}

/// One replica: a `tether serve` of its own, on a fixed loopback address.
struct Replica {
    /// Running, or not (killed, not yet restarted). First, so that it is dropped first.
    gateway: Option<Gateway>,
    /// HAProxy's name for it.
    name: &'static str,
    /// Its cookie, state directory and ledger.
    cookie: Cookie,
    /// Its configuration file (in its state directory).
    config: PathBuf,
    /// Where it listens, start after start.
    addr: SocketAddr,
}

impl Replica {
    fn new(name: &'static str) -> Replica {
        let cookie = Cookie::new();
        std::fs::create_dir_all(cookie.state_dir()).expect("a state directory");
        let config = cookie.state_dir().join("gateway.toml");
        let toml = fixture_server("fx", &cookie, ZOO, "lifetime = \"session\"");
        std::fs::write(&config, toml).expect("writing the configuration");
        Replica {
            gateway: None,
            name,
            cookie,
            config,
            addr: free_address(),
        }
    }

    /// Starts `tether serve` (on the same address and state directory every time).
    fn start(&mut self) -> &Gateway {
        let listen = self.addr.to_string();
        self.gateway = Some(Gateway::start_with(
            &self.cookie,
            Mode::Cgroup,
            self.config.clone(),
            &["--listen", &listen],
        ));
        self.gateway()
    }

    fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("the replica runs")
    }

    /// Its admin API's listing (`tether sessions --json` on its state directory).
    fn listing(&self) -> Value {
        tether_json_ok(&self.cookie, "sessions", &[])
    }

    /// The ids (`Mcp-Session-Id`) of the sessions it lists.
    fn session_ids(&self) -> Vec<String> {
        self.listing()["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect()
    }

    /// The ids of the instances it lists.
    fn instance_ids(&self) -> Vec<String> {
        self.listing()["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["id"].as_str().map(str::to_string))
            .collect()
    }
}

/// `haproxy -f CFG -db`: in the foreground, a child of the test, ended by its PID.
struct HaProxy {
    child: Child,
    log: StderrLog,
    /// Its configuration and runtime socket.
    dir: PathBuf,
    /// Where clients connect.
    addr: SocketAddr,
}

impl HaProxy {
    /// Writes the documented configuration in `dir`, starts HAProxy on it in front of `a` and
    /// `b`, and waits until it listens and sees both replicas up.
    fn start(dir: PathBuf, a: SocketAddr, b: SocketAddr) -> HaProxy {
        std::fs::create_dir_all(&dir).expect("a directory for HAProxy");
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, documented_config()).expect("writing haproxy.cfg");
        let addr = free_address();
        let mut child = Command::new(tether_supervisor::testing::haproxy_binary().expect("probed"))
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .env("TETHER_LB_LISTEN", addr.to_string())
            .env("TETHER_REPLICA_A", a.to_string())
            .env("TETHER_REPLICA_B", b.to_string())
            .env("TETHER_LB_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting haproxy");
        let log = StderrLog::collect(&mut child);
        let lb = HaProxy { child, log, dir, addr };
        let up = eventually(SLACK, || {
            lb.status("a").as_deref() == Some("UP") && lb.status("b").as_deref() == Some("UP") || lb.child_exited()
        });
        assert!(
            up && !lb.child_exited(),
            "haproxy did not come up with both replicas; its stderr:\n{}",
            lb.log.lines().join("\n")
        );
        lb
    }

    fn child_exited(&self) -> bool {
        // try_wait needs &mut; /proc tells as well whether the pid still runs.
        tether_supervisor::process::procfs::state_of(self.child.id() as i32).is_none_or(|s| s == 'Z')
    }

    /// One command of HAProxy's runtime API; `None` while its socket does not answer.
    fn runtime(&self, command: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(self.dir.join("haproxy.sock")).ok()?;
        s.write_all(format!("{command}\n").as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// The health HAProxy gives server `name` of the `tether` backend (`UP`, `DOWN`, `UP 1/2`…).
    fn status(&self, name: &str) -> Option<String> {
        let stat = self.runtime("show stat")?;
        let header: Vec<&str> = stat.lines().next()?.trim_start_matches("# ").split(',').collect();
        let column = header.iter().position(|c| *c == "status")?;
        stat.lines().find_map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            (fields.first() == Some(&"tether") && fields.get(1) == Some(&name))
                .then(|| fields.get(column).map(|s| s.to_string()))
                .flatten()
        })
    }

    /// Waits until HAProxy gives server `name` the health `want`.
    fn wait_status(&self, name: &str, want: &str) {
        let mut last = None;
        let reached = eventually(SLACK, || {
            last = self.status(name);
            last.as_deref() == Some(want)
        });
        assert!(
            reached,
            "haproxy never marked {name} {want} (last: {last:?}); its stderr:\n{}",
            self.log.lines().join("\n")
        );
    }

    /// Ends it by its PID and waits for it.
    fn stop(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("signalling haproxy");
        self.log.wait_exit(&mut self.child, SLACK);
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn sessions_stick_to_their_replica_behind_haproxy_and_move_when_it_dies() {
    if !require(Feature::Haproxy, "skipping (install haproxy, see .ci/run)") {
        return;
    }
    let (mut a, mut b) = (Replica::new("a"), Replica::new("b"));
    a.start();
    b.start();
    // Named without a cookie: HAProxy is no process of either replica's.
    let run = tether_supervisor::ids::random_id().expect("an id");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("haproxy-{run}"));
    let lb = HaProxy::start(dir, a.addr, b.addr);
    let replica_of = |who: &Who, a: &Replica, b: &Replica| -> &'static str {
        [a, b]
            .into_iter()
            .find(|r| r.cookie.0 == who.cookie)
            .map_or_else(|| panic!("{who:?} is of neither replica"), |r| r.name)
    };

    // Six sessions through HAProxy: every call of each is served by the instance that served
    // its first (a call on the other replica would be a 404 there).
    let mut clients = Vec::new();
    let mut homes = Vec::new();
    for i in 0..6 {
        let mut c = Client::new(lb.addr, Some("fx"));
        c.initialize();
        let first = whoami(&mut c);
        for call in 0..3 {
            c.echo(&format!("session {i}, call {call}"));
        }
        assert_eq!(whoami(&mut c), first, "session {i} moved");
        homes.push(replica_of(&first, &a, &b));
        clients.push(c);
    }
    // Each replica lists the sessions it served, and only those.
    let (on_a, on_b) = (a.session_ids(), b.session_ids());
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "new sessions go round: a has {on_a:?}, b has {on_b:?}"
    );
    for (c, home) in clients.iter().zip(&homes) {
        let sid = c.session.clone().expect("a session");
        let listed: Vec<&str> = [("a", &on_a), ("b", &on_b)]
            .into_iter()
            .filter(|(_, ids)| ids.contains(&sid))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(listed, [*home], "session {sid} is listed by {listed:?}");
    }
    // Two 2026-07-28 clients, each in a lasting session of its own name: sticky too.
    let names = [format!("{run}-one"), format!("{run}-two")];
    let mut named: Vec<Who> = names.iter().map(|n| named_whoami(lb.addr, n)).collect();
    for (name, first) in names.iter().zip(&named) {
        for _ in 0..3 {
            assert_eq!(&named_whoami(lb.addr, name), first, "named session {name} moved");
        }
    }

    // Replica a dies at once: SIGKILL, no teardown of its own.
    let doomed = a.instance_ids();
    assert!(!doomed.is_empty(), "a runs instances");
    let mut dead = a.gateway.take().expect("a runs");
    dead.signal(Signal::SIGKILL);
    dead.wait_exit(SLACK);
    drop(dead);
    // Its instances die by their lifelines (each shim ends its tree within its grace): nothing
    // carries a's cookie, nor any of its instances' ids.
    a.cookie.assert_none_survive(SLACK);
    for id in &doomed {
        assert_eq!(carrying(id), Vec::<i32>::new(), "instance {id} of the dead replica");
    }

    // Once HAProxy has marked it down, its clients' sessions are unknown where their requests
    // now go (404), and they open new ones there; b's clients notice nothing.
    lb.wait_status("a", "DOWN");
    for (i, (c, home)) in clients.iter_mut().zip(homes.iter_mut()).enumerate() {
        if *home == "a" {
            let call = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                              "params": {"name": "echo", "arguments": {"text": "lost"}}});
            let mut last = (0, String::new());
            let refused = eventually(SLACK, || {
                let r = c.post(&call);
                last = (r.status, r.text());
                r.status == 404
            });
            assert!(refused, "session {i} of the dead replica: {last:?}");
            assert!(last.1.contains("session not found"), "{}", last.1);
            c.session = None;
            c.initialize();
            let who = whoami(c);
            assert_eq!(replica_of(&who, &a, &b), "b", "session {i} opened again: {who:?}");
            *home = "b";
        }
        c.echo(&format!("session {i} after a died"));
    }
    for (name, before) in names.iter().zip(named.iter_mut()) {
        let now = named_whoami(lb.addr, name);
        if before.cookie == a.cookie.0 {
            assert_eq!(now.cookie, b.cookie.0, "named session {name} moves to b");
        } else {
            assert_eq!(&now, before, "named session {name} stays where it was");
        }
        *before = now;
    }

    // a again, on the same state directory and address: its sweep finds nothing left (the
    // shims ended their trees and closed their rows), and HAProxy sends it new sessions.
    a.start().wait_log("start-up sweep: nothing left by a dead Tether");
    lb.wait_status("a", "UP");
    let mut landed = None;
    for _ in 0..4 {
        let mut c = Client::new(lb.addr, Some("fx"));
        c.initialize();
        let who = whoami(&mut c);
        c.echo("a new session");
        if replica_of(&who, &a, &b) == "a" {
            landed = Some(c);
            break;
        }
        clients.push(c);
    }
    let c = landed.expect("no new session reached the restarted replica");
    let sid = c.session.clone().expect("a session");
    assert!(a.session_ids().contains(&sid), "the restarted replica lists {sid}");
    assert!(!b.session_ids().contains(&sid), "b does not list {sid}");
    clients.push(c);
    // Everything open still answers where it is: the re-learned named sessions stay on b.
    for c in &mut clients {
        c.echo("at the end");
    }
    for (name, before) in names.iter().zip(&named) {
        assert_eq!(&named_whoami(lb.addr, name), before, "named session {name} moved again");
    }

    // The end: HAProxy by its PID, each replica by SIGTERM; nothing of either survives.
    let pid = lb.child.id() as i32;
    lb.stop();
    assert!(
        tether_supervisor::process::procfs::state_of(pid).is_none(),
        "haproxy {pid} is still there"
    );
    for r in [&mut a, &mut b] {
        r.gateway.take().expect("running").shut_down(&r.cookie);
    }
}
