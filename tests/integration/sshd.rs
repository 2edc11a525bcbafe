//! A real OpenSSH server on 127.0.0.1 for the SSH tests: keys generated for the occasion, a
//! config of its own, a free port, and no process left behind.
//!
//! Each [`Sshd`] lives in a temp dir holding a host key, a client key authorized for the current
//! user (root in CI), a `known_hosts` that pins the host key, the config and the debug log
//! (`-E`, never `-e`: see [`spawn_listening`]). The client side is hermetic too (`-F /dev/null`,
//! no agent, no multiplexing): see [`Sshd::ssh_args`]. sshd also needs `/run/sshd`, which a
//! container that never ran the service lacks: it is created when missing. On a host without
//! OpenSSH, [`Sshd::start`] returns `None` and the test skips, saying so, unless
//! `TETHER_TEST_REQUIRE` names `ssh` (see [`crate::harness::require`]).
//!
//! sshd rewrites its argv and environment with setproctitle, so neither an environment cookie nor
//! a tag finds its per-connection children: on drop the tree is found by ancestry instead, frozen
//! with SIGSTOP until no new member appears (a stopped process cannot fork), then SIGKILLed by PID.
//! Login sessions are part of that tree until they leave it; what leaves it is each test's
//! business.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::process::procfs;
use tether_supervisor::ssh::SshTarget;

use tether_supervisor::testing::sshd_binary;

use crate::harness::{eventually, require, Feature};

/// sshd refuses to start without its privilege-separation directory.
const PRIVSEP_DIR: &str = "/run/sshd";

/// A running sshd and what a client needs to reach it.
pub struct Sshd {
    /// Temp dir with keys, config and log; removed on drop.
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    port: u16,
    /// The user to log in as: whoever runs the tests.
    user: String,
    /// The listener (`sshd -D`): every per-connection process descends from it.
    child: Child,
}

impl Sshd {
    /// Starts one and waits until a real `ssh … true` succeeds; `None` (the test skips) on a
    /// host without OpenSSH, unless `TETHER_TEST_REQUIRE` names `ssh`.
    pub fn start() -> Option<Sshd> {
        Sshd::start_with("")
    }

    /// [`Sshd::start`] with `extra` lines appended to its config (a `ForceCommand`, say).
    pub fn start_with(extra: &str) -> Option<Sshd> {
        if !require(
            Feature::Ssh,
            "skipping (install openssh-server and openssh-client, see .ci/run)",
        ) {
            return None;
        }
        let binary = sshd_binary().expect("probed");
        ensure_privsep_dir();
        let dir = std::env::temp_dir().join(format!(
            "tether-sshd-{}",
            tether_supervisor::ids::random_id().expect("id")
        ));
        fs::create_dir_all(&dir).expect("creating the sshd temp dir");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("writing authorized_keys");
        // The port is found by binding :0 and released for sshd; something else may take it in
        // between, hence the retries.
        let mut why = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_listening(binary, &dir, port, extra) {
                Ok(child) => {
                    let sshd = Sshd {
                        dir,
                        port,
                        user: current_user(),
                        child,
                    };
                    sshd.wait_login();
                    return Some(sshd);
                }
                Err(log) => why = log,
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("sshd would not start; its last log:\n{why}");
    }

    /// `ssh` options and destination, ready for a remote command to be appended: no PTY
    /// (`-T`), no user or system config, no agent, no multiplexing, the host key pinned.
    pub fn ssh_args(&self) -> Vec<OsString> {
        let opt = |o: &str| [OsString::from("-o"), OsString::from(o)];
        let path_opt = |o: &str, p: PathBuf| {
            let mut s = OsString::from(format!("{o}="));
            s.push(p);
            [OsString::from("-o"), s]
        };
        let mut args: Vec<OsString> = vec!["-T".into(), "-F".into(), "/dev/null".into()];
        args.extend(opt("BatchMode=yes"));
        args.extend(opt("StrictHostKeyChecking=yes"));
        args.extend(path_opt("UserKnownHostsFile", self.dir.join("known_hosts")));
        args.extend(opt("GlobalKnownHostsFile=/dev/null"));
        args.extend(opt("UpdateHostKeys=no"));
        args.extend(opt("IdentitiesOnly=yes"));
        args.extend(path_opt("IdentityFile", self.dir.join("client_key")));
        args.extend(opt("IdentityAgent=none"));
        args.extend(opt("ControlMaster=no"));
        args.extend(opt("ControlPath=none"));
        args.extend(opt("ConnectTimeout=10"));
        args.extend(opt("LogLevel=ERROR"));
        args.extend([
            "-p".into(),
            self.port.to_string().into(),
            "-l".into(),
            self.user.clone().into(),
        ]);
        args.push("127.0.0.1".into());
        args
    }

    /// The `tether wrap` flags that reach this sshd the same hermetic way as [`Sshd::ssh_args`].
    pub fn tether_flags(&self) -> Vec<String> {
        let d = self.dir.display();
        let mut flags = vec![
            "--ssh".to_string(),
            format!("{}@127.0.0.1:{}", self.user, self.port),
            "--ssh-config".into(),
            "/dev/null".into(),
            "--ssh-identity".into(),
            format!("{d}/client_key"),
        ];
        for o in [
            "StrictHostKeyChecking=yes".to_string(),
            format!("UserKnownHostsFile={d}/known_hosts"),
            "GlobalKnownHostsFile=/dev/null".into(),
            "UpdateHostKeys=no".into(),
            "IdentitiesOnly=yes".into(),
            "IdentityAgent=none".into(),
        ] {
            flags.extend(["--ssh-option".to_string(), o]);
        }
        flags
    }

    /// The [`SshTarget`] that [`Sshd::tether_flags`] describe, for a `Launch` of the test's own.
    pub fn target(&self) -> SshTarget {
        let flags = self.tether_flags();
        let options: Vec<String> = flags
            .windows(2)
            .filter(|w| w[0] == "--ssh-option")
            .map(|w| w[1].clone())
            .collect();
        let mut target = SshTarget::parse(&self.destination())
            .and_then(|t| t.with_options(&options))
            .expect("the test sshd's target");
        target.config_file = Some("/dev/null".into());
        target.identity_file = Some(self.dir.join("client_key"));
        target
    }

    /// `user@127.0.0.1:port`, as Tether names the host in messages.
    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// The temp dir holding keys and known_hosts.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An `ssh` command running `remote` (one string, parsed by the remote login shell).
    pub fn ssh(&self, remote: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.ssh_args()).arg(remote);
        cmd
    }

