//! SSH servers in the gateway's configuration run through the SSH kind (`ssh -T`, the remote
//! wrapper, the remote kill), with the same lifetimes and the same remote clean-up: a session's
//! DELETE, the gateway's SIGTERM and its SIGKILL each leave no remote process.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::support::{toml_str, Gateway, SLACK};
use crate::harness::{Cookie, Mode, FIXTURE, ZOO};
use crate::sshd::Sshd;

/// A `[servers.remote]` table running the fixture with its zoo on the test's sshd.
pub(crate) fn remote_server(sshd: &Sshd, cookie: &Cookie, lifetime: &str) -> String {
    remote_server_with(sshd, cookie, ZOO, &format!("lifetime = \"{lifetime}\""))
}

/// A `[servers.remote]` table running the fixture with `flags` on the test's sshd, and `extra`
/// lines in the table.
pub(crate) fn remote_server_with(sshd: &Sshd, cookie: &Cookie, flags: &[&str], extra: &str) -> String {
    let fixture_flags = flags;
    let flags = sshd.tether_flags();
    let value = |name: &str| {
        flags
            .iter()
            .position(|f| f == name)
            .map(|i| flags[i + 1].clone())
            .expect(name)
    };
    let options: Vec<String> = flags
        .windows(2)
        .filter(|w| w[0] == "--ssh-option")
        .map(|w| w[1].clone())
        .collect();
    let mut args = vec!["--tag".to_string(), cookie.0.clone()];
    args.extend(fixture_flags.iter().map(|s| s.to_string()));
    format!(
        "[servers.remote]\nssh = {}\nssh_config = {}\nssh_identity = {}\nssh_options = {}\ncommand = {}\nargs = {}\n{extra}\ngrace = \"300ms\"\n",
        toml_str(&value("--ssh")),
        toml_str(&value("--ssh-config")),
        toml_str(&value("--ssh-identity")),
        serde_json::to_string(&options).expect("options"),
        toml_str(FIXTURE),
        serde_json::to_string(&args).expect("args")
    )
}

/// Remote deadline: the remote kill goes over a second connection.
const REMOTE: Duration = Duration::from_secs(15);

#[test]
fn an_ssh_session_instance_ends_remotely_with_its_session_and_with_the_gateway() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &remote_server(&sshd, &cookie, "session"));
    // DELETE: the session's remote server and its zoo end.
    let mut c = gw.client(Some("remote"));
    c.initialize();
    c.echo("over ssh, through the gateway");
    cookie.wait_for_carriers(1 + 5);
    assert_eq!(c.delete(), 200);
    cookie.assert_only_left(&[gw.pid()], REMOTE);
    // SIGKILL of the gateway: the shims see their lifelines close and kill remotely.
    let mut c = gw.client(Some("remote"));
    c.initialize();
    c.echo("again");
    cookie.wait_for_carriers(1 + 5);
    let mut gw = gw;
    gw.signal(Signal::SIGKILL);
    gw.wait_exit(SLACK);
    cookie.assert_none_survive(REMOTE);
    // SIGTERM of the next gateway, with a shared remote instance.
    let next = Gateway::start(&cookie, Mode::Cgroup, &remote_server(&sshd, &cookie, "shared"));
    let mut c = next.client(Some("remote"));
    c.initialize();
    c.echo("shared over ssh");
    cookie.wait_for_carriers(1 + 5);
    let mut next = next;
    next.signal(Signal::SIGTERM);
    assert!(next.wait_exit(SLACK + REMOTE).success(), "{}", next.log());
    cookie.assert_none_survive(REMOTE);
}

/// A secret in an SSH server's configured `env` reaches the remote server exactly, through the
/// channel: while the instance lives, no command line on the host (the gateway's, the shim's,
/// ssh's, the remote login shell's, the wrapper's; every `/proc/*/cmdline`, pass after pass)
/// holds the value, and the log does not either.
#[test]
fn an_ssh_servers_secret_env_reaches_it_in_the_channel_and_no_command_line() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let token = crate::ssh_env::token();
    let (name, secret) = (
        crate::ssh_env::secret_name(&token),
        crate::ssh_env::tricky_value(&token),
    );
    let config = format!(
        "{}env = {{ {name} = {}, TETHER_TEST_EMPTY = \"\" }}\n",
        remote_server(&sshd, &cookie, "session"),
        toml_str(&secret)
    );
    let watch = crate::argv_watch::ArgvWatch::start(&[&token, &name]);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("remote"));
    c.initialize();
    c.echo("with a secret, over ssh");
    cookie.wait_for_carriers(1 + 5);
    // The remote fixture and the sleepers that kept its environment.
    let remote = crate::ssh_env::remote_fixtures(cookie.carriers_except(&[gw.pid()]));
    assert!(!remote.is_empty(), "no remote server found");
    for &p in &remote {
        let value = crate::ssh_env::env_var(p, &name);
        assert_eq!(value.as_deref(), Some(secret.as_bytes()), "pid {p}: the exact value");
        assert_eq!(
            crate::ssh_env::env_var(p, "TETHER_TEST_EMPTY").as_deref(),
            Some(&b""[..])
        );
    }
    watch.assert_only_the_name_was_seen(&name, &token);
    let ps = crate::harness::tether_run(&cookie, &["ps", "--json"]);
    assert!(ps.status.success(), "{ps:?}");
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(&token),
        "the value is not in tether ps"
    );
    assert_eq!(c.delete(), 200);
    assert!(!gw.log().contains(&token), "the value is not in the log");
    gw.shut_down(&cookie);
    // Nor in the ledger (the database and its journal; the configuration file the test wrote
    // is in the same directory, and holds it of course).
    let mut read = 0;
    for entry in std::fs::read_dir(cookie.state_dir()).expect("the state directory") {
        let path = entry.expect("an entry").path();
        let is_ledger = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ledger"));
        if let (true, Ok(bytes)) = (is_ledger, std::fs::read(&path)) {
            let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
            assert!(!found, "the value is in {}", path.display());
            read += 1;
        }
    }
    assert!(read > 0, "no ledger file in {}", cookie.state_dir().display());
}
