//! Waiting for something the bench cannot be told about (a process gone from `/proc`, a port
//! that listens, an fd closed): looked at until it holds or a deadline passes, the pause between
//! looks growing from 50 µs, so that a short wait is timed closely (teardown is measured this
//! way), to at most `most`, so that a long one does not busy the two vCPUs being measured.

use std::time::{Duration, Instant};

/// True once `holds` does, false if `within` passes first.
pub fn until(within: Duration, most: Duration, mut holds: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_micros(50);
    loop {
        if holds() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(most);
    }
}
