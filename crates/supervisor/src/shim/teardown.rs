//! When to send what: the teardown state machine.
//!
//! A trigger starts the teardown; each kind of trigger sets two deadlines, when the polite
//! signal goes to the whole tree and when SIGKILL does. A later, more urgent trigger can only
//! bring them forward. An end of input is the MCP spec's graceful shutdown: the server saw the
//! same EOF and gets half the grace to exit by itself before it is asked with a signal. A signal
//! to the shim is forwarded as is (Ctrl-C stays SIGINT); a second one kills at once.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::shim::signals::FORWARDED_AS_IS;

/// Why the instance is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The client closed the server's stdin.
    StdinClosed,
    /// The client stopped reading the server's stdout.
    StdoutClosed,
    /// The process that started the shim exited.
    ParentExited,
    /// The owner closed the lifeline.
    LifelineClosed,
    /// The shim received this signal.
    Signal(Signal),
    /// The server exited; whatever it left behind is killed at once.
    ServerExited,
    /// The shim cannot watch any more (a failing `poll`): kill everything now rather than
    /// leave the tree unwatched.
    Failure,
}

impl Trigger {
    /// Words for logs.
    pub fn describe(self) -> String {
        match self {
            Trigger::StdinClosed => "client closed stdin".into(),
            Trigger::StdoutClosed => "client stopped reading stdout".into(),
            Trigger::ParentExited => "client process exited".into(),
            Trigger::LifelineClosed => "lifeline closed".into(),
            Trigger::Signal(s) => format!("received {s}"),
            Trigger::ServerExited => "server exited".into(),
            Trigger::Failure => "the shim can no longer watch its triggers".into(),
        }
    }
}

/// Where the teardown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing has asked the instance to end.
    Running,
    /// Asked to end: `polite` goes out at `term_at` (once), SIGKILL at `kill_at`.
    Stopping {
        /// The first trigger.
        cause: Trigger,
        /// The signal that asks politely.
        polite: Signal,
        /// When to send it.
        term_at: Instant,
        /// Whether it was sent.
        termed: bool,
        /// When to SIGKILL everything.
        kill_at: Instant,
    },
    /// SIGKILL went out; re-sent to anything still found until the tree is empty.
    Killing {
        /// The first trigger.
        cause: Trigger,
        /// When SIGKILL first went out.
        since: Instant,
    },
}

/// What the caller must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing yet.
    Wait,
    /// Send this signal to the whole tree.
    Send(Signal),
}

/// The longest grace period honoured; longer ones are cut to this.
pub const MAX_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The state machine.
#[derive(Debug)]
pub struct Teardown {
    /// The grace period between the polite signal's deadline and SIGKILL's, at most.
    grace: Duration,
    /// The current phase.
    pub phase: Phase,
    /// Stop signals received so far: the second one kills at once, whatever started the end.
    signals: u32,
}

impl Teardown {
    /// Not started yet.
    pub fn new(grace: Duration) -> Teardown {
        Teardown {
            grace: grace.min(MAX_GRACE),
            phase: Phase::Running,
            signals: 0,
        }
    }

    /// The first trigger, once started.
    pub fn cause(&self) -> Option<Trigger> {
        match self.phase {
            Phase::Running => None,
            Phase::Stopping { cause, .. } | Phase::Killing { cause, .. } => Some(cause),
        }
    }

    /// Records a trigger at `now`.
    pub fn trigger(&mut self, t: Trigger, now: Instant) {
        let (polite, term_at, kill_at) = match t {
            Trigger::ServerExited | Trigger::Failure => (Signal::SIGKILL, now, now),
            Trigger::StdinClosed => (Signal::SIGTERM, now + self.grace / 2, now + self.grace),
            Trigger::Signal(s) => {
                self.signals += 1;
                let kill_at = if self.signals >= 2 { now } else { now + self.grace };
                let polite = if FORWARDED_AS_IS.contains(&s) {
                    s
                } else {
                    Signal::SIGTERM
                };
                (polite, now, kill_at)
            }
            Trigger::StdoutClosed | Trigger::ParentExited | Trigger::LifelineClosed => {
                (Signal::SIGTERM, now, now + self.grace)
            }
        };
        self.phase = match self.phase {
            Phase::Running => Phase::Stopping {
                cause: t,
                polite,
                term_at,
                termed: false,
                kill_at,
            },
            Phase::Stopping {
                cause,
                polite: old_polite,
                term_at: old_term,
                termed,
                kill_at: old_kill,
            } => {
                // A signal that arrives after the polite one went out is still forwarded.
                let resend = termed && matches!(t, Trigger::Signal(_));
                Phase::Stopping {
                    cause,
                    polite: if termed && !resend { old_polite } else { polite },
                    term_at: if resend { term_at } else { old_term.min(term_at) },
                    termed: termed && !resend,
                    kill_at: old_kill.min(kill_at),
                }
            }
            killing @ Phase::Killing { .. } => killing,
        };
    }

    /// True once a signal went to the tree.
    pub fn signalled(&self) -> bool {
        matches!(self.phase, Phase::Stopping { termed: true, .. } | Phase::Killing { .. })
    }

