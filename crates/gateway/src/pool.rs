//! Instances by lifetime: which instance serves a request, started when first needed.
//!
//! - `shared`: one instance per server, started on first use; when it dies, the next use starts
//!   another after a backoff (none the first time, then 1 s doubling to 30 s, forgotten once an
//!   instance has lived a minute; a request during a backoff is answered at once with an error
//!   saying when the next attempt is); ended after `idle_timeout` without calls, if one is set.
//! - `session`: one instance per client session, kept by the session, ended with it, or after
//!   `idle_timeout` without a call from it.
//! - `request`: one instance per request, ended when its answer is in.
//!
//! Caps are checked before a start: `max_instances` per server (starts in progress count) and
//! the gateway's `max_processes` (over every instance's processes, counted each reaper tick).
//! Every instance ever started is tracked here (weakly), so a reload, a shutdown or the idle
//! reaper can reach each one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tether_supervisor::launch::Scope;

use crate::config::{Lifetime, ServerConfig};
use crate::session::Session;
use crate::upstream::{self, Owner, StartOptions, Upstream};

/// Backoff after the first failed restart of a shared instance.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest backoff between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An instance that lived this long resets the backoff.
const HEALTHY: Duration = Duration::from_secs(60);

/// Why no instance could serve a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcquireError {
    /// No such server (or it was removed by a reload).
    #[error("no server named {0:?} is configured")]
    Unknown(String),
    /// It is configured but disabled.
    #[error("server {0:?} is disabled (enabled = false)")]
    Disabled(String),
    /// A cap refused a new instance.
    #[error("{0}")]
    Cap(String),
    /// It could not be started.
    #[error(transparent)]
    Start(#[from] upstream::StartError),
    /// A shared instance keeps failing: waiting out its backoff.
    #[error("server {server:?} failed to start {failures} time(s) in a row (last: {last}); next attempt in {}", humantime::format_duration(*.retry_in))]
    Backoff {
        server: String,
        failures: u32,
        last: String,
        retry_in: Duration,
    },
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

/// An instance serving one request; a `request` instance ends when the lease is dropped.
pub struct Lease {
    /// The instance.
    pub upstream: Arc<Upstream>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.upstream.lifetime() == Lifetime::Request {
            self.upstream.end("its request is done");
        }
    }
}

/// A shared instance and its restart history.
#[derive(Default)]
struct Shared {
    /// The instance, while it lives.
    current: Option<Arc<Upstream>>,
    /// When it started.
    started: Option<Instant>,
    /// Failed starts (or early deaths) in a row.
    failures: u32,
    /// Not before then.
    next_try: Option<Instant>,
    /// Why the last one failed.
    last_error: String,
}

/// One configured server's instances.
struct Slot {
    /// Its configuration.
    config: Arc<ServerConfig>,
    /// Its shared instance: an async lock, so that concurrent first users wait for one start.
    shared: tokio::sync::Mutex<Shared>,
    /// Every instance started (weakly), for caps, reloads and shutdown.
    instances: Mutex<Vec<Weak<Upstream>>>,
    /// Starts in progress, counted against `max_instances`.
    starting: AtomicU32,
}

impl Slot {
    fn new(config: ServerConfig) -> Slot {
        Slot {
            config: Arc::new(config),
            shared: tokio::sync::Mutex::new(Shared::default()),
            instances: Mutex::new(Vec::new()),
            starting: AtomicU32::new(0),
        }
    }

    fn live(&self) -> Vec<Arc<Upstream>> {
        let Ok(mut all) = self.instances.lock() else {
            return Vec::new();
        };
        all.retain(|w| w.upgrade().is_some_and(|u| !u.is_gone()));
        all.iter().filter_map(Weak::upgrade).collect()
    }
}

/// Every server's instances.
pub struct Pool {
    /// How instances are started.
    opts: StartOptions,
    /// The servers, by name.
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    /// The gateway-wide process cap.
    max_processes: Mutex<Option<u32>>,
    /// Processes alive in every instance, as last counted.
    processes: AtomicUsize,
    /// Set at shutdown: no new instance starts.
    closed: std::sync::atomic::AtomicBool,
}

