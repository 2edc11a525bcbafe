//! A server's shared instance: started on first use, restarted after a death with a backoff.
//!
//! The first restart is immediate; each further failure in a row doubles the wait from 1 s up
//! to 30 s; an instance that lived a minute, or that the gateway ended itself (idle timeout),
//! resets the count. A request during a backoff is answered at once, with the time of the next
//! attempt: nothing ever hangs on a server that keeps failing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::AcquireError;
use crate::upstream::{State, Upstream};

/// Backoff after the first failed restart.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest backoff between restarts.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An instance that lived this long resets the backoff.
const HEALTHY: Duration = Duration::from_secs(60);

/// The shared instance and its restart history.
#[derive(Default)]
pub(super) struct Shared {
    /// The instance, while it lives.
    current: Option<Arc<Upstream>>,
    /// When it started.
    started: Option<Instant>,
    /// Failed starts (or early deaths) in a row.
    failures: u32,
    /// Not before then.
    next_try: Option<Instant>,
    /// Why the last one failed.
    last_error: String,
}

impl Shared {
    /// The instance, if it serves.
    pub(super) fn current(&self) -> Option<Arc<Upstream>> {
        self.current.as_ref().filter(|u| !u.is_gone()).cloned()
    }

    /// Whether a start may be tried now (after noting a dead instance); the error says when.
    pub(super) fn may_start(&mut self, server: &str) -> Result<(), AcquireError> {
        if let Some(dead) = self.current.take() {
            let lived = self.started.map_or(Duration::ZERO, |t| t.elapsed());
            if lived >= HEALTHY || dead.was_ended() {
                self.failures = 0;
            } else {
                self.failures += 1;
                self.last_error = match dead.state() {
                    State::Gone(why) => why.to_string(),
                    _ => "it stopped".into(),
                };
            }
            self.next_try = (self.failures > 1).then(|| Instant::now() + backoff(self.failures - 1));
        }
        match self.next_try.filter(|at| *at > Instant::now()) {
            Some(at) => Err(AcquireError::Backoff {
                server: server.to_string(),
                failures: self.failures,
                last: self.last_error.clone(),
                retry_in: at.saturating_duration_since(Instant::now()),
            }),
            None => Ok(()),
        }
    }

    /// Notes a start's outcome.
    pub(super) fn started(&mut self, outcome: &Result<Arc<Upstream>, AcquireError>) {
        match outcome {
            Ok(up) => {
                self.current = Some(up.clone());
                self.started = Some(Instant::now());
                self.next_try = None;
            }
            Err(e) => {
                self.failures += 1;
                self.last_error = e.to_string();
                self.next_try = Some(Instant::now() + backoff(self.failures));
            }
        }
    }
}

fn backoff(failures: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn failing_starts_back_off_and_say_when() {
        let mut s = Shared::default();
        assert!(s.may_start("x").is_ok());
        s.started(&Err(AcquireError::ShuttingDown));
        match s.may_start("x") {
            Err(AcquireError::Backoff {
                failures: 1, retry_in, ..
            }) => assert!(retry_in <= FIRST_BACKOFF),
            other => panic!("{other:?}"),
        }
    }
}
