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

/// A server's question, as the client is asked it.
#[derive(Debug, Clone)]
pub struct Asked {
    /// Its key in `inputRequests` (the server's name for it, when it gives one, else the id).
    pub key: String,
    /// The id the gateway gave the server's request (the answer goes back under it).
    pub id: String,
    /// `method`, and `params` when there are any.
    pub question: Value,
}

/// A call waiting for its client's answers (dropped: the server is told it was cancelled, and
/// its session is no longer counted as parked).
pub struct Parked {
    /// The call, still in flight upstream.
    pub call: Call,
    /// The gateway's session it runs in.
    pub session: Arc<Session>,
    /// The questions asked and not yet answered.
    pub asked: Vec<Asked>,
    /// Answers the client gave that no question has used yet, by key (raw JSON).
    pub given: std::collections::HashMap<String, String>,
    /// The method of the call (for the revision's fields of its result).
    pub method: String,
    /// The URI the call reads, if it does (for an unknown resource's error).
    pub uri: Option<String>,
    /// The client's log level for the call.
    pub log_level: Option<String>,
    /// When it was parked.
    pub since: Instant,
    /// Whether its session counts it as parked.
    pub counted: bool,
}

impl Parked {
    /// Whether it waited longer than its server's `request_timeout` (or [`PATIENCE`]).
    fn expired(&self) -> bool {
        self.since.elapsed() >= self.call.timeout().min(PATIENCE) || self.session.is_ended()
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // Taken out to be picked up, or dropped: either way no longer waiting.
        if self.counted {
            self.session.set_parked(false);
        }
    }
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
        let expired: Vec<String> = calls
            .iter()
            .filter(|(_, p)| p.expired())
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            calls.remove(&k);
        }
        if calls.len() >= MAX_PARKED {
            let oldest = calls.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                calls.remove(&k);
            }
        }
        let mut parked = parked;
        parked.since = Instant::now();
        if !parked.counted {
            parked.session.set_parked(true);
            parked.counted = true;
        }
        calls.insert(state.clone(), parked);
        Some(state)
    }

    /// The call parked under `state`, taken out (none once it expired).
    pub fn take(&self, state: &str) -> Option<Parked> {
        let mut parked = self.calls.lock().ok()?.remove(state)?;
        if parked.counted {
            parked.session.set_parked(false);
            parked.counted = false;
        }
        (!parked.expired()).then_some(parked)
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
