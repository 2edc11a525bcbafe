//! What goes wrong with an SSH server is said in one line that names the host, on tether's
//! stderr (which MCP clients show in their server logs), with a failing exit status, and
//! nothing is left running: an unreachable host, a refused key, a missing remote command, a
//! login shell that is not POSIX.

use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::harness::{require, Cookie, Feature, Mode, WrapBuilder};
use crate::ssh_tether::{remote_record, PATIENCE};
use crate::sshd::Sshd;

/// Runs `tether wrap` with these flags in front of the fixture, closes nothing, waits for it to
/// fail; returns its exit code and stderr.
fn fails(cookie: &Cookie, tether: &[String], command: Option<&[&str]>) -> (Option<i32>, String) {
    let flags: Vec<&str> = tether.iter().map(String::as_str).collect();
    let mut b = WrapBuilder::new(cookie, Mode::Cgroup).tether(&flags);
    if let Some(c) = command {
        b = b.command(c);
    }
    b.run_to_exit(PATIENCE)
}

#[test]
fn an_unreachable_host_is_named() {
    if !require(Feature::Ssh, "skipping: no ssh client to fail") {
        return;
    }
    let cookie = Cookie::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dest = format!("root@127.0.0.1:{port}");
    let flags = vec![
        "--ssh".to_string(),
        dest.clone(),
        "--ssh-config".into(),
        "/dev/null".into(),
    ];
    let (code, stderr) = fails(&cookie, &flags, None);
    assert_eq!(code, Some(255), "{stderr}");
    assert!(stderr.contains(&format!("ssh host {dest} is unreachable")), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

#[test]
fn a_refused_key_is_named_and_no_remote_kill_is_wasted() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let id = crate::ssh_tether::instance_id(&cookie);
    // The host key is a valid private key the server does not accept for login.
    let mut flags: Vec<String> = sshd
        .tether_flags()
        .into_iter()
        .map(|f| {
            if f.ends_with("/client_key") {
                format!("{}/host_key", sshd.dir().display())
            } else {
                f
            }
        })
        .collect();
    flags.extend(["--instance-id".into(), id]);
    let (code, stderr) = fails(&cookie, &flags, None);
    assert_eq!(code, Some(255), "{stderr}");
    assert!(
        stderr.contains(&format!("ssh host {}: authentication failed", sshd.destination())),
        "{stderr}"
    );
    let rec = remote_record(&cookie);
    assert!(rec.settled && rec.identity.is_none(), "{rec:?}");
    assert_eq!(rec.outcome.as_deref(), Some("ssh never logged in"));
}

#[test]
fn a_missing_remote_command_is_named() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let missing = format!("/nonexistent/{}/mcp-server", cookie.0);
    let (code, stderr) = fails(&cookie, &with_id(&sshd, &cookie), Some(&[&missing]));
    assert_eq!(code, Some(127), "{stderr}");
    assert!(
        stderr.contains(&format!("remote command not found on {}", sshd.destination())),
        "{stderr}"
    );
    assert_settled_without_a_kill(&cookie);
}

/// The sshd's flags plus this test's instance id, so its ledger row can be read back.
fn with_id(sshd: &Sshd, cookie: &Cookie) -> Vec<String> {
    let mut flags = sshd.tether_flags();
    flags.extend(["--instance-id".into(), crate::ssh_tether::instance_id(cookie)]);
    flags
}

/// The remote side ended with the remote command (ssh relayed its status): nothing to kill, and
/// nothing for `tether reap` to retry.
fn assert_settled_without_a_kill(cookie: &Cookie) {
    let rec = remote_record(cookie);
    assert!(rec.settled, "{rec:?}");
    assert!(
        rec.outcome.as_deref().is_some_and(|o| !o.contains("remote kill")),
        "{rec:?}"
    );
}

#[test]
fn a_login_shell_that_is_not_posix_is_named() {
    let tcsh = "/usr/bin/tcsh";
    // The user's login shell stays bash; ForceCommand hands the requested command to tcsh, which
    // is what a user whose login shell is tcsh gets.
    let Some(sshd) = Sshd::start_with(&format!("ForceCommand exec {tcsh} -c \"$SSH_ORIGINAL_COMMAND\"\n")) else {
        return;
    };
    assert!(
        std::path::Path::new(tcsh).exists(),
        "{tcsh} missing: install tcsh (.ci/run does) to stand in for a non-POSIX login shell"
    );
    let check = Command::new("ssh")
        .args(sshd.ssh_args())
        .arg("echo $version")
        .stdin(Stdio::null())
        .output()
        .expect("ssh");
    let version = String::from_utf8_lossy(&check.stdout);
    assert!(
        version.starts_with("tcsh "),
        "tcsh does not run the commands: {version:?}"
    );
    let cookie = Cookie::new();
    let (code, stderr) = fails(&cookie, &with_id(&sshd, &cookie), None);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the login shell of {} did not run Tether's POSIX sh wrapper",
            sshd.destination()
        )),
        "{stderr}"
    );
    assert_settled_without_a_kill(&cookie);
}

#[test]
fn ssh_options_tether_relies_on_are_refused_before_anything_starts() {
    let cookie = Cookie::new();
    let flags = ["--ssh", "h", "--ssh-option", "ControlMaster=auto"].map(String::from);
    let (code, stderr) = fails(&cookie, &flags, None);
    assert_eq!(code, Some(125), "{stderr}");
    assert!(stderr.contains("--ssh-option \"ControlMaster=auto\""), "{stderr}");
}
