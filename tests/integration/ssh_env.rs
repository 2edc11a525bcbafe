//! An SSH server's environment travels in the channel, never in a command line: the remote
//! wrapper, run by dash and by bash --posix over a real sshd, reads the environment header from
//! its stdin, gives the server every value exactly, starts it on the bytes right after the
//! header, and starts nothing when the header is cut short. Meanwhile an [`ArgvWatch`] reads
//! every `/proc/*/cmdline` of the host (the "remote" host is this one), pass after pass, and
//! finds the variable's name (in the wrapper's and ssh's command lines, as it should be) but
//! never its value. The gateway's side is `gateway/ssh.rs`.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use serde_json::Value;
use tether_supervisor::launch::{Launch, LedgerChoice, ServerCommand, StderrMode};
use tether_supervisor::process::procfs;
use tether_supervisor::ssh::scripts::Shell;
use tether_supervisor::ssh::{env_header, SshServer};

use crate::argv_watch::ArgvWatch;
use crate::harness::{Cookie, FIXTURE, TETHER};
use crate::ssh_remote::{bash, dash, with_both_shells, Case, GRACE, PATIENCE};
use crate::sshd::Sshd;

/// The name of the variable that holds the value with `token`: its own per test, so that the
/// watcher's sighting of it comes from this test's processes, never a neighbour's; not holding
/// the token (only its last digits), so that the watcher's two needles stay apart.
pub fn secret_name(token: &str) -> String {
    format!("TETHER_TEST_SECRET_{}", &token[token.len() - 8..])
}

/// How long survivors of a teardown may take to be gone.
const CLEANUP: Duration = Duration::from_secs(3);

/// A value a shell would mangle in every way it can (spaces, both quotes, `$`, backquotes,
/// backslashes, `printf` escapes, newlines, non-ASCII), holding `token`, which nothing but the
/// value holds: the watcher looks for the token.
pub fn tricky_value(token: &str) -> String {
    format!(" {token} it's \"q\" $HOME $(id) `id` \\ \\n \\\\ %s %b \\c\nsecond line\r\n é日本 ✓ \n\n")
}

/// A fresh token.
pub fn token() -> String {
    format!("tok{}", tether_supervisor::ids::random_id().expect("a random id"))
}

/// The value of `name` in `pid`'s environment, as bytes.
pub fn env_var(pid: i32, name: &str) -> Option<Vec<u8>> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    environ
        .split(|&b| b == 0)
        .find_map(|e| e.strip_prefix(prefix.as_bytes()))
        .map(<[u8]>::to_vec)
}

/// Of `pids`, the fixtures started by the remote wrapper (they carry its cookie): the server,
/// and any sleepers that kept its environment.
pub fn remote_fixtures(pids: Vec<i32>) -> Vec<i32> {
    pids.into_iter()
        .filter(|&p| {
            crate::harness::is_named(p, "tether-fixture")
                && procfs::environ_value(p, b"TETHER_REMOTE_COOKIE=").is_some()
        })
        .collect()
}

with_both_shells!(
    the_server_gets_the_values_from_the_header_and_no_argv_holds_them,
    a_header_cut_short_starts_nothing,
);

