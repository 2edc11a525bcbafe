//! One configured server's instances, tracked from spawn until their shims exit.
//!
//! Held strongly, not weakly: an instance ended by a session, a reload or its idle timeout is
//! still tearing its tree down, and a shutdown must wait for that too, as it must reach an
//! instance still starting.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, PoisonError};

use super::shared::Shared;
use crate::config::ServerConfig;
use crate::upstream::Upstream;

/// One server's instances.
pub(super) struct Slot {
    /// Its configuration.
    pub(super) config: Arc<ServerConfig>,
    /// Its shared instance: an async lock, so that concurrent first users wait for one start.
    pub(super) shared: tokio::sync::Mutex<Shared>,
    /// Every instance from its spawn until its shim exits.
    instances: Mutex<Vec<Arc<Upstream>>>,
    /// Starts that passed the caps and have not spawned yet, counted against `max_instances`.
    pub(super) starting: AtomicU32,
}

impl Slot {
    pub(super) fn new(config: ServerConfig) -> Slot {
        Slot {
            config: Arc::new(config),
            shared: tokio::sync::Mutex::new(Shared::default()),
            instances: Mutex::new(Vec::new()),
            starting: AtomicU32::new(0),
        }
    }

    /// Tracks a just-spawned instance.
    pub(super) fn track(&self, up: &Arc<Upstream>) {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(up.clone());
    }

    /// Every instance whose shim has not exited.
    pub(super) fn tracked(&self) -> Vec<Arc<Upstream>> {
        // Teardown relies on this list: a poisoned lock still gives it.
        let mut all = self.instances.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|u| !u.exited());
        all.clone()
    }

    /// Instances starting or serving (not ended).
    pub(super) fn serving(&self) -> Vec<Arc<Upstream>> {
        self.tracked().into_iter().filter(|u| !u.is_gone()).collect()
    }
}