    /// What to do at `now`; advances the phase.
    pub fn poll(&mut self, now: Instant) -> Action {
        match &mut self.phase {
            Phase::Running => Action::Wait,
            Phase::Stopping { cause, kill_at, .. } if now >= *kill_at => {
                self.phase = Phase::Killing {
                    cause: *cause,
                    since: now,
                };
                Action::Send(Signal::SIGKILL)
            }
            Phase::Stopping {
                polite,
                term_at,
                termed,
                ..
            } if !*termed && now >= *term_at => {
                *termed = true;
                Action::Send(*polite)
            }
            Phase::Stopping { .. } => Action::Wait,
            Phase::Killing { .. } => Action::Send(Signal::SIGKILL),
        }
    }

    /// How long the caller may sleep before [`Teardown::poll`] has something new to say.
    pub fn next_deadline(&self, now: Instant, killing_tick: Duration) -> Option<Duration> {
        match self.phase {
            Phase::Running => None,
            Phase::Stopping {
                term_at,
                termed,
                kill_at,
                ..
            } => {
                let next = if termed { kill_at } else { term_at.min(kill_at) };
                Some(next.saturating_duration_since(now))
            }
            Phase::Killing { .. } => Some(killing_tick),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(1000);

    #[test]
    fn eof_waits_half_the_grace_then_terms_then_kills() {
        let t0 = Instant::now();
        let mut t = Teardown::new(GRACE);
        t.trigger(Trigger::StdinClosed, t0);
        assert_eq!(t.poll(t0), Action::Wait);
        assert_eq!(t.poll(t0 + GRACE / 2), Action::Send(Signal::SIGTERM));
        assert_eq!(t.poll(t0 + GRACE / 2), Action::Wait);
        assert_eq!(t.poll(t0 + GRACE), Action::Send(Signal::SIGKILL));
        assert!(matches!(
            t.phase,
            Phase::Killing {
                cause: Trigger::StdinClosed,
                ..
            }
        ));
    }

    #[test]
    fn signals_are_forwarded_and_a_second_one_kills() {
        let t0 = Instant::now();
        let mut t = Teardown::new(GRACE);
        t.trigger(Trigger::Signal(Signal::SIGINT), t0);
        assert_eq!(t.poll(t0), Action::Send(Signal::SIGINT));
        t.trigger(Trigger::Signal(Signal::SIGINT), t0 + Duration::from_millis(10));
        assert_eq!(t.poll(t0 + Duration::from_millis(10)), Action::Send(Signal::SIGKILL));
    }

    #[test]
    fn server_exit_kills_leftovers_at_once() {
        let t0 = Instant::now();
        let mut t = Teardown::new(GRACE);
        t.trigger(Trigger::ServerExited, t0);
        assert_eq!(t.poll(t0), Action::Send(Signal::SIGKILL));
    }

    #[test]
    fn later_triggers_only_bring_deadlines_forward() {
        let t0 = Instant::now();
        let mut t = Teardown::new(GRACE);
        t.trigger(Trigger::StdinClosed, t0);
        t.trigger(Trigger::ParentExited, t0 + Duration::from_millis(100));
        assert_eq!(t.poll(t0 + Duration::from_millis(100)), Action::Send(Signal::SIGTERM));
        assert_eq!(t.cause(), Some(Trigger::StdinClosed));
        // The kill deadline stays the earlier one.
        assert_eq!(t.poll(t0 + GRACE), Action::Send(Signal::SIGKILL));
    }

    #[test]
    fn a_second_signal_kills_at_once_whatever_started_the_end() {
        let t0 = Instant::now();
        let mut t = Teardown::new(GRACE);
        t.trigger(Trigger::StdinClosed, t0);
        t.trigger(Trigger::Signal(Signal::SIGTERM), t0);
        assert_eq!(t.poll(t0), Action::Send(Signal::SIGTERM));
        t.trigger(Trigger::Signal(Signal::SIGTERM), t0);
        assert_eq!(t.poll(t0), Action::Send(Signal::SIGKILL));
    }

    #[test]
    fn a_signal_after_the_polite_one_is_forwarded_too() {
        let t0 = Instant::now();
        let mut t = Teardown::new(GRACE);
        t.trigger(Trigger::StdoutClosed, t0);
        assert_eq!(t.poll(t0), Action::Send(Signal::SIGTERM));
        t.trigger(Trigger::Signal(Signal::SIGINT), t0);
        assert_eq!(t.poll(t0), Action::Send(Signal::SIGINT));
    }

    #[test]
    fn other_fatal_signals_become_sigterm_and_huge_graces_are_capped() {
        let t0 = Instant::now();
        let mut t = Teardown::new(Duration::MAX);
        t.trigger(Trigger::Signal(Signal::SIGUSR1), t0);
        assert_eq!(t.poll(t0), Action::Send(Signal::SIGTERM));
        assert_eq!(t.poll(t0 + MAX_GRACE), Action::Send(Signal::SIGKILL));
    }

    #[test]
    fn deadlines_tell_how_long_to_sleep() {
        let t0 = Instant::now();
        let mut t = Teardown::new(GRACE);
        assert_eq!(t.next_deadline(t0, Duration::from_millis(5)), None);
        t.trigger(Trigger::StdoutClosed, t0);
        assert_eq!(t.next_deadline(t0, Duration::from_millis(5)), Some(Duration::ZERO));
        t.poll(t0);
        assert_eq!(t.next_deadline(t0, Duration::from_millis(5)), Some(GRACE));
    }
}
