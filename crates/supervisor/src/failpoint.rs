//! Named points where a test can freeze a Tether process, to kill it at an exact moment.
//!
//! `TETHER_FAILPOINT=<name>` makes the process stop itself (SIGSTOP) when it reaches that
//! point; the test waits for the stopped state, then SIGKILLs it. This is how the tests prove
//! that a crash *between* two ledger writes loses nothing, which random timing alone would
//! rarely hit.
//!
//! Only builds with the `failpoints` feature honour the variable (the test builds do, through
//! the binary's dev-dependency); in a release build [`hit`] is empty, so nobody who can set an
//! environment variable can freeze a production shim.

/// The environment variable naming the failpoint to stop at.
pub const VAR: &str = "TETHER_FAILPOINT";

/// True when this build honours [`VAR`].
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// Stops this process if failpoints are built in and `TETHER_FAILPOINT` names `point`.
#[inline]
pub fn hit(point: &str) {
    if ENABLED && std::env::var_os(VAR).is_some_and(|v| v == point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
}
