//! Test harness: start `tether wrap` in front of the fixture, wait for the fixture's escapee zoo
//! to exist, and prove afterwards that nothing of it survived.
//!
//! Every test gets its own cookie, put both in the environment of the `tether` process
//! (`TETHER_TEST_COOKIE`, inherited by the whole tree) and in the fixture's `--tag` (passed in
//! the argv of every process it spawns, so even `env -i` escapees are found). A [`Cookie`]
//! kills whatever still carries it, by PID, when it is dropped: a failing test never leaks.
//!
//! A test that needs something of the host calls [`require`] first (one helper for the whole
//! suite and the library's unit tests: `tether_supervisor::testing`). Without the feature it
//! fails if `TETHER_TEST_REQUIRE` names it, else it says on stderr that it skips or runs the
//! fallback, and why. The names, comma-separated (CI, through `.ci/run`, requires them all):
//! - `cgroup`: a writable cgroup v2 where the test runs (the cgroup layer, `cgroup.kill` after
//!   a SIGKILLed shim, `--max-procs`);
//! - `ssh`: an OpenSSH server and client (every test that starts an [`crate::sshd::Sshd`]);
//! - `pidfs`: pidfd inodes unique per process (Linux ≥ 6.9; a unit test of identities);
//! - `pid-reuse`: a writable `/proc/sys/kernel/ns_last_pid` (a stranger given a recorded pid);
//! - `haproxy`: HAProxy (the load balancer in front of two gateway replicas, and `haproxy -c` of
//!   the configuration in `packaging/kubernetes/`);
//! - `pidns`: `unshare --pid --fork --mount-proc` (Tether as PID 1 of a PID namespace);
//! - `browser`: Debian's chromium, node and the pinned playwright-core (the dashboard's test).
//!
//! `TETHER_TEST_PRETEND_MISSING` (same names) makes the tests see a feature as missing on a host
//! that has it: requiring it then fails, and otherwise the fallbacks run here. For `cgroup` the
//! `tether` under test gets `--disable cgroup` too, so that it agrees.

#![allow(clippy::disallowed_methods)] // Tests start the processes they observe.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use tether_supervisor::testing::{require, Feature};

/// The `tether` binary under test.
pub const TETHER: &str = env!("CARGO_BIN_EXE_tether");
/// The fixture server.
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_tether-fixture");
/// The environment variable that carries a test's cookie.
pub const COOKIE_VAR: &str = "TETHER_TEST_COOKIE";

/// The fixture's whole escapee zoo: two group children, a setsid child, a double-forked daemon
/// and an `env -i` double fork, all ignoring SIGTERM, under a server that ignores EOF and
/// SIGTERM.
pub const ZOO: &[&str] = &["--zoo"];
/// The zoo's escapees under a server that behaves (it exits on EOF, on SIGTERM or after
/// `--exit-after`): for the tests where the server ends by itself.
pub const ZOO_ESCAPEES: &[&str] = &[
    "--children",
    "2",
    "--setsid-escapee",
    "--double-fork",
    "--env-i-escapee",
    "--tough-children",
];
/// How many sleepers the zoo (and [`ZOO_ESCAPEES`]) leaves: the fixture's ready line lists them.
pub const ZOO_SLEEPERS: usize = 5;

/// Polls `cond` until it holds or `within` passes; returns whether it held.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A test's unique marker; kills its carriers on drop.
pub struct Cookie(pub String);

impl Cookie {
    /// A fresh cookie.
    pub fn new() -> Cookie {
        Cookie(format!("tt{}", tether_supervisor::ids::random_id().expect("random id")))
    }

