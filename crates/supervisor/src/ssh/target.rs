//! Where an SSH server runs and how Tether reaches it: the `ssh` command line.
//!
//! One `ssh -T` connection per instance, never a PTY (it would mangle the JSON-RPC stream), never
//! multiplexed (a ControlMaster daemonizes out of the tree, and killing a multiplexed client
//! leaves the remote session up), BatchMode (no prompt can be answered: a missing key fails at
//! once instead of hanging), keepalives so a dead network is noticed. ssh takes the FIRST value
//! it sees for an option, so the settings Tether depends on come first (the user cannot undo
//! them, and options that would are refused with a clear error), then the user's options, then
//! Tether's defaults (which the user's override).
//!
//! The target is stored in the ledger with each SSH instance, so that a later `tether reap` can
//! reach the same host the same way to replay a remote kill.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::scripts::Shell;

/// Options Tether relies on; given first, so they win.
const FORCED: [&str; 8] = [
    "BatchMode=yes",
    "RequestTTY=no",
    "ControlMaster=no",
    "ControlPath=none",
    "ControlPersist=no",
    "ForwardAgent=no",
    "ForwardX11=no",
    "PermitLocalCommand=no",
];
/// Defaults the user's `--ssh-option`s override: a dead peer is noticed within 45 s, a host that
/// does not answer within 10 s is reported, and ssh's own chatter (host key notes) stays off the
/// server's stderr.
const DEFAULTS: [&str; 4] = [
    "ServerAliveInterval=15",
    "ServerAliveCountMax=3",
    "ConnectTimeout=10",
    "LogLevel=ERROR",
];
/// Options the user may not set (lowercase, as ssh compares them): the forced ones, those the
/// destination carries (the ledger and the messages must name the host ssh really reaches), and
/// those that would detach ssh from its stdio or from the shim.
const REFUSED: [&str; 14] = [
    "batchmode",
    "requesttty",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "forwardagent",
    "forwardx11",
    "permitlocalcommand",
    "port",
    "user",
    "hostname",
    "forkafterauthentication",
    "stdinnull",
    "sessiontype",
];

/// An SSH host and how to log in: everything but the remote command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTarget {
    /// Host name or address (no brackets).
    pub host: String,
    /// Login user; ssh's default (config, then the local user) when `None`.
    pub user: Option<String>,
    /// Port; ssh's default when `None`.
    pub port: Option<u16>,
    /// `-F`: the ssh client config file to use instead of `~/.ssh/config`.
    pub config_file: Option<PathBuf>,
    /// `-i`: the private key.
    pub identity_file: Option<PathBuf>,
    /// Extra `-o` options, `Name=value`.
    pub options: Vec<String>,
    /// The shell that runs Tether's scripts on the host.
    pub shell: Shell,
    /// The ssh client program.
    pub program: PathBuf,
}

/// A target that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The destination is not `[USER@]HOST[:PORT]`.
    #[error("--ssh {0:?}: expected [USER@]HOST[:PORT] (IPv6: [USER@][ADDR]:PORT)")]
    Destination(String),
    /// An `--ssh-option` is not `Name=value`, or names an option Tether must control.
    #[error("--ssh-option {option:?}: {why}")]
    Option {
        /// The option as given.
        option: String,
        /// What is wrong with it.
        why: String,
    },
}

