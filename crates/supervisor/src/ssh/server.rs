//! An MCP server on an SSH host: the library type `tether wrap --ssh` builds and the gateway
//! will reuse, and the local command line that runs it under the remote wrapper.

use std::ffi::OsString;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::scripts::{self, RemoteError};
use super::target::SshTarget;

/// A server reached over ssh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshServer {
    /// Where it runs and how to log in.
    pub target: SshTarget,
    /// The remote program and its arguments (never re-parsed by a shell).
    pub command: Vec<OsString>,
    /// Environment variables set for the server on the remote host (through `env`, since sshd
    /// only accepts the variables its `AcceptEnv` lists).
    pub env: Vec<(String, String)>,
}

/// An environment assignment that cannot be passed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--remote-env {0:?}: expected NAME=VALUE with NAME made of letters, digits and '_', not starting with a digit")]
pub struct EnvError(pub String);

/// Parses `NAME=VALUE`.
pub fn parse_env(assignment: &str) -> Result<(String, String), EnvError> {
    let bad = || EnvError(assignment.to_string());
    let (name, value) = assignment.split_once('=').ok_or_else(bad)?;
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c == '_' || c.is_ascii_alphanumeric()) || value.contains('\0') {
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

    /// The local command line: `ssh … HOST 'exec sh -c <wrapper> sh COOKIE GRACE_MS CMD…'`.
    pub fn local_argv(&self, cookie: &str, grace: Duration) -> Result<Vec<OsString>, RemoteError> {
        // The command's own name is checked: `env` would take `-x` for an option of its own.
        if let Some(program) = self.command.first() {
            if program.to_string_lossy().starts_with('-') {
                return Err(RemoteError::BadProgram(program.to_string_lossy().into_owned()));
            }
        }
        let line = scripts::wrapper_command(&self.target.shell, cookie, grace, &self.remote_argv())?;
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
            last.ends_with("'sh' '0123456789abcdef0123456789abcdef' '1000' 'node' 's.mjs'"),
            "{last}"
        );
        let mut bad = server(vec![("A".into(), "1".into())]);
        bad.command[0] = "-i".into();
        assert!(bad
            .local_argv("0123456789abcdef0123456789abcdef", Duration::ZERO)
            .is_err());
    }
}