fn the_server_gets_the_values_from_the_header_and_no_argv_holds_them(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let token = token();
    let (name, secret) = (secret_name(&token), tricky_value(&token));
    let env = vec![
        (name.clone(), secret.clone()),
        ("TETHER_TEST_EMPTY".into(), String::new()),
    ];
    let names: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
    let watch = ArgvWatch::start(&[&token, &name]);
    let mut r = case.start_with_env(shell, &names, &case.fixture(&[]));
    // All at once, as the gateway does: the wrapper must stop reading where the header ends.
    let mut input = env_header::encode(&env).expect("a header");
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n");
    r.send(&input);
    let id = r.identity();
    let reply: Value = serde_json::from_str(&r.read_line(PATIENCE)).expect("a JSON reply");
    assert_eq!(
        reply["id"], 7,
        "the server's input begins right after the header: {reply}"
    );
    // It answered: the exec is done, the pid is the server's.
    assert_eq!(
        env_var(id.pid, &name).as_deref(),
        Some(secret.as_bytes()),
        "the exact value"
    );
    assert_eq!(env_var(id.pid, "TETHER_TEST_EMPTY").as_deref(), Some(&b""[..]));
    let environ = std::fs::read(format!("/proc/{}/environ", id.pid)).expect("the server's environment");
    assert!(
        !environ.split(|&b| b == 0).any(|e| e.starts_with(b"TETHER_ENV_")),
        "the wrapper's parking names are gone by the exec"
    );
    watch.assert_only_the_name_was_seen(&name, &token);
    r.stdin.take();
    let status = r.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", r.stderr_lines().join("\n"));
    case.assert_clean(CLEANUP);
}

fn a_header_cut_short_starts_nothing(shell: &Shell) {
    let Some(case) = Case::new() else { return };
    let name = secret_name(&token());
    let mut r = case.start_with_env(shell, std::slice::from_ref(&name), &case.fixture(&[]));
    r.send(format!("{name}=half a value").as_bytes());
    r.stdin.take();
    let status = r.wait_exit(PATIENCE);
    let stderr = r.stderr_lines();
    assert_eq!(status.code(), Some(125), "stderr:\n{}", stderr.join("\n"));
    assert!(
        stderr
            .iter()
            .any(|l| l.starts_with("tether-remote: the input ended inside the environment header")),
        "{stderr:#?}"
    );
    assert!(!stderr.iter().any(|l| l.starts_with("TETHER-REMOTE-ID")), "{stderr:#?}");
    case.assert_clean(CLEANUP);
}

/// The library's own way: `Launch::spawn` writes the header before anything its caller sends,
/// through `tether wrap --remote-env-from-stdin` (names only) and ssh to the wrapper.
#[test]
fn launch_spawn_writes_the_header_before_the_callers_messages() {
    let Some(sshd) = Sshd::start() else { return };
    let tag = Cookie::new();
    let token = token();
    let (name, secret) = (secret_name(&token), tricky_value(&token));
    let server = SshServer {
        target: sshd.target(),
        command: vec![FIXTURE.into(), "--tag".into(), tag.0.clone().into()],
        env: vec![(name.clone(), secret.clone())],
        env_from_stdin: Vec::new(),
    };
    let id = || tether_supervisor::ids::random_id().expect("an id");
    let mut launch = Launch::new(TETHER.into(), ServerCommand::Ssh(Box::new(server)), id(), id());
    launch.grace = GRACE;
    launch.stderr = StderrMode::Null;
    launch.ledger = LedgerChoice::At(tag.state_dir());
    let watch = ArgvWatch::start(&[&token, &name]);
    let mut shim = launch.spawn().expect("launching the shim");
    let mut stdin = shim.stdin.take().expect("the server's stdin");
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}\n")
        .expect("writing a ping");
    // The answer is read on a thread of its own, so the wait has a deadline.
    let stdout = shim.stdout.take().expect("the server's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(PATIENCE).expect("an answer to the ping");
    let reply: Value = serde_json::from_str(&line).expect("a JSON reply");
    assert_eq!(
        reply["id"], 3,
        "the server's input begins right after the header: {reply}"
    );
    let remote = remote_fixtures(tag.carriers());
    assert_eq!(remote.len(), 1, "one remote server: {remote:?}");
    assert_eq!(
        env_var(remote[0], &name).as_deref(),
        Some(secret.as_bytes()),
        "the exact value"
    );
    watch.assert_only_the_name_was_seen(&name, &token);
    // The lifeline's cut ends it all, here and on the host (ssh's status, whatever it is, is
    // not the point).
    drop(stdin);
    shim.end();
    shim.wait().expect("the shim's status");
    tag.assert_none_survive(CLEANUP);
}
