//! The registry of client sessions: minting ids, finding a session by id, and ending the idle.
//!
//! A session id is 128 random bits as 32 hex digits: unguessable, so knowing one is the only
//! way to use a session (besides the bearer token that opened it, when one is set).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::protocol::ClientInit;
use crate::session::{Endpoint, Mode, Session};

/// Every live session.
#[derive(Default)]
pub struct Sessions {
    /// By id.
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// Creates a session with a fresh id.
    pub fn create(
        &self,
        endpoint: Endpoint,
        mode: Mode,
        token_tag: u64,
        client: ClientInit,
        version: &'static str,
    ) -> std::io::Result<Arc<Session>> {
        let id = tether_supervisor::ids::random_id()?;
        let key = tether_supervisor::ids::random_id()?[..16].to_string();
        let session = Arc::new(Session::new(
            id.clone(),
            key,
            endpoint,
            mode,
            token_tag,
            client,
            version,
        ));
        if let Ok(mut m) = self.map.lock() {
            m.insert(id, session.clone());
        }
        Ok(session)
    }

    /// The session with this id, if live.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map.lock().ok()?.get(id).cloned()
    }

    /// Removes the session with this id.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.map.lock().ok()?.remove(id)
    }

    /// Removes and returns the sessions idle for `limit` or longer.
    pub fn take_idle(&self, limit: Duration) -> Vec<Arc<Session>> {
        self.take_matching(|s| s.idle_for() >= limit)
    }

    /// Removes and returns the sessions `pick` chooses.
    pub fn take_matching(&self, pick: impl Fn(&Session) -> bool) -> Vec<Arc<Session>> {
        let Ok(mut m) = self.map.lock() else { return Vec::new() };
        m.extract_if(|_, s| pick(s)).map(|(_, s)| s).collect()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes and returns every session.
    pub fn take_all(&self) -> Vec<Arc<Session>> {
        self.map
            .lock()
            .map(|mut m| m.drain().map(|(_, s)| s).collect())
            .unwrap_or_default()
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
