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
    args.extend(ZOO.iter().map(|s| s.to_string()));
    format!(
        "[servers.remote]\nssh = {}\nssh_config = {}\nssh_identity = {}\nssh_options = {}\ncommand = {}\nargs = {}\nlifetime = \"{lifetime}\"\ngrace = \"300ms\"\n",
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
