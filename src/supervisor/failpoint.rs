//! Named points where a test can freeze a Tether process, to kill it at an exact moment.
//!
//! `TETHER_FAILPOINT=<name>` makes the process stop itself (SIGSTOP) when it reaches that
//! point; the test waits for the stopped state, then SIGKILLs it. This is how the tests prove
//! that a crash *between* two ledger writes loses nothing, which random timing alone would
//! rarely hit. Without the variable, a failpoint costs one environment lookup.

/// The environment variable naming the failpoint to stop at.
pub const VAR: &str = "TETHER_FAILPOINT";

/// Stops this process if `TETHER_FAILPOINT` names `point`.
pub fn hit(point: &str) {
    if std::env::var_os(VAR).is_some_and(|v| v == point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
}
