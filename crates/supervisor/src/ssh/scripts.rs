//! The remote commands: each is a whole script passed as ONE argument to `SH -c`, followed by
//! its positional parameters, every word single-quoted for the remote login shell.
//!
//! The string returned is what goes after the destination on the `ssh -T` command line (as a
//! single argument; ssh would join several with spaces anyway). The scripts live in `scripts/`
//! as `.sh` files so they can be read, linted and run by hand; `common.sh` is prepended to the
//! wrapper and the kill script, `env_header.sh` to the wrapper.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use super::env_header::{self, EnvError};
use super::identity_line::RemoteIdentity;
use super::quote::{self, NulError};

/// Functions shared by the wrapper and the kill script.
pub const COMMON_SCRIPT: &str = include_str!("scripts/common.sh");
/// Reads the environment header; see [`super::env_header`].
pub const ENV_HEADER_SCRIPT: &str = include_str!("scripts/env_header.sh");
/// Runs a server tied to its ssh connection; see the header of `scripts/wrapper.sh`.
pub const WRAPPER_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/env_header.sh"),
    include_str!("scripts/wrapper.sh")
);
/// Kills a server by its identity, or refuses; see the header of `scripts/kill.sh`.
pub const KILL_SCRIPT: &str = concat!(include_str!("scripts/common.sh"), include_str!("scripts/kill.sh"));
/// Checks the remote login shell and host; see the header of `scripts/preflight.sh`.
pub const PREFLIGHT_SCRIPT: &str = include_str!("scripts/preflight.sh");

/// The wrapper's exit status when it failed itself (bad arguments, no `/proc`, no identity).
pub const WRAPPER_FAILED: i32 = 125;
/// The kill script's exit status when it refused (the identity no longer matches).
pub const KILL_REFUSED: i32 = 3;
/// The kill script's exit status on bad arguments or a host without `/proc`.
pub const KILL_ERROR: i32 = 2;

/// Echoed back by the preflight script: everything a non-POSIX shell would parse differently
/// inside single quotes, or around them (`'\''`), but no newline, to keep the reply one line.
pub const PREFLIGHT_PROBE: &str = "it's \"q\" $HOME `id` \\a\\\\b !! ~ * #x %% {a,b} \t end";

/// The longest grace passed on (a day, the local teardown's cap too).
pub const MAX_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Which shell runs the scripts on the remote host: `sh` unless told otherwise.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shell {
    /// The program, looked up in the remote PATH; also `$0` of the script, which the wrapper
    /// re-uses to run its trampoline, so both run under the same shell.
    pub program: String,
    /// Flags before `-c` (`--posix` for bash).
    pub flags: Vec<String>,
}

impl Default for Shell {
    fn default() -> Shell {
        Shell {
            program: "sh".into(),
            flags: Vec::new(),
        }
    }
}

