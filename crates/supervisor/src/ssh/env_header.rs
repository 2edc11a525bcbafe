//! An SSH server's environment, sent through the ssh channel instead of a command line.
//!
//! Why: a command line is readable by every user of a host (`/proc/PID/cmdline`, `ps`), and an
//! SSH server's `env` (API keys, tokens) would sit in three of them for the server's whole life:
//! the shim's, the local ssh client's (its remote command) and the remote wrapper shell's. So
//! only the names go into the remote command; the values go down the channel itself, as a
//! header the supervisor writes on the instance's stdin before any JSON-RPC. ssh carries it to
//! the wrapper's stdin, and the wrapper (`scripts/env_header.sh`) reads exactly the header with
//! `read -r`, which takes a pipe byte by byte, before it starts the server on what follows: no
//! process sits between client and server, and nothing else is read.
//!
//! The format, one line each: `NAME=ENCODED` for each name the wrapper was given, in that order,
//! then `TETHER-ENV-END`. ENCODED is the value with every backslash doubled and every newline
//! written `\n`, which the wrapper turns back into the exact bytes (spaces, quotes, `$`,
//! non-ASCII and newlines included) by parameter expansion, without a fork per variable. Only
//! NUL cannot pass: no environment can hold it.

use std::fmt::Write as _;

/// The line that ends the header.
pub const END: &str = "TETHER-ENV-END";

/// Names the wrapper keeps for itself: it parks each value in `TETHER_ENV_<NAME>` until the
/// server's exec.
pub const RESERVED_PREFIX: &str = "TETHER_ENV_";

/// A variable that cannot be sent to a remote server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Not a portable shell variable name.
    #[error("environment variable {0:?}: a name is letters, digits and '_', not starting with a digit")]
    BadName(String),
    /// A name the remote wrapper uses itself.
    #[error(
        "environment variable {0:?}: names starting with {RESERVED_PREFIX} are reserved for Tether's remote wrapper"
    )]
    Reserved(String),
    /// A value no environment can hold.
    #[error("environment variable {0:?}: the value holds a NUL byte")]
    Nul(String),
}

/// Letters, digits and '_', not starting with a digit: a name every POSIX shell can assign.
pub fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    first_ok && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Checks that `name` can travel in the header: a shell name, not one of the wrapper's own.
pub fn check_name(name: &str) -> Result<(), EnvError> {
    if !is_shell_name(name) {
        return Err(EnvError::BadName(name.to_string()));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(EnvError::Reserved(name.to_string()));
    }
    Ok(())
}

