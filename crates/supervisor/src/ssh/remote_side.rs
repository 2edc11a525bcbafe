//! What the ledger keeps of an SSH instance (its `remote` column): enough for a later process
//! (the watchdog, `tether reap`, a gateway starting up) to reach the host and kill the server by
//! identity, and whether that is still needed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::identity_line::RemoteIdentity;
use super::target::SshTarget;

/// One SSH instance's remote side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSide {
    /// How to reach the host.
    pub target: SshTarget,
    /// The wrapper's cookie (`TETHER_REMOTE_COOKIE`).
    pub cookie: String,
    /// The grace between SIGTERM and SIGKILL, in milliseconds.
    pub grace_ms: u64,
    /// The server's identity on the host, once its wrapper reported it.
    pub identity: Option<RemoteIdentity>,
    /// The remote side is known to be over: the wrapper exited after its own clean-up, a
    /// remote kill succeeded or refused (the process is no longer ours), or ssh never got in.
    pub settled: bool,
    /// How it was settled, or why the last attempt failed.
    pub outcome: Option<String>,
    /// Remote kills that could not reach the host (absent in rows written before this field).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// When the first of them failed (ms since the epoch): the remote kills expire
    /// [`remote_kill_expiry`] after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_ms: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How long remote kills are retried after the first that could not reach the host: 24 hours,
/// or `TETHER_REMOTE_KILL_EXPIRY` (`90s`, `3d`, …). A host down that long was rebooted or is
/// gone, and a partitioned one has long since seen its connection drop, which ends the server
/// by its wrapper's watch; retrying forever would make every sweep wait on it.
pub fn remote_kill_expiry() -> Duration {
    std::env::var(EXPIRY_VAR)
        .ok()
        .and_then(|v| humantime::parse_duration(v.trim()).ok())
        .unwrap_or(DEFAULT_EXPIRY)
}

/// The variable that sets [`remote_kill_expiry`].
pub const EXPIRY_VAR: &str = "TETHER_REMOTE_KILL_EXPIRY";

const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

impl RemoteSide {
    /// A fresh record, before ssh starts.
    pub fn new(target: SshTarget, cookie: &str, grace: Duration) -> RemoteSide {
        RemoteSide {
            target,
            cookie: cookie.to_string(),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            identity: None,
            settled: false,
            outcome: None,
            failures: 0,
            first_failure_ms: None,
        }
    }

    /// Counts a remote kill that could not reach the host, at `now_ms`. Past `expiry` since the
    /// first such failure, the side is given up (settled) and the words saying so, with how to
    /// check the host by hand, are returned.
    pub fn failed_attempt(&mut self, now_ms: i64, expiry: Duration) -> Option<String> {
        self.failures = self.failures.saturating_add(1);
        let first = *self.first_failure_ms.get_or_insert(now_ms);
        let trying = Duration::from_millis(u64::try_from(now_ms.saturating_sub(first)).unwrap_or(0));
        if trying < expiry {
            return None;
        }
        let why = format!(
            "gave up after {} failed remote kill(s) over {} (the expiry is {}, {EXPIRY_VAR}); the last: {}. If {} comes back, check it by hand: ssh {} pgrep -af TETHER_REMOTE_COOKIE={}",
            self.failures,
            humantime::format_duration(Duration::from_secs(trying.as_secs())),
            humantime::format_duration(expiry),
            self.outcome.as_deref().unwrap_or("unknown"),
            self.target.destination(),
            self.target.destination(),
            self.cookie,
        );
        self.settled = true;
        self.outcome = Some(why.clone());
        Some(why)
    }

    /// Records how an attempt ended; a side once settled stays settled.
    pub fn note(&mut self, settled: bool, outcome: String) {
        self.settled |= settled;
        self.outcome = Some(outcome);
    }

    /// The grace as a duration.
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }

    /// As stored in the ledger.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Read back from the ledger; `None` for a row written by something else.
    pub fn from_json(value: &serde_json::Value) -> Option<RemoteSide> {
        serde_json::from_value(value.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let mut r = RemoteSide::new(
            SshTarget::parse("u@h:2").unwrap(),
            "abcdef0123456789",
            Duration::from_secs(2),
        );
        r.identity = Some(RemoteIdentity {
            pid: 5,
            pgid: 5,
            start_ticks: 77,
            boot_id: "b".into(),
        });
        assert_eq!(RemoteSide::from_json(&r.to_json()), Some(r));
        assert_eq!(RemoteSide::from_json(&serde_json::json!({"x": 1})), None);
    }

    #[test]
    fn remote_kills_expire_after_the_first_failure_plus_the_expiry() {
        let mut r = RemoteSide::new(SshTarget::parse("u@h:2").unwrap(), "c0ffee", Duration::from_secs(2));
        r.note(false, "ssh: connect to host h port 2: Connection refused".into());
        let hour = Duration::from_secs(3600);
        assert_eq!(r.failed_attempt(1_000, hour), None);
        assert_eq!(r.failed_attempt(1_000 + 3_599_000, hour), None);
        assert!(!r.settled);
        let why = r.failed_attempt(1_000 + 3_600_000, hour).expect("expired");
        assert!(r.settled, "{r:?}");
        assert!(why.contains("gave up after 3 failed remote kill(s) over 1h"), "{why}");
        assert!(why.contains("Connection refused"), "{why}");
        assert!(why.contains("ssh u@h:2 pgrep -af TETHER_REMOTE_COOKIE=c0ffee"), "{why}");
        // Rows written before the fields existed read back with none.
        let mut old = r.to_json();
        old.as_object_mut().unwrap().remove("failures");
        old.as_object_mut().unwrap().remove("first_failure_ms");
        assert_eq!(RemoteSide::from_json(&old).map(|o| o.failures), Some(0));
    }
}
