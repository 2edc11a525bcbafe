//! Reading back what the kill and preflight scripts print: one line each, on stdout.
//!
//! Both lines start with a tag and a version, then `key=value` fields. The kill line's result
//! also shows in the exit status; the two are checked against each other, so a stray `exit`
//! elsewhere cannot pass for a kill.

use super::scripts::{KILL_ERROR, KILL_REFUSED, PREFLIGHT_PROBE};

/// Tag of the kill script's line.
pub const KILL_TAG: &str = "TETHER-REMOTE-KILL v1 ";
/// Tag of the preflight script's line.
pub const PREFLIGHT_TAG: &str = "TETHER-PREFLIGHT v1 ";

/// What happened to the leader during a remote kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leader {
    /// It exited within the grace after SIGTERM.
    Term,
    /// It needed SIGKILL.
    Kill,
    /// It had already exited.
    Gone,
    /// Its identity was never learnt: only the cookie sweep ran.
    Unknown,
}

impl Leader {
    /// The word the kill script uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Leader::Term => "term",
            Leader::Kill => "kill",
            Leader::Gone => "gone",
            Leader::Unknown => "unknown",
        }
    }
}

impl Refusal {
    /// What the refusal means, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Boot => "the remote host rebooted since",
            Refusal::Start => "its pid now belongs to a process that started at another time",
            Refusal::Cookie => "its pid now belongs to a process without the cookie",
        }
    }
}

/// Why a remote kill refused to signal anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The host rebooted since the identity was taken.
    Boot,
    /// The pid belongs to a process that started at another time.
    Start,
    /// The pid's process does not carry the cookie.
    Cookie,
}

/// The outcome of a remote kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReport {
    /// The group was signalled (or was gone) and the cookie swept.
    Killed {
        /// How the leader ended.
        leader: Leader,
        /// Cookie carriers SIGKILLed by the sweep.
        swept: u32,
    },
    /// The identity no longer matches: nothing was signalled.
    Refused(Refusal),
}

/// A kill script's reply that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// No line with the expected tag: the script did not run (see stderr), or a non-POSIX
    /// login shell mangled it.
    #[error("remote script printed no {tag:?} line (exit status {status:?}); stdout: {stdout:?}")]
    Missing {
        /// The tag looked for.
        tag: &'static str,
        /// The exit status, if it exited.
        status: Option<i32>,
        /// Everything it printed on stdout.
        stdout: String,
    },
    /// The script reported an error of its own (bad arguments, no /proc).
    #[error("remote kill failed: {reason} (exit status {status:?})")]
    Script {
        /// Its reason word.
        reason: String,
        /// The exit status.
        status: Option<i32>,
    },
    /// The line is malformed, or contradicts the exit status.
    #[error("remote script reply not understood: {line:?} (exit status {status:?})")]
    Malformed {
        /// The line.
        line: String,
        /// The exit status.
        status: Option<i32>,
    },
}

impl KillReport {
    /// Reads the kill script's stdout and exit status (`None`: killed by a signal).
    pub fn parse(stdout: &str, status: Option<i32>) -> Result<KillReport, ReportError> {
        let line = tagged_line(stdout, KILL_TAG).ok_or_else(|| ReportError::Missing {
            tag: KILL_TAG.trim_end(),
            status,
            stdout: stdout.to_string(),
        })?;
        let malformed = || ReportError::Malformed {
            line: line.to_string(),
            status,
        };
        let fields = Fields(line);
        match (fields.get("result"), status) {
            (Some("killed"), Some(0)) => {
                let leader = match fields.get("leader") {
                    Some("term") => Leader::Term,
                    Some("kill") => Leader::Kill,
                    Some("gone") => Leader::Gone,
                    Some("unknown") => Leader::Unknown,
                    _ => return Err(malformed()),
                };
                let swept = fields.get("swept").and_then(|n| n.parse().ok()).ok_or_else(malformed)?;
                Ok(KillReport::Killed { leader, swept })
            }
            (Some("refused"), Some(KILL_REFUSED)) => match fields.get("reason") {
                Some("boot") => Ok(KillReport::Refused(Refusal::Boot)),
                Some("start") => Ok(KillReport::Refused(Refusal::Start)),
                Some("cookie") => Ok(KillReport::Refused(Refusal::Cookie)),
                _ => Err(malformed()),
            },
            (Some("error"), Some(KILL_ERROR)) => Err(ReportError::Script {
                reason: fields.get("reason").unwrap_or("unknown").to_string(),
                status,
            }),
            _ => Err(malformed()),
        }
    }
}

/// What the preflight found on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preflight {
    /// `setsid(1)` is there: servers get a session of their own (see the wrapper's fallback).
    pub setsid: bool,
}

/// Why a host cannot run the remote wrapper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    /// The login shell did not hand the quoted words through unchanged.
    #[error("remote shell not POSIX: the login shell did not run Tether's probe as sh would (exit status {status:?}); stdout: {stdout:?}")]
    NotPosix {
        /// The exit status, if it exited.
        status: Option<i32>,
        /// Everything printed on stdout.
        stdout: String,
    },
    /// No `/proc`: the wrapper can neither identify nor watch processes.
    #[error("remote host has no usable /proc: the remote wrapper cannot identify or watch processes")]
    NoProc,
    /// Login-time files print to stdout, which would corrupt the MCP stream.
    #[error("remote login prints to stdout before the command runs (shell rc files?), which would corrupt MCP messages: {extra:?}")]
    StrayOutput {
        /// The lines that are not the preflight's.
        extra: String,
    },
}