/// The header for `env`, to be written on the server's stdin before anything else. It holds
/// the values: never log it.
pub fn encode(env: &[(String, String)]) -> Result<Vec<u8>, EnvError> {
    let mut out = String::new();
    for (name, value) in env {
        check_name(name)?;
        if value.contains('\0') {
            return Err(EnvError::Nul(name.clone()));
        }
        let _ = write!(out, "{name}=");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    Ok(out.into_bytes())
}

/// The names, space-separated, as the wrapper's `ENV_NAMES` argument (empty: no header).
pub fn names_argument<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<String, EnvError> {
    let mut out = Vec::new();
    for name in names {
        check_name(name)?;
        out.push(name);
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::super::scripts::{COMMON_SCRIPT, ENV_HEADER_SCRIPT};
    use super::*;
    use std::ffi::OsStr;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::process::{Command, Stdio};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn values_are_one_line_each() {
        let header = encode(&env(&[("A", "x\ny\\n"), ("B", "")])).unwrap();
        assert_eq!(header, b"A=x\\ny\\\\n\nB=\nTETHER-ENV-END\n");
        assert_eq!(encode(&[]).unwrap(), b"TETHER-ENV-END\n");
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        for bad in ["", "1A", "A-B", "A B", "é"] {
            assert_eq!(check_name(bad), Err(EnvError::BadName(bad.into())), "{bad:?}");
        }
        assert!(matches!(check_name("TETHER_ENV_X"), Err(EnvError::Reserved(_))));
        assert!(check_name("TETHER_REMOTE_X").is_ok() && check_name("_a1").is_ok());
        assert_eq!(encode(&env(&[("A", "a\0b")])), Err(EnvError::Nul("A".into())));
        assert_eq!(names_argument(["A", "B_2"]).unwrap(), "A B_2");
        assert!(names_argument(["A", "*"]).is_err());
    }

    /// The real test: the wrapper's own reader, under each shell, gets every value back exactly
    /// and leaves what follows the header unread.
    #[test]
    #[allow(clippy::disallowed_methods)] // A test may run a shell to check what it reads.
    fn the_wrapper_reads_exact_values_and_not_a_byte_more() {
        let values = env(&[
            ("SPACES", "  two  spaces  "),
            ("QUOTES", "it's \"q\" `id` $HOME $(x) \\ \\n \\\\ %s %b \\c \\0101"),
            ("LINES", "\nfirst\r\nlast\n\n"),
            ("UNICODE", "é日本 ✓"),
            ("EMPTY", ""),
            ("TRAILING_BACKSLASH", "ends in \\"),
        ]);
        let mut input = encode(&values).unwrap();
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\"}\nafter\n");
        let names = names_argument(values.iter().map(|(k, _)| k.as_str())).unwrap();
        // printf %s\0 prints each value followed by NUL, so the split is exact; cat shows the rest.
        let mut script = format!("{COMMON_SCRIPT}{ENV_HEADER_SCRIPT}read_env_header \"$1\"; printf '%s\\0'");
        for (k, _) in &values {
            script.push_str(&format!(" \"$TETHER_ENV_{k}\""));
        }
        script.push_str("; cat");
        for shell in [&["dash"][..], &["bash", "--posix"]] {
            let mut child = Command::new(shell[0])
                .args(&shell[1..])
                .arg("-c")
                .arg(&script)
                .arg(shell[0])
                .arg(&names)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("running {shell:?}: {e}"));
            // Written in one go, so the shell could over-read if `read` buffered.
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&input)
                .expect("writing the header");
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{shell:?}: {out:?}");
            let parts: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
            for (i, (k, v)) in values.iter().enumerate() {
                assert_eq!(OsStr::from_bytes(parts[i]), OsStr::new(v), "{shell:?}: {k}");
            }
            assert_eq!(
                parts[values.len()],
                b"{\"jsonrpc\":\"2.0\"}\nafter\n",
                "{shell:?}: the rest"
            );
        }
    }

    /// A header cut short, or one that does not match the names, starts nothing: exit 125.
    #[test]
    #[allow(clippy::disallowed_methods)] // A test may run a shell to check what it reads.
    fn a_short_or_wrong_header_is_refused() {
        let script = format!("{COMMON_SCRIPT}{ENV_HEADER_SCRIPT}read_env_header \"$1\"; echo started");
        let cases: [(&str, &[u8]); 6] = [
            ("A B", b"A=1\n"),
            ("A", b"A=x\\q\nTETHER-ENV-END\n"),
            ("A", b"A=1\n"),
            ("A", b"B=1\nTETHER-ENV-END\n"),
            ("A", b"A=1\nNOT-THE-END\n"),
            ("A *", b"A=1\nTETHER-ENV-END\n"),
        ];
        for shell in ["dash", "bash"] {
            for (names, input) in cases {
                let mut child = Command::new(shell)
                    .arg("-c")
                    .arg(&script)
                    .arg(shell)
                    .arg(names)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("running {shell}: {e}"));
                // The shell may refuse before it reads: then the write may fail, as it should.
                let _ = child.stdin.take().unwrap().write_all(input);
                let out = child.wait_with_output().unwrap();
                assert_eq!(out.status.code(), Some(125), "{shell} {names:?} {input:?}: {out:?}");
                assert!(out.stdout.is_empty(), "{shell}: started anyway");
                assert!(out.stderr.starts_with(b"tether-remote: "), "{shell}: {out:?}");
            }
        }
    }
}