impl Pool {
    /// A pool for `servers`.
    pub fn new(opts: StartOptions, servers: &BTreeMap<String, ServerConfig>, max_processes: Option<u32>) -> Pool {
        Pool {
            opts,
            slots: Mutex::new(
                servers
                    .iter()
                    .map(|(n, c)| (n.clone(), Arc::new(Slot::new(c.clone()))))
                    .collect(),
            ),
            max_processes: Mutex::new(max_processes),
            processes: AtomicUsize::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The configuration of `server`, if configured.
    pub fn config(&self, server: &str) -> Option<Arc<ServerConfig>> {
        self.slot(server).map(|s| s.config.clone())
    }

    /// The names of the enabled servers.
    pub fn enabled(&self) -> Vec<String> {
        self.slots
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(_, s)| s.config.enabled)
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn slot(&self, server: &str) -> Option<Arc<Slot>> {
        self.slots.lock().ok()?.get(server).cloned()
    }

    /// The instance that serves `session`'s next request to `server`, started if needed.
    pub async fn acquire(&self, server: &str, session: &Arc<Session>) -> Result<Lease, AcquireError> {
        let slot = self
            .slot(server)
            .ok_or_else(|| AcquireError::Unknown(server.to_string()))?;
        if !slot.config.enabled {
            return Err(AcquireError::Disabled(server.to_string()));
        }
        let upstream = match slot.config.lifetime {
            Lifetime::Shared => {
                let up = self.shared(&slot).await?;
                up.attach(session);
                up
            }
            Lifetime::Session => match session.instance(server) {
                Some(up) => up,
                None => {
                    let _one_at_a_time = session.start_lock.lock().await;
                    match session.instance(server) {
                        Some(up) => up,
                        None => {
                            let owner = Owner::Session(Arc::downgrade(session));
                            let up = self
                                .start(&slot, owner, Scope::Session(session.key.clone()), Some(&session.client))
                                .await?;
                            if session.is_ended() {
                                up.end("its session ended while it started");
                                return Err(AcquireError::Start(upstream::StartError {
                                    server: server.to_string(),
                                    why: "the session ended while the instance started".into(),
                                }));
                            }
                            session.keep_instance(up.clone());
                            up
                        }
                    }
                }
            },
            Lifetime::Request => {
                self.start(&slot, Owner::Request, Scope::Request, Some(&session.client))
                    .await?
            }
        };
        Ok(Lease { upstream })
    }

    /// The shared instance of `slot`, started (or restarted) if needed.
    async fn shared(&self, slot: &Arc<Slot>) -> Result<Arc<Upstream>, AcquireError> {
        let mut shared = slot.shared.lock().await;
        if let Some(up) = shared.current.as_ref().filter(|u| !u.is_gone()) {
            return Ok(up.clone());
        }
        if let Some(dead) = shared.current.take() {
            // It died (or was ended): count a death soon after its start as a failure.
            let lived = shared.started.map_or(Duration::ZERO, |t| t.elapsed());
            if lived >= HEALTHY || dead.was_ended() {
                shared.failures = 0;
            } else {
                shared.failures += 1;
                shared.last_error = match dead.state() {
                    upstream::State::Gone(why) => why.to_string(),
                    _ => "it stopped".into(),
                };
            }
            shared.next_try = (shared.failures > 1).then(|| Instant::now() + backoff(shared.failures - 1));
        }
        if let Some(at) = shared.next_try.filter(|at| *at > Instant::now()) {
            // Answered at once, naming when the next attempt will be: a request (or a listing
            // across servers) never hangs on a server that keeps failing.
            return Err(AcquireError::Backoff {
                server: slot.config.name.clone(),
                failures: shared.failures,
                last: shared.last_error.clone(),
                retry_in: at.saturating_duration_since(Instant::now()),
            });
        }
        match self.start(slot, Owner::Shared, Scope::Shared, None).await {
            Ok(up) => {
                shared.current = Some(up.clone());
                shared.started = Some(Instant::now());
                shared.next_try = None;
                Ok(up)
            }
            Err(e) => {
                shared.failures += 1;
                shared.last_error = e.to_string();
                shared.next_try = Some(Instant::now() + backoff(shared.failures));
                Err(e)
            }
        }
    }

    /// Starts an instance of `slot` after checking the caps.
    async fn start(
        &self,
        slot: &Arc<Slot>,
        owner: Owner,
        scope: Scope,
        client: Option<&crate::protocol::ClientInit>,
    ) -> Result<Arc<Upstream>, AcquireError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AcquireError::ShuttingDown);
        }
        let name = &slot.config.name;
        let starting = slot.starting.fetch_add(1, Ordering::AcqRel) + 1;
        let _release = Release(&slot.starting);
        if let Some(max) = slot.config.max_instances {
            let live = u32::try_from(slot.live().len()).unwrap_or(u32::MAX);
            if live.saturating_add(starting) > max {
                return Err(AcquireError::Cap(format!(
                    "server {name:?}: max_instances ({max}) reached: {live} running, {} starting",
                    starting - 1
                )));
            }
        }
        let max_processes = self.max_processes.lock().ok().and_then(|m| *m);
        if let Some(max) = max_processes {
            let alive = self.processes.load(Ordering::Acquire);
            if alive >= max as usize {
                return Err(AcquireError::Cap(format!(
                    "server {name:?}: the gateway's max_processes ({max}) is reached ({alive} processes alive)"
                )));
            }
        }
        let up = upstream::start(slot.config.clone(), owner, scope, client, &self.opts).await?;
        if let Ok(mut all) = slot.instances.lock() {
            all.push(Arc::downgrade(&up));
        }
        if self.closed.load(Ordering::Acquire) {
            up.end("the gateway is shutting down");
            return Err(AcquireError::ShuttingDown);
        }
        Ok(up)
    }

    /// Every live instance.
    pub fn live(&self) -> Vec<Arc<Upstream>> {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        slots.iter().flat_map(|s| s.live()).collect()
    }

    /// Ends idle instances: shared and session instances with no call for their server's
    /// `idle_timeout`. Returns those ended.
    pub fn end_idle(&self) -> Vec<Arc<Upstream>> {
        let mut ended = Vec::new();
        for up in self.live() {
            let Some(limit) = up.server.idle_timeout else { continue };
            if up.lifetime() != Lifetime::Request && up.idle_for() >= limit && up.in_flight() == 0 {
                up.end(&format!(
                    "no call for its idle_timeout ({})",
                    humantime::format_duration(limit)
                ));
                ended.push(up);
            }
        }
        ended
    }

    /// Counts the processes of every live instance, for the `max_processes` cap.
    pub fn count_processes(&self) -> usize {
        let n = self
            .live()
            .iter()
            .filter_map(|u| u.pid)
            .map(|pid| tether_supervisor::inventory::tree_size(pid as i32))
            .sum();
        self.processes.store(n, Ordering::Release);
        n
    }

    /// Applies a new set of servers: removed and changed servers' instances are ended (and
    /// returned), unchanged ones and their instances are kept.
    pub fn reconfigure(
        &self,
        servers: &BTreeMap<String, ServerConfig>,
        max_processes: Option<u32>,
    ) -> Vec<Arc<Upstream>> {
        if let Ok(mut m) = self.max_processes.lock() {
            *m = max_processes;
        }
        let Ok(mut slots) = self.slots.lock() else {
            return Vec::new();
        };
        let mut ended = Vec::new();
        let names: Vec<String> = slots.keys().cloned().collect();
        for name in names {
            let (keep, why) = match servers.get(&name) {
                None => (false, "its server was removed by a reload"),
                Some(new) if *new != *slots[&name].config => (false, "its server's configuration changed in a reload"),
                Some(_) => (true, ""),
            };
            if !keep {
                if let Some(slot) = slots.remove(&name) {
                    for up in slot.live() {
                        up.end(why);
                        ended.push(up);
                    }
                }
            }
        }
        for (name, config) in servers {
            slots
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Slot::new(config.clone())));
        }
        ended
    }

    /// Refuses new instances and ends every live one; returns them, to wait for.
    pub fn close(&self) -> Vec<Arc<Upstream>> {
        self.closed.store(true, Ordering::Release);
        let all = self.live();
        for up in &all {
            up.end("the gateway is shutting down");
        }
        all
    }
}

/// Releases a start's place in the count when the start is over, however it ends.
struct Release<'a>(&'a AtomicU32);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn backoff(failures: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
