//! MCP log levels and `notifications/message`.
//!
//! `logging/setLevel` sets the least severe level the client wants; tools that
//! log build their notifications here so that filter is applied in one place.

use crate::plan::Step;
use crate::rpc::notification;
use crate::session::Session;
use serde_json::{json, Value};

/// The syslog severities MCP uses, least severe first (so `Ord` filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

const NAMES: [(Level, &str); 8] = [
    (Level::Debug, "debug"),
    (Level::Info, "info"),
    (Level::Notice, "notice"),
    (Level::Warning, "warning"),
    (Level::Error, "error"),
    (Level::Critical, "critical"),
    (Level::Alert, "alert"),
    (Level::Emergency, "emergency"),
];

/// Logger name in every message, so a client can tell the fixture's logs apart.
const LOGGER: &str = "tether-fixture";

impl Level {
    pub fn parse(name: &str) -> Option<Level> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(l, _)| *l)
    }

    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(l, _)| *l == self).map_or("info", |(_, n)| n)
    }
}

/// A `notifications/message` step, or `None` when the session's level filters it out.
pub fn message(session: &Session, level: Level, data: Value) -> Option<Step> {
    if session.log_level.is_some_and(|min| level < min) {
        return None;
    }
    let params = json!({"level": level.name(), "logger": LOGGER, "data": data});
    Some(Step::Notify(notification("notifications/message", params)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::tests::session;

    #[test]
    fn names_round_trip_in_severity_order() {
        let levels: Vec<Level> = NAMES.iter().map(|(l, _)| *l).collect();
        let mut sorted = levels.clone();
        sorted.sort();
        assert_eq!(levels, sorted);
        for (l, n) in NAMES {
            assert_eq!(Level::parse(n), Some(l));
            assert_eq!(l.name(), n);
        }
        assert_eq!(Level::parse("INFO"), None);
    }

    #[test]
    fn messages_below_the_level_are_dropped() {
        let mut s = session();
        let Some(Step::Notify(m)) = message(&s, Level::Debug, json!("d")) else {
            panic!("unfiltered by default");
        };
        assert_eq!(
            m,
            json!({"jsonrpc": "2.0", "method": "notifications/message",
                   "params": {"level": "debug", "logger": "tether-fixture", "data": "d"}})
        );
        s.log_level = Some(Level::Info);
        assert!(message(&s, Level::Debug, json!("d")).is_none());
        assert!(message(&s, Level::Info, json!("i")).is_some());
        assert!(message(&s, Level::Emergency, json!("e")).is_some());
    }
}
