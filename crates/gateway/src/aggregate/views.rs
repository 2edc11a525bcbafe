//! What an aggregated client is told when a server's lists change: one `list_changed` per
//! kind, and only when the client's own view changed.
//!
//! A server's `notifications/{tools,prompts,resources}/list_changed` concerns the items it
//! lists, but an aggregated client sees them renamed, filtered and merged with other servers'.
//! So a change is not passed on as it is: it is queued here for each aggregated session the
//! server serves; changes that arrive within [`SETTLE`] of each other are taken together (a
//! server that announces three changes at once, or three servers changing, make one
//! notification); for each session that has listed that kind, the gateway lists again for it
//! and tells it only if what it would now be given differs from what it was last given. A
//! session that never listed has no view to change, and is not told.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{list, Listing};
use crate::gateway::Gateway;
use crate::session::Session;

/// How long after a change other changes are waited for, to be told as one.
pub const SETTLE: Duration = Duration::from_millis(50);
/// Most changes waiting; past it, a change is dropped (the flood's last ones still get told).
const QUEUE: usize = 4096;

/// A kind of list a server can announce changes of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list` and `resources/templates/list`.
    Resources,
}

impl Kind {
    /// The kind a `notifications/…/list_changed` method announces.
    pub fn of(method: &str) -> Option<Kind> {
        match method {
            "notifications/tools/list_changed" => Some(Kind::Tools),
            "notifications/prompts/list_changed" => Some(Kind::Prompts),
            "notifications/resources/list_changed" => Some(Kind::Resources),
            _ => None,
        }
    }

    fn listings(self) -> &'static [Listing] {
        match self {
            Kind::Tools => &[Listing::TOOLS],
            Kind::Prompts => &[Listing::PROMPTS],
            Kind::Resources => &[Listing::RESOURCES, Listing::TEMPLATES],
        }
    }

    fn notification(self) -> &'static str {
        match self {
            Kind::Tools => "notifications/tools/list_changed",
            Kind::Prompts => "notifications/prompts/list_changed",
            Kind::Resources => "notifications/resources/list_changed",
        }
    }
}

/// A change to look at: the session, and what changed.
pub type Change = (Weak<Session>, Kind);

/// The queue of changes, and its one reader.
pub struct Views {
    tx: mpsc::Sender<Change>,
    rx: Mutex<Option<mpsc::Receiver<Change>>>,
}

impl Default for Views {
    fn default() -> Views {
        let (tx, rx) = mpsc::channel(QUEUE);
        Views {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl Views {
    /// Where sessions queue their changes.
    pub fn sender(&self) -> mpsc::Sender<Change> {
        self.tx.clone()
    }

    /// Looks at changes until the gateway is dropped (spawned once, by `run`).
    pub async fn watch(gw: Arc<Gateway>) {
        let Some(mut rx) = gw.views.rx.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        let gw = Arc::downgrade(&gw);
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let settle = tokio::time::sleep(SETTLE);
            tokio::pin!(settle);
            loop {
                tokio::select! {
                    more = rx.recv() => match more {
                        Some(c) => batch.push(c),
                        None => break,
                    },
                    _ = &mut settle => break,
                }
            }
            let Some(gw) = gw.upgrade() else { return };
            let mut seen: HashMap<(usize, Kind), Arc<Session>> = HashMap::new();
            for (session, kind) in batch {
                if let Some(s) = session.upgrade() {
                    seen.entry((Arc::as_ptr(&s) as usize, kind)).or_insert(s);
                }
            }
            // Every session at once: one slow server costs the batch its timeout, not one per
            // session.
            let looks = seen.into_iter().map(|((_, kind), session)| {
                let gw = gw.clone();
                async move { look_again(&gw, &session, kind).await }
            });
            super::join_all(looks.collect()).await;
        }
    }
}

/// Lists `kind` again for `session`; tells it when its view changed.
async fn look_again(gw: &Gateway, session: &Arc<Session>, kind: Kind) {
    if session.is_ended() {
        return;
    }
    let before: Vec<Option<u64>> = kind.listings().iter().map(|l| session.view(l.field)).collect();
    if before.iter().all(Option::is_none) {
        tracing::debug!(session = %session.key, "{:?} changed upstream: the session never listed them, not told", kind);
        return;
    }
    let servers = gw.pool.enabled();
    for listing in kind.listings() {
        list(gw, session, &servers, "0", *listing).await;
    }
    let after: Vec<Option<u64>> = kind.listings().iter().map(|l| session.view(l.field)).collect();
    if before == after {
        tracing::debug!(session = %session.key, "{:?} changed upstream: this session's view did not, not told", kind);
        return;
    }
    tracing::debug!(session = %session.key, "{:?} changed upstream: told {}", kind, kind.notification());
    session.push(crate::jsonrpc::notification(kind.notification(), None));
}

/// A fingerprint of a listing as the client is given it.
pub fn fingerprint(items: &[serde_json::Value]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for item in items {
        item.to_string().hash(&mut h);
    }
    h.finish()
}
