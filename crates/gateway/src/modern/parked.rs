//! Calls waiting for a 2026-07-28 client's input.
//!
//! A server of the session-based revisions asks its client during a call (sampling,
//! elicitation, roots) and waits for the answer. A 2026-07-28 client cannot be asked: its POST
//! is answered with an `InputRequiredResult` naming the questions and an opaque `requestState`,
//! and the client sends the call again with the answers. Between the two, the server's call
//! goes on waiting, parked here under the state (128 random bits, so only the client that was
//! given it can pick the call up); the retry delivers the answers to the server and carries the
//! rest of the call. A parked call that nobody picks up ends at its own deadline (the server's
//! `request_timeout`): dropped, the server is told the request was cancelled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::route::Call;
use crate::session::Session;

/// Most calls parked at once; past it the oldest is dropped.
const MAX_PARKED: usize = 4096;
/// How long a parked call waits for its client, at most.
const PATIENCE: Duration = Duration::from_secs(600);

/// A call waiting for its client's answers.
pub struct Parked {
    /// The call, still in flight upstream.
    pub call: Call,
    /// The gateway's session it runs in.
    pub session: Arc<Session>,
    /// The questions asked and not yet answered: the id the client's answer must carry (the
    /// key in `inputRequests`), and the question (`method`, `params`).
    pub asked: Vec<(String, Value)>,
    /// The method of the call (for the revision's fields of its result).
    pub method: String,
    /// The URI the call reads, if it does (for an unknown resource's error).
    pub uri: Option<String>,
    /// The client's log level for the call.
    pub log_level: Option<String>,
    /// When it was parked.
    pub since: Instant,
}

/// The parked calls, by state.
#[derive(Default)]
pub struct Parking {
    calls: Mutex<HashMap<String, Parked>>,
}

impl Parking {
    /// Parks a call; returns its state, or `None` when no random state could be made.
    pub fn park(&self, parked: Parked) -> Option<String> {
        let state = tether_supervisor::ids::random_id().ok()?;
        let mut calls = self.calls.lock().ok()?;
        calls.retain(|_, p| p.since.elapsed() < PATIENCE && !p.session.is_ended());
        if calls.len() >= MAX_PARKED {
            let oldest = calls.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                calls.remove(&k);
            }
        }
        calls.insert(state.clone(), parked);
        Some(state)
    }

    /// The call parked under `state`, taken out.
    pub fn take(&self, state: &str) -> Option<Parked> {
        self.calls.lock().ok()?.remove(state)
    }

    /// How many calls are parked.
    pub fn len(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
