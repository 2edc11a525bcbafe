//! An MCP server on an SSH host: the library type `tether wrap --ssh` builds and the gateway
//! will reuse, and the local command line that runs it under the remote wrapper.
//!
//! Its environment takes one of two ways. The values a supervisor holds (the gateway's
//! configured `env`) go down the channel in the environment header ([`super::env_header`]):
//! only their names are in any command line. The values a standalone `tether wrap` is given with
//! `--remote-env NAME=VALUE` were in its own argv already, so they stay in the remote command
//! (`env NAME=VALUE CMD`): the shim cannot write ahead of its client on the stdin it never
//! touches.

use std::ffi::OsString;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::scripts::{self, RemoteError};
use super::target::SshTarget;

/// A server reached over ssh.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshServer {
    /// Where it runs and how to log in.
    pub target: SshTarget,
    /// The remote program and its arguments (never re-parsed by a shell).
    pub command: Vec<OsString>,
    /// Environment variables set for the server on the remote host, with their values. In a
    /// [`crate::launch::Launch`], they go in the environment header the supervisor writes
    /// first on stdin; in the shim, they come from `--remote-env` and go in the remote command
    /// (through `env`, since sshd only accepts the variables its `AcceptEnv` lists).
    pub env: Vec<(String, String)>,
    /// Environment variables whose values the supervisor writes on stdin, in the environment
    /// header, before anything else: the wrapper is given their names and reads the values
    /// before it starts the server. (In a Launch: names whose header the caller writes itself,
    /// instead of `env`.)
    #[serde(default)]
    pub env_from_stdin: Vec<String>,
}

impl std::fmt::Debug for SshServer {
    /// Without the environment's values: they are often secrets, and a Debug ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SshServer")
            .field("target", &self.target)
            .field("command", &self.command)
            .field("env (names only)", &names)
            .field("env_from_stdin", &self.env_from_stdin)
            .finish()
    }
}

/// An environment assignment that cannot be passed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--remote-env {0:?}: expected NAME=VALUE with NAME made of letters, digits and '_', not starting with a digit")]
pub struct EnvError(pub String);

/// Parses `NAME=VALUE`.
pub fn parse_env(assignment: &str) -> Result<(String, String), EnvError> {
    let bad = || EnvError(assignment.to_string());
    let (name, value) = assignment.split_once('=').ok_or_else(bad)?;
    if !super::env_header::is_shell_name(name) || value.contains('\0') {
        return Err(bad());
    }
    Ok((name.to_string(), value.to_string()))
}

impl SshServer {
    /// The remote argv: the command, behind `env NAME=VALUE…` when there is an environment.
    pub fn remote_argv(&self) -> Vec<OsString> {
        if self.env.is_empty() {
            return self.command.clone();
        }
        let mut argv: Vec<OsString> = vec!["env".into()];
        argv.extend(self.env.iter().map(|(k, v)| OsString::from(format!("{k}={v}"))));
        argv.extend(self.command.iter().cloned());
        argv
    }

    /// The local command line: `ssh … HOST 'exec sh -c <wrapper> sh COOKIE GRACE_MS NAMES CMD…'`.
    pub fn local_argv(&self, cookie: &str, grace: Duration) -> Result<Vec<OsString>, RemoteError> {
        // The command's own name is checked: `env` would take `-x` for an option of its own.
        if let Some(program) = self.command.first() {
            if program.to_string_lossy().starts_with('-') {
                return Err(RemoteError::BadProgram(program.to_string_lossy().into_owned()));
            }
        }
        let line = scripts::wrapper_command(
            &self.target.shell,
            cookie,
            grace,
            &self.env_from_stdin,
            &self.remote_argv(),
        )?;
        Ok(self.target.command(&line))
    }

    /// The remote program's name, for messages.
    pub fn program(&self) -> String {
        self.command
            .first()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `node on user@host:22`, for messages.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.program(), self.target.destination())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(env: Vec<(String, String)>) -> SshServer {
        SshServer {
            target: SshTarget::parse("u@h").unwrap(),
            command: vec!["node".into(), "s.mjs".into()],
            env,
            env_from_stdin: Vec::new(),
        }
    }

    #[test]
    fn env_goes_through_env() {
        assert_eq!(
            server(vec![]).remote_argv(),
            vec![OsString::from("node"), "s.mjs".into()]
        );
        let with = server(vec![("A_1".into(), "x y".into())]);
        assert_eq!(
            with.remote_argv(),
            vec![OsString::from("env"), "A_1=x y".into(), "node".into(), "s.mjs".into()]
        );
        assert_eq!(with.describe(), "node on u@h");
        let shown = format!("{with:?}");
        assert!(shown.contains("A_1") && !shown.contains("x y"), "{shown}");
    }

    #[test]
    fn env_names_are_checked() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_env("_x="), Ok(("_x".into(), String::new())));
        for bad in ["", "=x", "1A=x", "A-B=x", "A", "A B=x"] {
            assert!(parse_env(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_argv_ends_with_the_wrapper_line() {
        let argv = server(vec![])
            .local_argv("0123456789abcdef0123456789abcdef", Duration::from_secs(1))
            .unwrap();
        let last = argv.last().unwrap().to_string_lossy().into_owned();
        assert!(last.starts_with("exec 'sh' '-c' '"), "{last}");
        assert!(
            last.ends_with("'sh' '0123456789abcdef0123456789abcdef' '1000' '' 'node' 's.mjs'"),
            "{last}"
        );
        let mut header = server(vec![]);
        header.env_from_stdin = vec!["API_KEY".into()];
        let argv = header
            .local_argv("0123456789abcdef0123456789abcdef", Duration::from_secs(1))
            .unwrap();
        let last = argv.last().unwrap().to_string_lossy().into_owned();
        assert!(last.ends_with("'1000' 'API_KEY' 'node' 's.mjs'"), "{last}");
        let mut bad = server(vec![("A".into(), "1".into())]);
        bad.command[0] = "-i".into();
        assert!(bad
            .local_argv("0123456789abcdef0123456789abcdef", Duration::ZERO)
            .is_err());
    }
}