    /// Runs `remote` with no stdin and returns its output; panics if it takes over `within`.
    pub fn run(&self, remote: impl AsRef<OsStr>, within: Duration) -> Output {
        let mut child = self
            .ssh(remote)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning ssh");
        let readers = [child.stdout.take().map(drain), child.stderr.take().map(drain)];
        let mut status = None;
        if !eventually(within, || {
            status = child.try_wait().expect("try_wait on ssh");
            status.is_some()
        }) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ssh did not finish within {within:?}; sshd log:\n{}", self.log());
        }
        let [stdout, stderr] = readers.map(|r| r.map(|h| h.join().expect("reader thread")).unwrap_or_default());
        Output {
            status: status.expect("status"),
            stdout,
            stderr,
        }
    }

    /// sshd's debug log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Retries `ssh … true` until it works: the port accepting is not enough, sshd may still be
    /// loading keys.
    fn wait_login(&self) {
        let mut last = None;
        let ok = eventually(Duration::from_secs(20), || {
            let out = self.run("true", Duration::from_secs(15));
            let ok = out.status.success();
            last = Some(out);
            ok
        });
        assert!(
            ok,
            "cannot log in to the test sshd: {last:?}\nsshd log:\n{}",
            self.log()
        );
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let killed = kill_tree(self.child.id() as i32);
        let _ = self.child.wait();
        let survivors: Vec<String> = killed
            .iter()
            .filter(|&(&pid, &start)| !is_gone(pid, start))
            .map(|(&pid, _)| crate::harness::describe(pid))
            .collect();
        let _ = fs::remove_dir_all(&self.dir);
        if !survivors.is_empty() && !std::thread::panicking() {
            panic!("sshd processes survived SIGKILL:\n  {}", survivors.join("\n  "));
        }
    }
}

/// Freezes `root` and its descendants with SIGSTOP until a scan finds no new one, then SIGKILLs
/// them all, each by PID, and waits for them to be gone. Returns each pid with its start time.
fn kill_tree(root: i32) -> BTreeMap<i32, u64> {
    let mut tree: BTreeMap<i32, u64> = BTreeMap::new();
    loop {
        let found: Vec<i32> = std::iter::once(root).chain(descendants(root, &tree)).collect();
        let mut new = false;
        for pid in found {
            if tree.contains_key(&pid) {
                continue;
            }
            if let Some(start) = procfs::start_time_of(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
                tree.insert(pid, start);
                new = true;
            }
        }
        if !new {
            break;
        }
    }
    for (&pid, &start) in &tree {
        // Re-checked so that a pid recycled since the scan is left alone.
        if procfs::start_time_of(pid) == Some(start) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    eventually(Duration::from_secs(5), || tree.iter().all(|(&p, &s)| is_gone(p, s)));
    tree
}

/// Every live process below `root`, including below members already in `known` (which, once
/// stopped, may have been re-parented if their parent died meanwhile).
fn descendants(root: i32, known: &BTreeMap<i32, u64>) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = procfs::all_pids()
        .into_iter()
        .filter_map(|p| procfs::parent_of(p).map(|pp| (p, pp)))
        .collect();
    let mut set: Vec<i32> = std::iter::once(root).chain(known.keys().copied()).collect();
    let mut i = 0;
    while i < set.len() {
        let parent = set[i];
        for &(p, pp) in &parents {
            if pp == parent && !set.contains(&p) {
                set.push(p);
            }
        }
        i += 1;
    }
    set.retain(|&p| p != root);
    set
}