impl Preflight {
    /// Reads the preflight script's stdout and exit status.
    pub fn parse(stdout: &str, status: Option<i32>) -> Result<Preflight, PreflightError> {
        let not_posix = || PreflightError::NotPosix {
            status,
            stdout: stdout.to_string(),
        };
        let line = tagged_line(stdout, PREFLIGHT_TAG).ok_or_else(not_posix)?;
        // The probe is last and may hold spaces: everything after "probe=" is it.
        let (head, probe) = line.split_once(" probe=").ok_or_else(not_posix)?;
        if probe != PREFLIGHT_PROBE || status != Some(0) {
            return Err(not_posix());
        }
        let extra: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(PREFLIGHT_TAG)).collect();
        if !extra.is_empty() {
            return Err(PreflightError::StrayOutput {
                extra: extra.join("\n"),
            });
        }
        let fields = Fields(head);
        match (fields.get("proc"), fields.get("setsid")) {
            (Some("yes"), Some(s @ ("yes" | "no"))) => Ok(Preflight { setsid: s == "yes" }),
            (Some("no"), _) => Err(PreflightError::NoProc),
            _ => Err(not_posix()),
        }
    }
}

/// The first line of `stdout` that starts with `tag`, without the tag.
fn tagged_line<'a>(stdout: &'a str, tag: &str) -> Option<&'a str> {
    stdout.lines().find_map(|l| l.strip_prefix(tag))
}

/// `key=value` words of a line.
struct Fields<'a>(&'a str);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .split(' ')
            .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_outcomes() {
        let ok = KillReport::parse("TETHER-REMOTE-KILL v1 result=killed leader=kill swept=3\n", Some(0));
        assert_eq!(
            ok,
            Ok(KillReport::Killed {
                leader: Leader::Kill,
                swept: 3
            })
        );
        let gone = KillReport::parse("TETHER-REMOTE-KILL v1 result=killed leader=gone swept=0\n", Some(0));
        assert_eq!(
            gone,
            Ok(KillReport::Killed {
                leader: Leader::Gone,
                swept: 0
            })
        );
        for (reason, want) in [
            ("boot", Refusal::Boot),
            ("start", Refusal::Start),
            ("cookie", Refusal::Cookie),
        ] {
            let line = format!("TETHER-REMOTE-KILL v1 result=refused reason={reason}\n");
            assert_eq!(KillReport::parse(&line, Some(3)), Ok(KillReport::Refused(want)));
        }
    }

    #[test]
    fn kill_line_must_agree_with_the_exit_status() {
        let killed = "TETHER-REMOTE-KILL v1 result=killed leader=term swept=0\n";
        assert!(matches!(
            KillReport::parse(killed, Some(3)),
            Err(ReportError::Malformed { .. })
        ));
        assert!(matches!(
            KillReport::parse(killed, None),
            Err(ReportError::Malformed { .. })
        ));
        let refused = "TETHER-REMOTE-KILL v1 result=refused reason=start\n";
        assert!(matches!(
            KillReport::parse(refused, Some(0)),
            Err(ReportError::Malformed { .. })
        ));
    }

    #[test]
    fn kill_errors_and_garbage() {
        let err = KillReport::parse("TETHER-REMOTE-KILL v1 result=error reason=usage\n", Some(2));
        assert!(
            matches!(err, Err(ReportError::Script { ref reason, .. }) if reason == "usage"),
            "{err:?}"
        );
        assert!(matches!(
            KillReport::parse("", Some(127)),
            Err(ReportError::Missing { .. })
        ));
        let bad = KillReport::parse("TETHER-REMOTE-KILL v1 result=killed leader=maybe swept=1\n", Some(0));
        assert!(matches!(bad, Err(ReportError::Malformed { .. })));
    }

    fn preflight_line(proc: &str, setsid: &str, probe: &str) -> String {
        format!("TETHER-PREFLIGHT v1 proc={proc} setsid={setsid} probe={probe}\n")
    }

    #[test]
    fn preflight_ok() {
        let out = preflight_line("yes", "no", PREFLIGHT_PROBE);
        assert_eq!(Preflight::parse(&out, Some(0)), Ok(Preflight { setsid: false }));
    }

    #[test]
    fn preflight_failures() {
        let mangled = preflight_line("yes", "yes", &PREFLIGHT_PROBE.replace("\\\\", "\\"));
        assert!(matches!(
            Preflight::parse(&mangled, Some(0)),
            Err(PreflightError::NotPosix { .. })
        ));
        assert!(matches!(
            Preflight::parse("Unmatched '''.\n", Some(1)),
            Err(PreflightError::NotPosix { .. })
        ));
        let no_proc = preflight_line("no", "yes", PREFLIGHT_PROBE);
        assert_eq!(Preflight::parse(&no_proc, Some(0)), Err(PreflightError::NoProc));
        let chatty = format!("Welcome!\n{}", preflight_line("yes", "yes", PREFLIGHT_PROBE));
        assert!(matches!(
            Preflight::parse(&chatty, Some(0)),
            Err(PreflightError::StrayOutput { .. })
        ));
    }
}
