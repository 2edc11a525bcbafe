//! Why an SSH server did not run, in words that name the host and say what to fix.
//!
//! ssh exits with 255 for its own failures and prints why on stderr (the only stream Tether
//! reads); a remote shell prints "not found" and exits 127 when the command is missing. The
//! wrapper's identity line tells the two apart: without it, the remote side never started the
//! server.

use super::scripts::WRAPPER_FAILED;

/// ssh's exit status for its own errors.
pub const SSH_FAILED: i32 = 255;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshFailure {
    /// The host could not be reached (name, route, refused, timed out).
    Unreachable(String),
    /// The host refused every key.
    AuthFailed(String),
    /// The host key is unknown or changed.
    HostKey(String),
    /// The connection dropped after the server started.
    ConnectionLost(String),
    /// The remote command does not exist (127) or cannot be run (126).
    CommandNotFound {
        /// The program asked for.
        program: String,
        /// 126 or 127.
        status: i32,
    },
    /// The remote login shell is not a POSIX shell: the wrapper's quoting did not survive it.
    NotPosix(String),
    /// The wrapper ran and gave up (no `/proc`, say).
    WrapperFailed(String),
}

impl SshFailure {
    /// Classifies a server that ended with `status` (`None`: a signal), after printing `tail`
    /// on stderr, with or without having reported its identity. `None` when nothing failed
    /// (the server ran and exited by itself).
    pub fn classify(status: Option<i32>, tail: &str, identity_seen: bool, program: &str) -> Option<SshFailure> {
        let last = last_words(tail);
        match status {
            Some(SSH_FAILED) if !identity_seen => Some(connection_failure(tail, last)),
            Some(SSH_FAILED) if mentions(tail, &["closed by remote host", "Broken pipe", "Timeout, server"]) => {
                Some(SshFailure::ConnectionLost(last))
            }
            Some(s @ (126 | 127))
                if identity_seen && mentions(tail, &["not found", "No such file", "Permission denied"]) =>
            {
                Some(SshFailure::CommandNotFound {
                    program: program.to_string(),
                    status: s,
                })
            }
            Some(_) if identity_seen => None,
            Some(WRAPPER_FAILED) if tail.contains("tether-remote: ") => Some(SshFailure::WrapperFailed(last)),
            None => None,
            Some(_) => Some(SshFailure::NotPosix(last)),
        }
    }

    /// Whether the remote side may hold a server: only then is a remote kill worth a connection.
    pub fn may_have_started(&self) -> bool {
        !matches!(
            self,
            SshFailure::Unreachable(_) | SshFailure::AuthFailed(_) | SshFailure::HostKey(_)
        )
    }

    /// One sentence naming the host.
    pub fn describe(&self, destination: &str) -> String {
        match self {
            SshFailure::Unreachable(why) => format!("ssh host {destination} is unreachable: {why}"),
            SshFailure::AuthFailed(why) => format!(
                "ssh host {destination}: authentication failed ({why}); Tether runs ssh with BatchMode=yes, so the key must work without a prompt (an agent, or --ssh-option IdentityFile=…)"
            ),
            SshFailure::HostKey(why) => format!(
                "ssh host {destination}: host key not trusted ({why}); add it to known_hosts first"
            ),
            SshFailure::ConnectionLost(why) => format!("ssh connection to {destination} was lost: {why}"),
            SshFailure::CommandNotFound { program, status: 127 } => {
                format!("remote command not found on {destination}: {program:?} (not in the remote PATH?)")
            }
            SshFailure::CommandNotFound { program, .. } => {
                format!("remote command {program:?} on {destination} cannot be executed")
            }
            SshFailure::NotPosix(why) => format!(
                "the login shell of {destination} did not run Tether's POSIX sh wrapper (is it csh, fish or another non-POSIX shell?): {why}"
            ),
            SshFailure::WrapperFailed(why) => format!("Tether's remote wrapper failed on {destination}: {why}"),
        }
    }
}

/// ssh's own failure before the identity line. Only the forms ssh prints when it never got a
/// session count as "never started"; anything else (a drop after login, a timeout, an unknown
/// message) may have left a server behind, so it gets a remote kill.
fn connection_failure(tail: &str, last: String) -> SshFailure {
    let unreachable = [
        "Could not resolve hostname",
        "Connection refused",
        "Connection timed out during banner exchange",
        "connect to host",
        "No route to host",
        "Network is unreachable",
    ];
    let auth = [
        ": Permission denied (",
        "Too many authentication failures",
        "No more authentication methods",
    ];
    if mentions(tail, &auth) {
        SshFailure::AuthFailed(last)
    } else if mentions(
        tail,
        &["Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED"],
    ) {
        SshFailure::HostKey(last)
    } else if mentions(tail, &unreachable) {
        SshFailure::Unreachable(last)
    } else {
        SshFailure::ConnectionLost(if last.is_empty() {
            "ssh exited with 255".into()
        } else {
            last
        })
    }
}

fn mentions(tail: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| tail.contains(n))
}

/// The last non-empty line, trimmed, for a message.
fn last_words(tail: &str) -> String {
    tail.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: i32, tail: &str, seen: bool) -> Option<SshFailure> {
        SshFailure::classify(Some(status), tail, seen, "node")
    }

    #[test]
    fn connection_failures() {
        let refused = "ssh: connect to host 127.0.0.1 port 1: Connection refused\n";
        assert_eq!(
            classify(255, refused, false),
            Some(SshFailure::Unreachable(
                "ssh: connect to host 127.0.0.1 port 1: Connection refused".into()
            ))
        );
        assert!(matches!(
            classify(255, "root@h: Permission denied (publickey).\n", false),
            Some(SshFailure::AuthFailed(_))
        ));
        assert!(matches!(
            classify(255, "Host key verification failed.\n", false),
            Some(SshFailure::HostKey(_))
        ));
        assert!(matches!(classify(255, "", false), Some(SshFailure::ConnectionLost(_))));
        assert!(matches!(
            classify(255, "Timeout, server h not responding.\n", false),
            Some(SshFailure::ConnectionLost(_))
        ));
        assert!(SshFailure::ConnectionLost(String::new()).may_have_started());
        assert!(!SshFailure::AuthFailed(String::new()).may_have_started());
    }

    #[test]
    fn remote_side_failures() {
        let nf = "sh: 1: exec: nosuch: not found\n";
        assert_eq!(
            classify(127, nf, true),
            Some(SshFailure::CommandNotFound {
                program: "node".into(),
                status: 127
            })
        );
        assert_eq!(classify(127, "", true), None, "a server may exit 127 by itself");
        assert_eq!(classify(0, "", true), None);
        assert!(matches!(
            classify(1, "Unmatched '''.\n", false),
            Some(SshFailure::NotPosix(_))
        ));
        assert!(matches!(
            classify(125, "tether-remote: /proc is not mounted\n", false),
            Some(SshFailure::WrapperFailed(_))
        ));
        assert!(matches!(
            classify(255, "Connection to h closed by remote host.\n", true),
            Some(SshFailure::ConnectionLost(_))
        ));
        let msg = SshFailure::CommandNotFound {
            program: "nosuch".into(),
            status: 127,
        }
        .describe("u@h:22");
        assert!(msg.contains("u@h:22") && msg.contains("nosuch"), "{msg}");
    }
}
