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
}

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
        }
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
}