    /// The test's own state directory (its ledger), under Cargo's scratch directory.
    pub fn state_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("state-{}", self.0))
    }

    /// Puts the cookie and the test's own ledger in `cmd`'s environment: whatever it starts
    /// is found by the survivor checks, and no test writes to the ledger of the user.
    pub fn set_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env(COOKIE_VAR, &self.0).env("TETHER_STATE_DIR", self.state_dir())
    }

    /// Live processes (not zombies) whose environment or command line holds the cookie.
    pub fn carriers(&self) -> Vec<i32> {
        carrying(&self.0)
    }

    /// Waits up to `within` for every carrier to be gone; on failure kills them and panics
    /// with what survived.
    pub fn assert_none_survive(&self, within: Duration) {
        self.assert_only_left(&[], within);
    }

    /// Carriers other than `except` (a frozen ssh client the test ends itself, say).
    pub fn carriers_except(&self, except: &[i32]) -> Vec<i32> {
        self.carriers().into_iter().filter(|p| !except.contains(p)).collect()
    }

    /// Waits up to `within` until nothing but `except` carries the cookie; on failure kills
    /// every carrier and panics with what survived.
    pub fn assert_only_left(&self, except: &[i32], within: Duration) {
        let mut last = Vec::new();
        if eventually(within, || {
            last = self.carriers_except(except);
            last.is_empty()
        }) {
            return;
        }
        let described: Vec<String> = last.iter().map(|&p| describe(p)).collect();
        self.kill_all();
        panic!(
            "{} processes survived {within:?}:\n  {}",
            described.len(),
            described.join("\n  ")
        );
    }

    /// SIGKILLs every carrier by PID until none is left.
    pub fn kill_all(&self) {
        eventually(Duration::from_secs(1), || {
            let left = self.carriers();
            for &p in &left {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
            }
            left.is_empty()
        });
    }

    /// Waits until at least `n` live processes carry the cookie (the tree under test exists),
    /// failing with what was found.
    pub fn wait_for_carriers(&self, n: usize) {
        let mut last = Vec::new();
        let found = eventually(Duration::from_secs(20), || {
            last = self.carriers();
            last.len() >= n
        });
        assert!(
            found,
            "expected {n} processes carrying the cookie, found {}: {last:?}",
            last.len()
        );
    }
}

impl Drop for Cookie {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir_all(self.state_dir());
    }
}

/// True when `pid`'s command name (`/proc/PID/comm`) is `name`.
pub fn is_named(pid: i32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
}

/// `tool`'s path on PATH; panics when there is none.
pub fn which(tool: &str) -> std::path::PathBuf {
    tether_supervisor::testing::on_path(tool).unwrap_or_else(|| panic!("{tool} not found on PATH"))
}

/// `pid (state) cmdline`, for failure messages.
pub fn describe(pid: i32) -> String {
    use tether_supervisor::process::procfs;
    format!(
        "pid {pid} state {:?} ppid {:?}: {}",
        procfs::state_of(pid),
        procfs::parent_of(pid),
        procfs::cmdline_of(pid).unwrap_or_default()
    )
}

/// Containment modes the tests run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every layer on; the cgroup must be in force where the host has one.
    Cgroup,
    /// The cgroup layer forced off: group + subreaper + keeper + pidfd + pdeathsig + cookie.
    NoCgroup,
    /// The cgroup layer and the keeper forced off: the layers without a cgroup as they were
    /// before the keeper, for the tests of what the watchdog and the sweep do alone.
    NoKeeper,
    /// cgroup and subreaper both off: only group, pidfd, pdeathsig and cookie remain.
    Bare,
}

impl Mode {
    /// The layers this mode switches off, as for `--disable` and `TETHER_DISABLE`.
    pub fn disable(self) -> Option<&'static str> {
        match self {
            // A cgroup the tests pretend is missing must be missing for Tether too.
            Mode::Cgroup if Feature::Cgroup.pretended_missing() => Some("cgroup"),
            Mode::Cgroup => None,
            Mode::NoCgroup => Some("cgroup"),
            Mode::NoKeeper => Some("cgroup,keeper"),
            Mode::Bare => Some("cgroup,subreaper"),
        }
    }
}

/// A running `tether wrap -- tether-fixture …` with its pipes.
pub struct Wrapped {
    /// The `tether` process.
    pub child: Child,
    /// The server's stdin, as the client holds it.
    pub stdin: Option<ChildStdin>,
    /// The server's stdout, as the client holds it.
    pub stdout: Option<BufReader<ChildStdout>>,
    /// Every stderr line (the fixture's and Tether's).
    stderr: StderrLog,
}