/// A remote command that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// An argument holds a NUL byte.
    #[error("remote command: {0}")]
    Nul(#[from] NulError),
    /// The server command is empty.
    #[error("remote command: no server command given")]
    NoCommand,
    /// A word that would be taken for an option (`exec -x`, `setsid -x`) where a program name
    /// belongs.
    #[error("remote command: program name {0:?} is empty or starts with '-'")]
    BadProgram(String),
    /// The cookie is not a 128-bit id (32 lowercase hex digits): the remote scripts match it as
    /// a prefix of an environment entry, so all cookies must have one length.
    #[error("remote command: cookie {0:?} is not a Tether id")]
    BadCookie(String),
    /// An environment variable name that cannot go into the header.
    #[error("remote command: {0}")]
    Env(#[from] EnvError),
}

/// `exec SH -c WRAPPER SH COOKIE GRACE_MS ENV_NAMES CMD [ARG…]`: runs `server` under the
/// wrapper, which first reads the values of `env_names` from its stdin (see
/// [`super::env_header`]; none: no header).
pub fn wrapper_command(
    shell: &Shell,
    cookie: &str,
    grace: Duration,
    env_names: &[String],
    server: &[OsString],
) -> Result<OsString, RemoteError> {
    let program = server.first().ok_or(RemoteError::NoCommand)?;
    check_program(&program.to_string_lossy())?;
    check_cookie(cookie)?;
    let names = env_header::names_argument(env_names.iter().map(String::as_str))?;
    let mut params: Vec<OsString> = vec![cookie.into(), grace_ms(grace).into(), names.into()];
    params.extend(server.iter().cloned());
    script_command(shell, WRAPPER_SCRIPT, &params)
}

/// `exec SH -c KILL SH PID PGID START BOOT COOKIE GRACE_MS`: kills the server `id` names,
/// unless it is no longer that process.
pub fn kill_command(
    shell: &Shell,
    id: &RemoteIdentity,
    cookie: &str,
    grace: Duration,
) -> Result<OsString, RemoteError> {
    check_cookie(cookie)?;
    let params: Vec<OsString> = [
        id.pid.to_string(),
        id.pgid.to_string(),
        id.start_ticks.to_string(),
        id.boot_id.clone(),
        cookie.to_string(),
        grace_ms(grace),
    ]
    .map(OsString::from)
    .into();
    script_command(shell, KILL_SCRIPT, &params)
}

/// `exec SH -c PREFLIGHT SH PROBE`: see [`super::replies::Preflight`].
pub fn preflight_command(shell: &Shell) -> Result<OsString, RemoteError> {
    script_command(shell, PREFLIGHT_SCRIPT, &[PREFLIGHT_PROBE.into()])
}

/// `exec SH [FLAGS] -c SCRIPT SH PARAMS…`, quoted.
fn script_command(shell: &Shell, script: &str, params: &[OsString]) -> Result<OsString, RemoteError> {
    check_program(&shell.program)?;
    let program = OsStr::new(&shell.program);
    let words = std::iter::once(program)
        .chain(shell.flags.iter().map(OsStr::new))
        .chain([OsStr::new("-c"), OsStr::new(script), program])
        .chain(params.iter().map(OsString::as_os_str));
    Ok(OsString::from_vec(quote::exec_line(words)?))
}

fn check_program(name: &str) -> Result<(), RemoteError> {
    if name.is_empty() || name.starts_with('-') {
        return Err(RemoteError::BadProgram(name.to_string()));
    }
    Ok(())
}

fn check_cookie(cookie: &str) -> Result<(), RemoteError> {
    if cookie.len() != 32 || !crate::ids::is_valid_id(cookie) {
        return Err(RemoteError::BadCookie(cookie.to_string()));
    }
    Ok(())
}

fn grace_ms(grace: Duration) -> String {
    grace.min(MAX_GRACE).as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn wrapper_command_is_one_exec_line() {
        let server = ["node".into(), "it's here.js".into()];
        let cmd = wrapper_command(&Shell::default(), COOKIE, Duration::from_millis(1500), &[], &server).unwrap();
        let cmd = cmd.to_str().unwrap();
        let script = String::from_utf8(quote::quote(WRAPPER_SCRIPT.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            cmd,
            format!("exec 'sh' '-c' {script} 'sh' '{COOKIE}' '1500' '' 'node' 'it'\\''s here.js'")
        );
        let names = ["API_KEY".to_string(), "B".into()];
        let cmd = wrapper_command(&Shell::default(), COOKIE, Duration::ZERO, &names, &server).unwrap();
        assert!(
            cmd.to_str()
                .unwrap()
                .ends_with("'0' 'API_KEY B' 'node' 'it'\\''s here.js'"),
            "{cmd:?}"
        );
    }

    #[test]
    fn shell_flags_go_before_dash_c() {
        let bash = Shell {
            program: "bash".into(),
            flags: vec!["--posix".into()],
        };
        let cmd = preflight_command(&bash).unwrap();
        assert!(
            cmd.to_str().unwrap().starts_with("exec 'bash' '--posix' '-c' '"),
            "{cmd:?}"
        );
        assert!(cmd.to_str().unwrap().contains("' 'bash' 'it'\\''s"), "{cmd:?}");
    }

    #[test]
    fn kill_command_passes_the_identity() {
        let id = RemoteIdentity {
            pid: 10,
            pgid: 10,
            start_ticks: 1234,
            boot_id: "876b4403-f033-4b3c-ab1d-beb977b72fdb".into(),
        };
        let cmd = kill_command(&Shell::default(), &id, COOKIE, Duration::from_secs(2)).unwrap();
        let tail = format!("' 'sh' '10' '10' '1234' '{}' '{COOKIE}' '2000'", id.boot_id);
        assert!(cmd.to_str().unwrap().ends_with(&tail), "{cmd:?}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let g = Duration::ZERO;
        let sh = Shell::default();
        assert_eq!(wrapper_command(&sh, COOKIE, g, &[], &[]), Err(RemoteError::NoCommand));
        assert!(matches!(
            wrapper_command(&sh, COOKIE, g, &[], &["-x".into()]),
            Err(RemoteError::BadProgram(_))
        ));
        assert!(matches!(
            wrapper_command(&sh, "NOT HEX", g, &[], &["a".into()]),
            Err(RemoteError::BadCookie(_))
        ));
        assert!(matches!(
            wrapper_command(&sh, COOKIE, g, &[], &["a".into(), "b\0".into()]),
            Err(RemoteError::Nul(_))
        ));
        assert!(matches!(
            wrapper_command(&sh, COOKIE, g, &["TETHER_ENV_X".into()], &["a".into()]),
            Err(RemoteError::Env(EnvError::Reserved(_)))
        ));
        let empty = Shell {
            program: String::new(),
            flags: vec![],
        };
        assert!(matches!(preflight_command(&empty), Err(RemoteError::BadProgram(_))));
    }

    #[test]
    fn grace_is_capped() {
        assert_eq!(
            grace_ms(Duration::from_secs(u64::MAX)),
            MAX_GRACE.as_millis().to_string()
        );
    }

    #[test]
    fn common_script_ends_in_a_newline_so_concatenation_is_safe() {
        assert!(COMMON_SCRIPT.ends_with('\n'));
        assert!(WRAPPER_SCRIPT.starts_with(COMMON_SCRIPT) && KILL_SCRIPT.starts_with(COMMON_SCRIPT));
    }
}
