//! Calls waiting for a 2026-07-28 client's input.
//!
//! A server of the session-based revisions asks its client during a call (sampling,
//! elicitation, roots) and waits for the answer. A 2026-07-28 client cannot be asked: its POST
//! is answered with an `InputRequiredResult` naming the questions and an opaque `requestState`,
//! and the client sends the call again with the answers. Between the two, the server's call
//! goes on waiting, parked here under the state (128 random bits), bound to who asked (the
//! token, the endpoint, the method and name): only that client's retry of that call picks it
//! up, delivers the answers to the server and carries the rest of the call. A parked call ends
//! at the call's own deadline (the server's `request_timeout`, counted from the first POST):
//! the reaper drops it, and the server is told the request was cancelled. Each token may park
//! [`PER_TOKEN`] calls; past it, its own oldest is dropped, never another client's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::route::Call;
use crate::session::Session;

/// Most calls one token may have parked at once; past it, its oldest is dropped.
const PER_TOKEN: usize = 256;

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

/// A call waiting for its client's answers (dropped: the server is told it was cancelled).
pub struct Parked {
    /// The call, still in flight upstream.
    pub call: Call,
    /// The gateway's session it runs in.
    pub session: Arc<Session>,
    /// The questions asked and not yet answered.
    pub asked: Vec<Asked>,
    /// Answers the client gave up front that no question has used yet, by key (raw JSON);
    /// emptied when the call is parked (the retry brings what is asked).
    pub given: HashMap<String, String>,
    /// The method of the call (for the revision's fields of its result, and to bind a retry).
    pub method: String,
    /// The name or URI the call names (to bind a retry).
    pub name: Option<String>,
    /// The URI the call reads, if it does (for an unknown resource's error).
    pub uri: Option<String>,
    /// The client's log level for the call.
    pub log_level: Option<String>,
    /// When it was parked.
    pub since: Instant,
}

impl Parked {
    /// Whether its time is up (the call's deadline passed, or its session ended).
    fn expired(&self) -> bool {
        tokio::time::Instant::now() >= self.call.deadline() || self.session.is_ended()
    }

    /// Whether a retry of `method` naming `name` by the holder of `tag` is this call's.
    pub fn is_retry_of(&self, tag: u64, method: &str, name: Option<&str>) -> bool {
        self.session.token_tag == tag && self.method == method && self.name.as_deref() == name
    }
}

/// Why a retry could not pick a parked call up.
pub enum Refused {
    /// No call is parked under the state (never, used, or expired).
    Unknown,
    /// The state is another request's.
    Mismatch,
}

/// The parked calls, by state.
#[derive(Default)]
pub struct Parking {
    calls: Mutex<HashMap<String, Parked>>,
}

impl Parking {
    /// Parks a call; returns its state, or `None` when no random state could be made.
    pub fn park(&self, mut parked: Parked) -> Option<String> {
        let state = tether_supervisor::ids::random_id().ok()?;
        parked.given.clear();
        parked.since = Instant::now();
        parked.call.set_parked(true);
        let mut calls = self.calls.lock().ok()?;
        let tag = parked.session.token_tag;
        let mine: Vec<(&String, Instant)> = calls
            .iter()
            .filter(|(_, p)| p.session.token_tag == tag)
            .map(|(k, p)| (k, p.since))
            .collect();
        if mine.len() >= PER_TOKEN {
            if let Some(oldest) = mine.iter().min_by_key(|(_, t)| *t).map(|(k, _)| (*k).clone()) {
                calls.remove(&oldest);
            }
        }
        calls.insert(state.clone(), parked);
        Some(state)
    }

    /// The call parked under `state` for the retry of `method` naming `name` by the holder of
    /// `tag`, taken out.
    pub fn take(&self, state: &str, tag: u64, method: &str, name: Option<&str>) -> Result<Parked, Refused> {
        let mut calls = self.calls.lock().map_err(|_| Refused::Unknown)?;
        match calls.get(state) {
            None => return Err(Refused::Unknown),
            Some(p) if p.expired() => {
                calls.remove(state);
                return Err(Refused::Unknown);
            }
            Some(p) if !p.is_retry_of(tag, method, name) => return Err(Refused::Mismatch),
            Some(_) => {}
        }
        let parked = calls.remove(state).ok_or(Refused::Unknown)?;
        parked.call.set_parked(false);
        Ok(parked)
    }

    /// Drops every call whose time is up (the reaper's tick); how many.
    pub fn expire(&self) -> usize {
        let Ok(mut calls) = self.calls.lock() else { return 0 };
        let before = calls.len();
        calls.retain(|_, p| !p.expired());
        before - calls.len()
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