/// A child's stderr, collected line by line by a reader thread.
pub struct StderrLog {
    /// Every line so far.
    lines: Arc<Mutex<Vec<String>>>,
    /// Set once stderr reached EOF (every holder closed it).
    done: Arc<AtomicBool>,
}

impl StderrLog {
    /// Starts collecting `child`'s piped stderr.
    pub fn collect(child: &mut Child) -> StderrLog {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (sink, eof) = (Arc::clone(&lines), Arc::clone(&done));
        let pipe = child.stderr.take().expect("stderr pipe");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("stderr lock").push(line);
            }
            eof.store(true, Ordering::SeqCst);
        });
        StderrLog { lines, done }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("stderr lock").clone()
    }

    /// Waits for `child` to exit, with a deadline; then, so that [`StderrLog::lines`] is
    /// complete, for stderr to reach EOF (the reader thread may lag behind on a loaded
    /// machine). A tree that still holds stderr open is the survivor checks' business, so that
    /// second wait is bounded and not asserted.
    pub fn wait_exit(&self, child: &mut Child, within: Duration) -> std::process::ExitStatus {
        let mut status = None;
        let exited = eventually(within, || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        });
        assert!(
            exited,
            "pid {} did not exit within {within:?}; stderr:\n{}",
            child.id(),
            self.lines().join("\n")
        );
        eventually(Duration::from_secs(2), || self.done.load(Ordering::SeqCst));
        status.expect("status")
    }
}

/// Builder for a wrapped fixture.
pub struct WrapBuilder<'a> {
    cookie: &'a Cookie,
    mode: Mode,
    grace: Duration,
    tether_flags: Vec<String>,
    fixture_flags: Vec<String>,
    raw_command: Option<Vec<String>>,
}

impl<'a> WrapBuilder<'a> {
    /// Starts building.
    pub fn new(cookie: &'a Cookie, mode: Mode) -> Self {
        WrapBuilder {
            cookie,
            mode,
            grace: Duration::from_millis(300),
            tether_flags: Vec::new(),
            fixture_flags: Vec::new(),
            raw_command: None,
        }
    }

    /// Sets the grace period.
    pub fn grace(mut self, g: Duration) -> Self {
        self.grace = g;
        self
    }

    /// Adds flags for the fixture.
    pub fn fixture(mut self, flags: &[&str]) -> Self {
        self.fixture_flags.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// Adds flags for `tether wrap`.
    pub fn tether(mut self, flags: &[&str]) -> Self {
        self.tether_flags.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// Wraps this command instead of the fixture.
    pub fn command(mut self, argv: &[&str]) -> Self {
        self.raw_command = Some(argv.iter().map(|s| s.to_string()).collect());
        self
    }

    /// The argv of `tether wrap …`.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec![
            "wrap".to_string(),
            "--grace".into(),
            format!("{}ms", self.grace.as_millis()),
        ];
        if let Some(d) = self.mode.disable() {
            argv.extend(["--disable".to_string(), d.to_string()]);
        }
        argv.extend(self.tether_flags.iter().cloned());
        argv.push("--".into());
        match &self.raw_command {
            Some(cmd) => argv.extend(cmd.iter().cloned()),
            None => {
                argv.extend([FIXTURE.to_string(), "--tag".into(), self.cookie.0.clone()]);
                argv.extend(self.fixture_flags.iter().cloned());
            }
        }
        argv
    }

    /// A `Command` for `tether` with the cookie and info-level logs.
    pub fn command_for_tether(&self) -> Command {
        self.command_via(&[])
    }

    /// The same, run by `launcher` (a program and its arguments that run the rest as a command,
    /// such as `unshare --pid --fork`); empty for none.
    pub fn command_via(&self, launcher: &[&str]) -> Command {
        let mut cmd = tether_via(launcher);
        cmd.args(self.argv());
        self.set_env(&mut cmd);
        cmd
    }