/// Exited (zombie or reaped), or its pid now belongs to another process.
fn is_gone(pid: i32, start: u64) -> bool {
    procfs::start_time_of(pid) != Some(start) || procfs::state_of(pid) == Some('Z')
}

/// Starts sshd on `port` and waits until it accepts connections; on failure returns its log.
fn spawn_listening(binary: &str, dir: &Path, port: u16, extra: &str) -> Result<Child, String> {
    write_config(dir, port, extra);
    write_known_hosts(dir, port);
    // Not `-e`: with it, a session's child process logs to its stderr after that became the
    // channel's, so debug lines would reach the client ahead of the remote command's own
    // output. `-E` sends every process's log to the file; stderr (appending to the same file)
    // only sees what sshd prints before its log is set up.
    let _ = fs::remove_file(dir.join("sshd.log"));
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sshd.log"))
        .expect("creating sshd.log");
    let mut child = Command::new(binary)
        .arg("-D")
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning sshd");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut exited = None;
    let up = eventually(Duration::from_secs(10), || {
        exited = child.try_wait().expect("try_wait on sshd");
        exited.is_some() || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
    let log = || fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
    match exited {
        None if up => Ok(child),
        None => {
            kill_tree(child.id() as i32);
            let _ = child.wait();
            Err(format!("not listening on {addr} after 10 s\n{}", log()))
        }
        Some(status) => Err(format!("exited with {status}\n{}", log())),
    }
}

fn write_config(dir: &Path, port: u16, extra: &str) {
    let d = dir.display();
    let config = format!(
        "ListenAddress 127.0.0.1:{port}\n\
         HostKey {d}/host_key\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         PidFile {d}/sshd.pid\n\
         StrictModes no\n\
         UsePAM no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UseDNS no\n\
         PrintMotd no\n\
         LogLevel DEBUG1\n\
         {extra}"
    );
    fs::write(dir.join("sshd_config"), config).expect("writing sshd_config");
}

/// Pins the host key for `[127.0.0.1]:PORT`, so the client needs no trust-on-first-use (which
/// would also print a warning on stderr, ahead of the remote's first line).
fn write_known_hosts(dir: &Path, port: u16) {
    let key = fs::read_to_string(dir.join("host_key.pub")).expect("reading host_key.pub");
    let mut words = key.split_whitespace();
    let (kind, blob) = (words.next().expect("key type"), words.next().expect("key blob"));
    fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {kind} {blob}\n")).expect("writing known_hosts");
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tether-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("running ssh-keygen (install openssh-client)");
    assert!(out.status.success(), "ssh-keygen failed: {out:?}");
}

fn ensure_privsep_dir() {
    if let Err(e) = fs::create_dir_all(PRIVSEP_DIR) {
        panic!("sshd needs {PRIVSEP_DIR} and it cannot be created ({e}): run the SSH tests as root");
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("running id -un");
    assert!(out.status.success(), "id -un: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

#[test]
fn sshd_runs_commands_and_drop_kills_its_sessions() {
    let Some(sshd) = Sshd::start() else { return };
    let out = sshd.run("echo hello; echo oops >&2; exit 3", Duration::from_secs(20));
    assert_eq!(out.stdout, b"hello\n", "{out:?}");
    assert_eq!(out.stderr, b"oops\n", "{out:?}");
    assert_eq!(out.status.code(), Some(3));

    // A session still running when the sshd goes away: its shell prints its pid and sleeps.
    let mut client = sshd
        .ssh("echo $$; exec sleep 600")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning ssh");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(client.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("reading the remote pid");
    let remote: i32 = line.trim().parse().expect("remote pid");
    let start = procfs::start_time_of(remote).expect("the remote sleep runs");
    let listener = sshd.child.id() as i32;
    drop(sshd);
    assert!(
        is_gone(remote, start),
        "the session's sleep survived: {}",
        crate::harness::describe(remote)
    );
    assert!(procfs::state_of(listener).is_none(), "the listener was not reaped");
    let status = eventually(Duration::from_secs(5), || {
        client.try_wait().expect("try_wait").is_some()
    });
    if !status {
        let _ = client.kill();
    }
    let _ = client.wait();
    assert!(status, "the ssh client outlived its server");
}
