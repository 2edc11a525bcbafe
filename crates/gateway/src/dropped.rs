//! Messages dropped because a client did not read them as fast as a server sent them: a call's
//! stream full (256 messages, `upstream::CALL_QUEUE`) with no session stream to take the
//! message instead, or a session's stream full (1024, `session::STREAM_QUEUE`).
//!
//! Every queue is bounded so that no client can make the gateway's memory grow, and what a slow
//! client cannot take is dropped (never an answer). An operator must still see it: each drop is
//! counted (`tether_dropped_messages_total{server,where}`), and told at warn level, at most once
//! per [`WARN_EVERY`] per session with how many were dropped since the last warning, so a flood
//! of drops does not become a flood of log lines.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest a session's drops go untold while they keep happening.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Which stream was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Where {
    /// A call's stream (the POST's response stream): an interim message dropped.
    Call,
    /// The session's stream (the GET stream): closed, the message dropped.
    Session,
}

impl Where {
    /// The `where` label.
    pub fn label(self) -> &'static str {
        match self {
            Where::Call => "call",
            Where::Session => "session",
        }
    }

    /// What was full, for the warning.
    fn describe(self) -> String {
        match self {
            Where::Call => format!("a call's stream full ({} messages)", crate::upstream::CALL_QUEUE),
            Where::Session => format!("the session's stream full ({} messages)", crate::session::STREAM_QUEUE),
        }
    }
}

/// One session's drops not yet told.
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<Untold>,
}

#[derive(Debug, Default)]
struct Untold {
    /// When the last warning went out.
    told: Option<Instant>,
    /// Drops since then, by server and stream.
    counts: BTreeMap<(String, Where), u64>,
}

impl Tally {
    /// Counts a message of `server`'s dropped at `at`, and warns when it is time.
    pub fn dropped(&self, session: &str, server: &str, at: Where) {
        crate::metrics::dropped(server, at);
        if let Some(counts) = self.note(server, at, Instant::now()) {
            for ((server, at), n) in counts {
                tracing::warn!(
                    session = %session,
                    server = %server,
                    "dropped {n} message{} for a client that does not read as fast as the server writes: {} (told at most every {}s; counted in tether_dropped_messages_total)",
                    if n == 1 { "" } else { "s" },
                    at.describe(),
                    WARN_EVERY.as_secs()
                );
            }
        }
    }

    /// Counts one drop at `now`; the counts to tell, and forgets them, when the last warning is
    /// [`WARN_EVERY`] old (or there was none).
    fn note(&self, server: &str, at: Where, now: Instant) -> Option<BTreeMap<(String, Where), u64>> {
        let mut untold = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        *untold.counts.entry((server.to_string(), at)).or_default() += 1;
        let due = untold.told.is_none_or(|t| now.duration_since(t) >= WARN_EVERY);
        if !due {
            return None;
        }
        untold.told = Some(now);
        Some(std::mem::take(&mut untold.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_drop_is_told_then_at_most_one_warning_per_interval_with_the_count_since() {
        let tally = Tally::default();
        let t0 = Instant::now();
        let told = tally
            .note("fx", Where::Call, t0)
            .expect("the first drop is told at once");
        assert_eq!(told.into_iter().collect::<Vec<_>>(), [(("fx".into(), Where::Call), 1)]);
        for i in 1..=500u64 {
            let at = if i % 2 == 0 { Where::Call } else { Where::Session };
            assert!(
                tally.note("fx", at, t0 + Duration::from_millis(i)).is_none(),
                "drop {i} told early"
            );
        }
        let told = tally
            .note("other", Where::Call, t0 + WARN_EVERY)
            .expect("told again once the interval passed");
        assert_eq!(
            told.into_iter().collect::<Vec<_>>(),
            [
                (("fx".into(), Where::Call), 250),
                (("fx".into(), Where::Session), 250),
                (("other".into(), Where::Call), 1)
            ]
        );
        assert!(tally
            .note("fx", Where::Call, t0 + WARN_EVERY + Duration::from_secs(1))
            .is_none());
    }
}