    /// `sh -c SCRIPT sh tether wrap …`: a client shell whose script runs tether as `"$@"`, in
    /// the environment of [`WrapBuilder::command_for_tether`].
    pub fn command_via_sh(&self, script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "sh", TETHER]).args(self.argv());
        self.set_env(&mut cmd);
        cmd
    }

    fn set_env(&self, cmd: &mut Command) {
        self.cookie
            .set_env(cmd)
            .env("TETHER_LOG", "info")
            .env_remove("RUST_BACKTRACE");
    }

    /// Runs it with the client holding stdin open, so that it ends by itself (a wrap that
    /// fails, mostly); proves that nothing of the test survives it. Returns its exit code and
    /// its stderr.
    pub fn run_to_exit(self, within: Duration) -> (Option<i32>, String) {
        let cookie = self.cookie;
        let mut w = self.spawn();
        let status = w.wait_exit(within);
        cookie.assert_none_survive(within);
        (status.code(), w.stderr_lines().join("\n"))
    }

    /// Spawns it with piped stdio.
    pub fn spawn(self) -> Wrapped {
        self.spawn_via(&[])
    }

    /// Spawns it with piped stdio, run by `launcher` (see [`WrapBuilder::command_via`]).
    pub fn spawn_via(self, launcher: &[&str]) -> Wrapped {
        let mut cmd = self.command_via(launcher);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning tether");
        let stderr = StderrLog::collect(&mut child);
        Wrapped {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().map(BufReader::new),
            child,
            stderr,
        }
    }
}

/// The fixture's `ready` line, parsed.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The server's pid.
    pub pid: i32,
    /// Sleepers: (pid, kind).
    pub sleepers: Vec<(i32, String)>,
}

impl Ready {
    /// Pids of the sleepers of one kind (`group`, `setsid`, `double-fork`, `env-i`).
    pub fn sleepers_of(&self, kind: &str) -> Vec<i32> {
        self.sleepers
            .iter()
            .filter(|(_, k)| k == kind)
            .map(|(p, _)| *p)
            .collect()
    }
}

impl Wrapped {
    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// Waits for the fixture's ready line (the whole zoo exists then).
    pub fn wait_ready(&self) -> Ready {
        let mut ready = None;
        let found = eventually(Duration::from_secs(20), || {
            ready = self.stderr_lines().iter().find_map(|l| parse_ready(l));
            ready.is_some()
        });
        assert!(
            found,
            "fixture never became ready; stderr:\n{}",
            self.stderr_lines().join("\n")
        );
        ready.expect("ready line")
    }

    /// The pid of `tether` itself.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The shim's pid: `tether` itself, or under a keeper (no cgroup) the keeper's child that
    /// is not the watchdog, once it exists.
    pub fn shim_pid(&self) -> i32 {
        let top = self.pid();
        let mut shim = None;
        let found = eventually(Duration::from_secs(10), || {
            shim = if is_named(top, "tether-keeper") {
                tether_supervisor::process::procfs::children_of(top)
                    .into_iter()
                    .find(|&p| is_named(p, "tether"))
            } else {
                is_named(top, "tether").then_some(top)
            };
            shim.is_some()
        });
        assert!(found, "no shim under tether {top}");
        shim.unwrap_or(top)
    }

    /// Waits for `tether` to exit, then (bounded) for its stderr to reach EOF.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        self.stderr.wait_exit(&mut self.child, within)
    }

    /// Asserts which containment layers the shim reported in force (it logs them at info).
    pub fn assert_layers(&self, mode: Mode) {
        let mut line = None;
        eventually(Duration::from_secs(10), || {
            line = self.stderr_lines().into_iter().find(|l| l.contains(": containment "));
            line.is_some()
        });
        let line = line.unwrap_or_else(|| panic!("no containment line; stderr:\n{}", self.stderr_lines().join("\n")));
        let has = |layer: &str| {
            line.split("containment ")
                .nth(1)
                .is_some_and(|rest| rest.split([',', ' ']).any(|l| l == layer))
        };
        match mode {
            Mode::Cgroup => {
                if require(Feature::Cgroup, "exercising the fallback, the cgroup layer must be off") {
                    assert!(has("cgroup"), "cgroup layer not in force on a host that has it: {line}");
                } else {
                    assert!(!has("cgroup"), "{line}");
                }
            }
            Mode::NoCgroup => assert!(!has("cgroup") && has("subreaper") && has("keeper"), "{line}"),
            Mode::NoKeeper => assert!(!has("cgroup") && has("subreaper") && !has("keeper"), "{line}"),
            Mode::Bare => assert!(!has("cgroup") && !has("subreaper") && !has("keeper"), "{line}"),
        }
    }
}

