//! The identity line the remote wrapper writes first on stderr, before the server runs.
//!
//! `TETHER-REMOTE-ID v1 pid=PID pgid=PGID start=TICKS boot=BOOT_ID`: space-separated
//! `key=value` fields after a tag and a version, in this order, nothing else. With the cookie it
//! is what a remote kill re-checks before it signals anything (boot id, then pid and start time,
//! then the cookie in the environment), and what the ledger records to replay kills after a
//! crash.
//!
//! The line comes before anything the server writes, but not necessarily first on the channel's
//! stderr: the remote login shell runs first, and its rc files may print there (seen here: a
//! `pyenv init` in root's `.bashrc` racing another login). Readers skip lines until
//! [`is_identity_line`] holds; those lines are the login's, or the wrapper's own complaint.

use std::fmt;

/// The first word of the line.
pub const TAG: &str = "TETHER-REMOTE-ID";
/// The only version understood.
pub const VERSION: &str = "v1";

/// A server process on a remote host, as its wrapper reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteIdentity {
    /// The server's pid on the remote host.
    pub pid: i32,
    /// Its process group (its own pid when it leads a session of its own).
    pub pgid: i32,
    /// Its start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
    pub start_ticks: u64,
    /// `/proc/sys/kernel/random/boot_id` of the remote host: pids mean nothing across boots.
    pub boot_id: String,
}

/// Why a line is not a usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The line does not start with the tag: not the wrapper talking (a login shell's noise, or
    /// the wrapper's own error message).
    #[error("not a remote identity line: {0:?}")]
    NotIdentity(String),
    /// A wrapper of another version: the scripts and this parser disagree.
    #[error("remote identity line of unknown version {version:?} (expected {VERSION}): {line:?}")]
    Version {
        /// The version found.
        version: String,
        /// The whole line.
        line: String,
    },
    /// A field is missing, out of order, repeated or unknown.
    #[error("remote identity line: expected field {expected}= at position {position}: {line:?}")]
    Field {
        /// The key expected there.
        expected: &'static str,
        /// 1-based position among the fields.
        position: usize,
        /// The whole line.
        line: String,
    },
    /// A field's value does not parse.
    #[error("remote identity line: bad {field} {value:?}: {line:?}")]
    Value {
        /// The key.
        field: &'static str,
        /// The value found.
        value: String,
        /// The whole line.
        line: String,
    },
}

const FIELDS: [&str; 4] = ["pid", "pgid", "start", "boot"];

/// Whether `line` claims to be an identity line, of any version (it may still fail to parse).
pub fn is_identity_line(line: &str) -> bool {
    line.strip_prefix(TAG).is_some_and(|rest| rest.starts_with(' '))
}

impl RemoteIdentity {
    /// Parses one line (a trailing newline or carriage return is ignored).
    pub fn parse(line: &str) -> Result<RemoteIdentity, IdentityError> {
        let line = line.trim_end_matches(['\n', '\r']);
        let mut words = line.split(' ');
        if words.next() != Some(TAG) {
            return Err(IdentityError::NotIdentity(line.to_string()));
        }
        match words.next() {
            Some(VERSION) => {}
            other => {
                return Err(IdentityError::Version {
                    version: other.unwrap_or_default().to_string(),
                    line: line.to_string(),
                })
            }
        }
        let mut values = [""; 4];
        for (i, expected) in FIELDS.iter().enumerate() {
            let value = words
                .next()
                .and_then(|w| w.strip_prefix(expected))
                .and_then(|w| w.strip_prefix('='));
            values[i] = value.ok_or_else(|| field_error(expected, i + 1, line))?;
        }
        if words.next().is_some() {
            return Err(IdentityError::Field {
                expected: "end of line",
                position: FIELDS.len() + 1,
                line: line.to_string(),
            });
        }
        let [pid, pgid, start, boot] = values;
        let id = RemoteIdentity {
            pid: positive(pid).ok_or_else(|| value_error("pid", pid, line))?,
            pgid: positive(pgid).ok_or_else(|| value_error("pgid", pgid, line))?,
            start_ticks: digits(start).ok_or_else(|| value_error("start", start, line))?,
            boot_id: boot.to_string(),
        };
        if !is_boot_id(boot) {
            return Err(value_error("boot", boot, line));
        }
        Ok(id)
    }
}

impl fmt::Display for RemoteIdentity {
    /// The line as the wrapper writes it, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG} {VERSION} pid={} pgid={} start={} boot={}",
            self.pid, self.pgid, self.start_ticks, self.boot_id
        )
    }
}

fn field_error(expected: &'static str, position: usize, line: &str) -> IdentityError {
    IdentityError::Field {
        expected,
        position,
        line: line.to_string(),
    }
}

