//! The last instance teardowns, for the admin API (`GET /v1/teardowns`): which instance of
//! which server, why it was ended, how its shim exited, how long the teardown took (from the end
//! asked for to the shim's exit, the whole tree gone) and how long it had lived. A bounded ring:
//! an operator asks "what ended, and why" about the last few minutes, not the gateway's life
//! (the ledger keeps that).

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock, PoisonError};

/// How many are kept.
pub const KEPT: usize = 100;

/// One instance's end.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Teardown {
    /// Its id, short.
    pub instance: String,
    pub server: String,
    /// Why it was ended, when something ended it (a server that exited by itself says so).
    pub reason: Option<String>,
    /// The kind of end (the metrics' `reason` label: `client`, `idle`, `server_exited`, …).
    pub cause: &'static str,
    /// Whether its server outlived its grace and was SIGKILLed.
    pub escalated: bool,
    /// How its shim exited.
    pub status: String,
    /// From its end asked for to its shim's exit.
    pub teardown_ms: Option<u64>,
    /// From its start to its shim's exit.
    pub lived_ms: u64,
    /// When (RFC 3339, UTC).
    pub ended_at: String,
}

fn ring() -> &'static Mutex<VecDeque<Teardown>> {
    static RING: OnceLock<Mutex<VecDeque<Teardown>>> = OnceLock::new();
    RING.get_or_init(|| Mutex::new(VecDeque::with_capacity(KEPT)))
}

/// Keeps `t`, dropping the oldest beyond [`KEPT`].
pub fn record(t: Teardown) {
    let mut ring = ring().lock().unwrap_or_else(PoisonError::into_inner);
    if ring.len() == KEPT {
        ring.pop_front();
    }
    ring.push_back(t);
}

/// The teardowns kept, newest first.
pub fn recent() -> Vec<Teardown> {
    let ring = ring().lock().unwrap_or_else(PoisonError::into_inner);
    ring.iter().rev().cloned().collect()
}
