//! Instances by lifetime: which instance serves a request, started when first needed.
//!
//! - `shared`: one instance per server, started on first use, restarted with a backoff
//!   ([`shared`]); ended after `idle_timeout` without calls, if one is set.
//! - `session`: one instance per client session, kept by the session from its spawn (so a
//!   session that ends while its instance starts ends the instance), ended with the session, or
//!   after `idle_timeout` without a call from it.
//! - `request`: one instance per request, ended when its answer is in.
//!
//! Caps are checked before a start: `max_instances` per server (starts in progress count) and
//! the gateway's `max_processes` (over every instance's processes, counted each reaper tick,
//! each start since counting three).
//! Every instance is tracked from its spawn until its shim exits ([`slot`]), so a shutdown, a
//! reload or the idle reaper reaches each one, starting or not, and a shutdown waits for every
//! tree to be gone. A start whose requester goes away ends its instance; one that completes after
//! a reload replaced its server's configuration ends it too.

mod shared;
mod slot;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_supervisor::launch::Scope;

use crate::cause::Cause;
use crate::config::{Lifetime, ServerConfig};
use crate::protocol::ClientInit;
use crate::session::Session;
use crate::upstream::{self, Owner, StartOptions, Upstream};
use slot::Slot;

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
    /// The session ended before its instance could start.
    #[error("server {0:?}: the session ended")]
    SessionEnded(String),
    /// A 2026-07-28 request for a `session` server did not name its session.
    #[error("server {server:?} has lifetime = \"session\": a 2026-07-28 client names the session its instance belongs to with the {header} header (a value of its choosing, sent with every request)")]
    Unnamed { server: String, header: String },
    /// A reload changed or removed the server while its instance started.
    #[error("server {0:?} was changed or removed by a reload while its instance started")]
    Reloaded(String),
}

/// An instance serving one request; a `request` instance ends when the lease is dropped.
pub struct Lease {
    /// The instance.
    pub upstream: Arc<Upstream>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.upstream.lifetime() == Lifetime::Request {
            self.upstream.end(Cause::RequestDone, "its request is done");
        }
    }
}

/// What a start adds to the process count until the next count: shim, watchdog, server.
const PROCESSES_PER_START: usize = 3;

/// Every server's instances.
pub struct Pool {
    /// How instances are started.
    opts: StartOptions,
    /// The servers, by name.
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    /// The gateway-wide process cap.
    max_processes: Mutex<Option<u32>>,
    /// Processes alive in every instance, as last counted, plus [`PROCESSES_PER_START`] for
    /// each start since.
    processes: AtomicUsize,
    /// Set at shutdown: no new instance starts.
    closed: AtomicBool,
    /// Instances of servers a reload removed or changed, until their shims exit.
    retired: Mutex<Vec<Arc<Upstream>>>,
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
            closed: AtomicBool::new(false),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// The configuration of `server`, if configured.
    pub fn config(&self, server: &str) -> Option<Arc<ServerConfig>> {
        self.slot(server).map(|s| s.config.clone())
    }

    /// The names of the enabled servers.
    pub fn enabled(&self) -> Vec<String> {
        self.all_slots()
            .iter()
            .filter(|s| s.config.enabled)
            .map(|s| s.config.name.clone())
            .collect()
    }

    fn slot(&self, server: &str) -> Option<Arc<Slot>> {
        self.slots.lock().ok()?.get(server).cloned()
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        self.slots
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The instance that serves `session`'s next request to `server`, started if needed.
    ///
    /// A reload may replace the server's configuration while this request waits for another
    /// start of it: the request is then served by the configuration in force, looked up again
    /// (once), never by the replaced one.
    pub async fn acquire(&self, server: &str, session: &Arc<Session>) -> Result<Lease, AcquireError> {
        match self.acquire_from_config(server, session).await {
            Err(AcquireError::Reloaded(_)) => self.acquire_from_config(server, session).await,
            other => other,
        }
    }

    async fn acquire_from_config(&self, server: &str, session: &Arc<Session>) -> Result<Lease, AcquireError> {
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
            Lifetime::Session if session.one_request().is_some() => {
                return Err(AcquireError::Unnamed {
                    server: server.to_string(),
                    header: session.one_request().unwrap_or_default().to_string(),
                })
            }
            Lifetime::Session => match session.instance(server) {
                Some(up) => up,
                None => {
                    let _one_at_a_time = match session.start_lock.try_lock() {
                        Ok(held) => held,
                        Err(_) => {
                            tracing::debug!(session = %session.key, server, "waiting for the session's other start of the server");
                            session.start_lock.lock().await
                        }
                    };
                    match session.instance(server) {
                        Some(up) => up,
                        None => {
                            if session.is_ended() {
                                return Err(AcquireError::SessionEnded(server.to_string()));
                            }
                            let owner = Owner::Session(Arc::downgrade(session));
                            let scope = Scope::Session(session.key.clone());
                            // Kept by the session from its spawn, so the session's end reaches it.
                            let keep = |up: &Arc<Upstream>| session.keep_instance(up.clone());
                            self.start(&slot, owner, scope, Some(&session.client), keep).await?
                        }
                    }
                }
            },
            Lifetime::Request => {
                self.start(&slot, Owner::Request, Scope::Request, Some(&session.client), |_| {})
                    .await?
            }
        };
        Ok(Lease { upstream })
    }