fn value_error(field: &'static str, value: &str, line: &str) -> IdentityError {
    IdentityError::Value {
        field,
        value: value.to_string(),
        line: line.to_string(),
    }
}

/// Decimal digits only: `u64::from_str` would also take a leading `+`.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A pid or pgid: 1 or more (0 and negatives would address groups or every process).
fn positive(s: &str) -> Option<i32> {
    digits(s).and_then(|n| i32::try_from(n).ok()).filter(|&n| n > 0)
}

/// The kernel's boot id is a lowercase UUID; it goes back to the host as an argument, so
/// nothing else is accepted.
fn is_boot_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "876b4403-f033-4b3c-ab1d-beb977b72fdb";

    fn line(rest: &str) -> String {
        format!("TETHER-REMOTE-ID v1 {rest}")
    }

    #[test]
    fn parses_and_round_trips() {
        let l = line(&format!("pid=17789 pgid=17789 start=263805 boot={BOOT}\n"));
        let id = RemoteIdentity::parse(&l).unwrap();
        assert_eq!(
            id,
            RemoteIdentity {
                pid: 17789,
                pgid: 17789,
                start_ticks: 263805,
                boot_id: BOOT.into()
            }
        );
        assert_eq!(format!("{id}\n"), l);
    }

    #[test]
    fn other_lines_are_not_identities() {
        for l in [
            "",
            "tether-remote: bad cookie",
            "TETHER-REMOTE-IDv1",
            "bash: line 1: foo",
        ] {
            assert!(
                matches!(RemoteIdentity::parse(l), Err(IdentityError::NotIdentity(_))),
                "{l}"
            );
        }
    }

    #[test]
    fn identity_lines_are_told_from_noise() {
        assert!(is_identity_line("TETHER-REMOTE-ID v1 pid=1"));
        assert!(is_identity_line("TETHER-REMOTE-ID v9"));
        assert!(!is_identity_line("TETHER-REMOTE-IDv1 pid=1"));
        assert!(!is_identity_line("rm: cannot remove '/root/.pyenv/shims/tmp.x'"));
        assert!(!is_identity_line(" TETHER-REMOTE-ID v1"));
    }

    #[test]
    fn unknown_version_is_named() {
        let err = RemoteIdentity::parse("TETHER-REMOTE-ID v2 pid=1").unwrap_err();
        assert!(
            matches!(&err, IdentityError::Version { version, .. } if version == "v2"),
            "{err}"
        );
    }

    #[test]
    fn fields_must_all_be_there_in_order() {
        let cases = [
            (format!("pgid=1 pid=1 start=1 boot={BOOT}"), "pid"),
            (format!("pid=1 start=1 boot={BOOT}"), "pgid"),
            ("pid=1 pgid=1 start=1".to_string(), "boot"),
            (format!("pid=1 pgid=1 start=1 boot={BOOT} extra=1"), "end of line"),
            (format!("pid=1  pgid=1 start=1 boot={BOOT}"), "pgid"),
            (format!("pidx=1 pgid=1 start=1 boot={BOOT}"), "pid"),
        ];
        for (rest, want) in cases {
            match RemoteIdentity::parse(&line(&rest)) {
                Err(IdentityError::Field { expected, .. }) => assert_eq!(expected, want, "{rest}"),
                other => panic!("{rest}: {other:?}"),
            }
        }
    }

    #[test]
    fn values_are_checked() {
        let cases = [
            (format!("pid=0 pgid=1 start=1 boot={BOOT}"), "pid"),
            (format!("pid=-1 pgid=1 start=1 boot={BOOT}"), "pid"),
            (format!("pid=+5 pgid=1 start=1 boot={BOOT}"), "pid"),
            (format!("pid=99999999999 pgid=1 start=1 boot={BOOT}"), "pid"),
            (format!("pid=1 pgid= start=1 boot={BOOT}"), "pgid"),
            (format!("pid=1 pgid=1 start=1x boot={BOOT}"), "start"),
            ("pid=1 pgid=1 start=1 boot=not-a-boot-id".to_string(), "boot"),
            (format!("pid=1 pgid=1 start=1 boot={}", BOOT.to_uppercase()), "boot"),
            (
                "pid=1 pgid=1 start=1 boot=$(reboot)aaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(),
                "boot",
            ),
        ];
        for (rest, want) in cases {
            match RemoteIdentity::parse(&line(&rest)) {
                Err(IdentityError::Value { field, .. }) => assert_eq!(field, want, "{rest}"),
                other => panic!("{rest}: {other:?}"),
            }
        }
    }
}