impl Drop for Wrapped {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn parse_ready(line: &str) -> Option<Ready> {
    let rest = line.strip_prefix("tether-fixture: ready ")?;
    let mut pid = None;
    let mut sleepers = Vec::new();
    for field in rest.split_whitespace() {
        if let Some(p) = field.strip_prefix("pid=") {
            pid = p.parse().ok();
        } else if let Some(list) = field.strip_prefix("sleepers=") {
            for item in list.split(',').filter(|s| !s.is_empty()) {
                let (p, kind) = item.split_once(':')?;
                sleepers.push((p.parse().ok()?, kind.to_string()));
            }
        }
    }
    Some(Ready { pid: pid?, sleepers })
}

/// Live processes (not zombies, not this test process) whose environment or command line holds
/// `needle`.
pub fn carrying(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let needle = needle.as_bytes();
    tether_supervisor::process::procfs::all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|&p| {
            let has = |file: &str| {
                std::fs::read(format!("/proc/{p}/{file}")).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            };
            (has("environ") || has("cmdline"))
                && tether_supervisor::process::procfs::state_of(p).is_some_and(|s| s != 'Z')
        })
        .collect()
}

/// `tether`, run by `launcher` (a program and its arguments that run the rest as a command,
/// such as `unshare --pid --fork`); plain `tether` for none.
pub fn tether_via(launcher: &[&str]) -> Command {
    match launcher.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(TETHER);
            cmd
        }
        None => Command::new(TETHER),
    }
}

/// Runs `tether ARGS…` to completion against the test's own ledger.
pub fn tether_run(cookie: &Cookie, args: &[&str]) -> std::process::Output {
    cookie
        .set_env(&mut Command::new(TETHER))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running tether")
}

/// Runs `tether SUBCOMMAND --json EXTRA…`: how it ended, and what it printed, parsed.
pub fn tether_json(cookie: &Cookie, subcommand: &str, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    let mut args = vec![subcommand, "--json"];
    args.extend(extra);
    let out = tether_run(cookie, &args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tether {subcommand} --json printed no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// [`tether_json`] for a subcommand that must succeed; panics with its stderr otherwise.
pub fn tether_json_ok(cookie: &Cookie, subcommand: &str, extra: &[&str]) -> serde_json::Value {
    let (out, json) = tether_json(cookie, subcommand, extra);
    assert!(
        out.status.success(),
        "tether {subcommand} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json
}

/// `tether reap --json`, parsed; panics when it fails.
pub fn reap(cookie: &Cookie, extra: &[&str]) -> serde_json::Value {
    tether_json_ok(cookie, "reap", extra)
}

/// The report's actions of `kind` (`killed`, `skipped-stranger`, `remote-killed`, …).
pub fn actions<'a>(report: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    report["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["kind"] == kind)
        .collect()
}

/// Asserts that the report has exactly one action of `kind`, and that its reason mentions
/// `reason`.
pub fn assert_one_action(report: &serde_json::Value, kind: &str, reason: &str) {
    let found = actions(report, kind);
    assert_eq!(found.len(), 1, "one {kind} action expected: {report:#}");
    assert!(
        found[0]["reason"].as_str().is_some_and(|r| r.contains(reason)),
        "the {kind} action's reason does not mention {reason:?}: {report:#}"
    );
}

/// Pids of the report's actions of `kind`.
pub fn report_pids(report: &serde_json::Value, kind: &str) -> Vec<i32> {
    actions(report, kind)
        .into_iter()
        .filter_map(|a| a["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect()
}

/// A uniformly random number below `n`.
pub fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("getrandom");
    u64::from_ne_bytes(b) % n.max(1)
}