impl SshTarget {
    /// A target for `[USER@]HOST[:PORT]`, with no extra options.
    pub fn parse(destination: &str) -> Result<SshTarget, TargetError> {
        let bad = || TargetError::Destination(destination.to_string());
        let (user, rest) = match destination.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() && is_word(u) => (Some(u.to_string()), r),
            Some(_) => return Err(bad()),
            None => (None, destination),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (addr, after) = inner.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (addr, port)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.starts_with('-') || !is_word(host) {
            return Err(bad());
        }
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad)?),
            None => None,
        };
        Ok(SshTarget {
            host: host.to_string(),
            user,
            port,
            config_file: None,
            identity_file: None,
            options: Vec::new(),
            shell: Shell::default(),
            program: PathBuf::from("ssh"),
        })
    }

    /// Adds `-o` options, refusing malformed ones and those Tether must control.
    pub fn with_options(mut self, options: &[String]) -> Result<SshTarget, TargetError> {
        for option in options {
            let bad = |why: &str| TargetError::Option {
                option: option.clone(),
                why: why.to_string(),
            };
            let (name, _) = option
                .split_once(['=', ' '])
                .filter(|(n, v)| !n.is_empty() && !v.is_empty())
                .ok_or_else(|| bad("expected Name=value, as for ssh -o"))?;
            if REFUSED.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(bad(
                    "Tether sets this itself (one connection per server, no PTY, no prompts, no forwarding; user, host and port come from --ssh)",
                ));
            }
            if option.contains(['\n', '\0']) {
                return Err(bad("contains a newline or NUL byte"));
            }
            self.options.push(option.clone());
        }
        Ok(self)
    }

    /// `user@host:port` as given, for messages.
    pub fn destination(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        if self.host.contains(':') {
            s.push_str(&format!("[{}]", self.host));
        } else {
            s.push_str(&self.host);
        }
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }

    /// The whole local command line: `ssh -T -e none -o … [-p P] [-l U] HOST REMOTE`.
    pub fn command(&self, remote: &OsStr) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![self.program.clone().into(), "-T".into(), "-e".into(), "none".into()];
        if let Some(f) = &self.config_file {
            argv.extend(["-F".into(), f.clone().into()]);
        }
        let options = FORCED.iter().copied().chain(self.options.iter().map(String::as_str));
        for o in options.chain(DEFAULTS) {
            argv.extend(["-o".into(), o.into()]);
        }
        if let Some(i) = &self.identity_file {
            argv.extend(["-i".into(), i.clone().into()]);
        }
        if let Some(p) = self.port {
            argv.extend(["-p".into(), p.to_string().into()]);
        }
        if let Some(u) = &self.user {
            argv.extend(["-l".into(), u.into()]);
        }
        argv.push(self.host.clone().into());
        argv.push(remote.to_os_string());
        argv
    }
}

/// No whitespace, control characters or shell-significant leading dash trouble: what a user or
/// host name can hold.
fn is_word(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let t = SshTarget::parse("deploy@build.example:2222").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("deploy"), "build.example", Some(2222))
        );
        let t = SshTarget::parse("host").unwrap();
        assert_eq!((t.user, t.host.as_str(), t.port), (None, "host", None));
        let t = SshTarget::parse("me@[::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(22)));
        assert_eq!(t.destination(), "me@[::1]:22");
        for bad in [
            "",
            "@h",
            "u@",
            "h:0",
            "h:x",
            "-oProxyCommand=x",
            "[::1",
            "h:99999",
            "a b",
            "u@h/x",
        ] {
            assert!(SshTarget::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn forced_options_come_first_and_cannot_be_overridden() {
        let t = SshTarget::parse("u@h:2")
            .unwrap()
            .with_options(&["ServerAliveInterval=1".into()])
            .unwrap();
        let argv: Vec<String> = t
            .command(OsStr::new("exec x"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let pos = |o: &str| argv.iter().position(|a| a == o).unwrap();
        assert!(pos("BatchMode=yes") < pos("ServerAliveInterval=1"));
        assert!(pos("ServerAliveInterval=1") < pos("ServerAliveInterval=15"));
        assert_eq!(&argv[argv.len() - 2..], ["h", "exec x"]);
        assert_eq!(&argv[..4], ["ssh", "-T", "-e", "none"]);
        for refused in [
            "ControlMaster=auto",
            "requesttty=force",
            "BatchMode no",
            "x",
            "=y",
            "A=b\nc",
        ] {
            let r = SshTarget::parse("h").unwrap().with_options(&[refused.into()]);
            assert!(r.is_err(), "{refused:?} accepted");
        }
    }
}