    /// The shared instance of `slot`, started (or restarted) if needed.
    async fn shared(&self, slot: &Arc<Slot>) -> Result<Arc<Upstream>, AcquireError> {
        let mut shared = slot.shared.lock().await;
        if let Some(up) = shared.current() {
            return Ok(up);
        }
        shared.may_start(&slot.config.name)?;
        let outcome = self.start(slot, Owner::Shared, Scope::Shared, None, |_| {}).await;
        shared.started(&outcome);
        outcome
    }

    /// Starts an instance of `slot` after checking the caps; `on_spawn` sees it as soon as it
    /// exists, before its handshake.
    async fn start(
        &self,
        slot: &Arc<Slot>,
        owner: Owner,
        scope: Scope,
        client: Option<&ClientInit>,
        on_spawn: impl FnOnce(&Arc<Upstream>),
    ) -> Result<Arc<Upstream>, AcquireError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AcquireError::ShuttingDown);
        }
        // Checked with no await until the instance is tracked: a reload after this point finds
        // it in the slot it replaces, and ends it.
        if !self.is_current(slot) {
            return Err(AcquireError::Reloaded(slot.config.name.clone()));
        }
        let reserved = Reserve::new(&slot.starting);
        self.check_caps(slot, reserved.count)?;
        let up = upstream::spawn(slot.config.clone(), owner, scope, &self.opts).inspect_err(|e| {
            crate::metrics::upstream_error(&e.server, "start");
        })?;
        slot.track(&up);
        // Until the next count sees it: its shim, its watchdog and its server at least, so a
        // burst of starts between two counts cannot all pass the cap.
        self.processes.fetch_add(PROCESSES_PER_START, Ordering::AcqRel);
        drop(reserved);
        on_spawn(&up);
        // Whoever asked may go away during the handshake (a client disconnecting): then the
        // instance ends instead of starting for nobody.
        let abandoned = EndUnlessDone(Some(&up));
        up.initialize(client).await?;
        abandoned.done();
        if self.closed.load(Ordering::Acquire) {
            up.end(Cause::Shutdown, "the gateway is shutting down");
            return Err(AcquireError::ShuttingDown);
        }
        if !self.is_current(slot) {
            up.end(
                Cause::Reload,
                "its server was changed or removed by a reload while it started",
            );
            return Err(AcquireError::Reloaded(slot.config.name.clone()));
        }
        Ok(up)
    }

    /// Refuses a start past `max_instances` (with `starting` starts in progress, this one
    /// included) or the gateway's `max_processes`.
    fn check_caps(&self, slot: &Slot, starting: u32) -> Result<(), AcquireError> {
        let name = &slot.config.name;
        if let Some(max) = slot.config.max_instances {
            let live = u32::try_from(slot.serving().len()).unwrap_or(u32::MAX);
            if live.saturating_add(starting) > max {
                crate::metrics::cap_hit("max_instances");
                return Err(AcquireError::Cap(format!(
                    "server {name:?}: max_instances ({max}) reached: {live} running, {} starting",
                    starting - 1
                )));
            }
        }
        if let Some(max) = self.max_processes.lock().ok().and_then(|m| *m) {
            let alive = self.processes.load(Ordering::Acquire);
            if alive >= max as usize {
                crate::metrics::cap_hit("max_processes");
                return Err(AcquireError::Cap(format!(
                    "server {name:?}: the gateway's max_processes ({max}) is reached ({alive} processes alive)"
                )));
            }
        }
        Ok(())
    }

    /// Whether `slot` is still the configuration in force for its server.
    fn is_current(&self, slot: &Arc<Slot>) -> bool {
        self.slots
            .lock()
            .is_ok_and(|s| s.get(&slot.config.name).is_some_and(|now| Arc::ptr_eq(now, slot)))
    }

    /// Every instance ready to serve.
    pub fn live(&self) -> Vec<Arc<Upstream>> {
        self.all_slots()
            .iter()
            .flat_map(|s| s.serving())
            .filter(|u| matches!(u.state(), upstream::State::Ready))
            .collect()
    }

    /// Every instance whose shim has not exited, those of servers a reload removed or changed
    /// included.
    pub fn tracked(&self) -> Vec<Arc<Upstream>> {
        let mut all: Vec<Arc<Upstream>> = self.all_slots().iter().flat_map(|s| s.tracked()).collect();
        if let Ok(mut retired) = self.retired.lock() {
            retired.retain(|u| !u.exited());
            all.extend(retired.iter().cloned());
        }
        all
    }

    /// How instances are started (the ledger they are recorded in, above all).
    pub fn options(&self) -> &StartOptions {
        &self.opts
    }

    /// Ends idle instances: shared and session instances with no call for their server's
    /// `idle_timeout`. Returns those ended.
    pub fn end_idle(&self) -> Vec<Arc<Upstream>> {
        let mut ended = Vec::new();
        for up in self.live() {
            let Some(limit) = up.server.idle_timeout else { continue };
            if up.lifetime() != Lifetime::Request && up.idle_for() >= limit && up.in_flight() == 0 {
                up.end(
                    Cause::Idle,
                    &format!("no call for its idle_timeout ({})", humantime::format_duration(limit)),
                );
                ended.push(up);
            }
        }
        ended
    }

    /// Counts the processes of every instance whose shim runs, for the `max_processes` cap.
    /// An instance counts at least [`PROCESSES_PER_START`]: one just spawned may not have forked
    /// its watchdog and server yet, and a count that saw only its shim would let a burst of
    /// starts straddling the count pass the cap.
    pub fn count_processes(&self) -> usize {
        let n = self
            .tracked()
            .iter()
            .filter_map(|u| u.pid)
            .map(|pid| tether_supervisor::inventory::tree_size(pid as i32).max(PROCESSES_PER_START))
            .sum();
        self.processes.store(n, Ordering::Release);
        n
    }

    /// Applies a new set of servers: removed and changed servers' instances are ended (starting
    /// ones too) and returned; unchanged ones and their instances are kept.
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
            let why = match servers.get(&name) {
                None => "its server was removed by a reload",
                Some(new) if *new != *slots[&name].config => "its server's configuration changed in a reload",
                Some(_) => continue,
            };
            let Some(slot) = slots.remove(&name) else { continue };
            let tracked = slot.tracked();
            for up in tracked.iter().filter(|u| !u.is_gone()) {
                up.end(Cause::Reload, why);
                ended.push(up.clone());
            }
            if let Ok(mut retired) = self.retired.lock() {
                retired.extend(tracked);
            }
        }
        for (name, config) in servers {
            slots
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Slot::new(config.clone())));
        }
        ended
    }

    /// Refuses new instances and ends every one, starting ones included; returns every
    /// instance whose shim has not exited (those ended before included), to wait for.
    pub fn close(&self) -> Vec<Arc<Upstream>> {
        self.closed.store(true, Ordering::Release);
        let all = self.tracked();
        for up in &all {
            up.end(Cause::Shutdown, "the gateway is shutting down");
        }
        all
    }
}

/// A start's place in the count of starts in progress, until it is dropped.
struct Reserve<'a> {
    counter: &'a AtomicU32,
    /// Starts in progress with this one.
    count: u32,
}

impl<'a> Reserve<'a> {
    fn new(counter: &'a AtomicU32) -> Reserve<'a> {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        Reserve { counter, count }
    }
}

impl Drop for Reserve<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Ends an instance whose start is abandoned (its future dropped) before [`EndUnlessDone::done`].
struct EndUnlessDone<'a>(Option<&'a Arc<Upstream>>);

impl EndUnlessDone<'_> {
    fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for EndUnlessDone<'_> {
    fn drop(&mut self) {
        if let Some(up) = self.0.take() {
            up.end(Cause::Abandoned, "whoever asked for it went away while it started");
        }
    }
}
