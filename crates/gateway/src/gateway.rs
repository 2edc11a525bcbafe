//! The gateway: its configuration, its instances ([`Pool`]) and its sessions ([`Sessions`]),
//! and the three things that end scopes on their own schedule: the idle reaper, a reload, and
//! shutdown.
//!
//! Shutdown (SIGTERM, SIGINT, the stdio client's EOF): stop accepting, let calls in flight
//! finish for up to [`DRAIN`], then end every instance at once and wait for each shim to report
//! its tree gone (each within its grace), so the process exits within the longest grace plus a
//! second. A reload (SIGHUP, or the configuration file changing) ends exactly the instances of
//! removed or changed servers; a configuration that does not validate changes nothing.

use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cause::Cause;
use crate::config::{self, Config, Source};
use crate::pool::Pool;
use crate::session::{Mode, Session};
use crate::sessions::Sessions;
use crate::upstream::{StartOptions, Upstream};

/// How long calls in flight may go on after shutdown begins.
pub const DRAIN: Duration = Duration::from_millis(500);
/// How often idle sessions and instances are looked for.
const REAPER_TICK: Duration = Duration::from_millis(200);
/// How often every instance's processes are counted (for `max_processes`).
const COUNT_EVERY: Duration = Duration::from_secs(1);
/// How often a running gateway compacts the ledger (see [`compact_ledger`]).
const COMPACT_EVERY: Duration = Duration::from_secs(300);
/// How often the configuration file is checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The gateway's state.
pub struct Gateway {
    /// The instances, by server and lifetime.
    pub pool: Pool,
    /// The client sessions.
    pub sessions: Sessions,
    /// The configuration in force.
    config: Mutex<Arc<Config>>,
    /// Keys for hashing bearer tokens into session tags.
    token_hasher: std::collections::hash_map::RandomState,
    /// Client requests being handled, for the drain at shutdown.
    in_flight: Arc<InFlight>,
    /// 2026-07-28 clients' parked calls and named sessions.
    pub modern: crate::modern::front::Modern,
    /// The gateway itself, for tasks that outlive a request's handler.
    me: std::sync::Weak<Gateway>,
    /// Server list changes queued for aggregated sessions.
    pub views: crate::aggregate::views::Views,
    /// Name collisions between servers already reported (each is logged once).
    collisions: Mutex<std::collections::HashSet<String>>,
}

/// A count of requests being handled, and a wake-up for whoever waits for it to reach zero
/// (only the last request of a busy spell touches the `Notify`; the others, an atomic).
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Counts one request being handled while it lives: held by each front door's handling of a
/// message and by every call in flight (which a streamed answer outlives its handler with).
pub struct Busy(Arc<InFlight>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Waits until no request is being handled, or until `deadline`.
    async fn drained(&self, deadline: tokio::time::Instant) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            // Registered before the count is read, so a drop in between still wakes it.
            idle.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }
}

impl Gateway {
    /// A gateway for `config`, starting instances with `opts`.
    pub fn new(config: Config, opts: StartOptions) -> Arc<Gateway> {
        let pool = Pool::new(opts, &config.servers, config.gateway.max_processes);
        Arc::new_cyclic(|me| Gateway {
            me: me.clone(),
            modern: Default::default(),
            pool,
            sessions: Sessions::default(),
            config: Mutex::new(Arc::new(config)),
            token_hasher: std::collections::hash_map::RandomState::new(),
            in_flight: Arc::default(),
            views: Default::default(),
            collisions: Mutex::default(),
        })
    }

    /// The gateway as shared, while it lives.
    pub fn arc(&self) -> Option<Arc<Gateway>> {
        self.me.upgrade()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The tag of a presented bearer token, so a session opened with one token is unknown to
    /// another (0 when no token is configured).
    pub fn token_tag(&self, presented: Option<&str>) -> u64 {
        presented.map_or(0, |t| self.token_hasher.hash_one(t))
    }

    /// Logs each name collision between servers the first time it is seen (`field`: `tools` or
    /// `prompts`), with how the `prefix` policy resolved it.
    pub fn report_collisions(&self, field: &str, found: &[crate::aggregate::naming::Collision]) {
        let Ok(mut seen) = self.collisions.lock() else { return };
        for c in found {
            let key = format!("{field}\0{}\0{}", c.name, c.servers.join("\0"));
            if seen.insert(key) {
                tracing::warn!(
                    "{field}: {:?} is listed by {}: {}",
                    c.name,
                    c.servers.join(", "),
                    c.resolution
                );
            }
        }
    }

    /// Marks one request as being handled until the returned guard drops.
    pub fn busy(&self) -> Busy {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        Busy(self.in_flight.clone())
    }

    /// Ends a session and its instances.
    pub fn end_session(&self, session: &Arc<Session>, cause: Cause, why: &str) -> Vec<Arc<Upstream>> {
        self.sessions.remove(&session.id);
        session.end(cause, why)
    }

    /// One pass of the idle reaper: sessions idle past `session_idle_timeout`, instances idle
    /// past their server's `idle_timeout`.
    pub fn reap_idle(&self) {
        let limit = self.config().gateway.session_idle_timeout;
        for session in self.sessions.take_idle(limit) {
            session.end(
                Cause::Idle,
                &format!("idle for session_idle_timeout ({})", humantime::format_duration(limit)),
            );
        }
        self.pool.end_idle();
        let dropped = self.modern.parked.expire();
        if dropped > 0 {
            tracing::debug!("{dropped} parked call(s) of 2026-07-28 clients ran out of time: dropped");
        }
    }

    /// Reads the configuration's file again and applies it; a file that does not validate
    /// changes nothing. Returns whether anything was applied.
    pub fn reload(&self) -> bool {
        let current = self.config();
        let Source::File(path) = &current.source else {
            tracing::info!("reload: serving the embedded default, no file to read again");
            return false;
        };
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            tracing::error!(
                "reload refused, the configuration in force stays: {} is empty (being written?)",
                path.display()
            );
            return false;
        }
        match config::load(path) {
            Ok(new) => self.apply(new),
            Err(e) => {
                tracing::error!("reload refused, the configuration in force stays: {e}");
                false
            }
        }
    }

    /// Applies a new configuration: removed and changed servers' instances end, the rest stay.
    /// Returns false (applying nothing) when it would leave a gateway reachable from other
    /// hosts without a token.
    pub fn apply(&self, mut new: Config) -> bool {
        let current = self.config();
        if new.gateway.listen != current.gateway.listen {
            tracing::warn!(
                "reload: listen changed from {} to {}; that takes a restart, the gateway stays on {}",
                current.gateway.listen,
                new.gateway.listen,
                current.gateway.listen
            );
            new.gateway.listen = current.gateway.listen;
        }
        // Checked against the address the gateway really listens on: a file that moves
        // `listen` to loopback and drops the token must not leave a public gateway open.
        if let Err(why) = config::check_exposure(&new.gateway) {
            tracing::error!("reload refused, the configuration in force stays: {why}");
            return false;
        }
        let ended = self.pool.reconfigure(&new.servers, new.gateway.max_processes);
        let removed: Vec<&String> = current
            .servers
            .keys()
            .filter(|n| !new.servers.contains_key(*n))
            .collect();
        let added: Vec<&String> = new
            .servers
            .keys()
            .filter(|n| !current.servers.contains_key(*n))
            .collect();
        let changed: Vec<&String> = new
            .servers
            .iter()
            .filter(|(n, c)| current.servers.get(*n).is_some_and(|old| old != *c))
            .map(|(n, _)| n)
            .collect();
        tracing::info!(
            "reload applied: {} server(s) added {added:?}, {} removed {removed:?}, {} changed {changed:?}; {} instance(s) ended",
            added.len(),
            removed.len(),
            changed.len(),
            ended.len()
        );
        // Sessions of a removed server have nothing left to talk to.
        for session in self
            .sessions
            .take_matching(|s| matches!(&s.mode, Mode::One(n) if removed.contains(&n)))
        {
            session.end(Cause::Reload, "its server was removed by a reload");
        }
        // What an aggregated session lists may have changed: tell it to list again.
        if !(added.is_empty() && removed.is_empty() && changed.is_empty()) {
            for session in self.sessions.all().into_iter().filter(|s| s.mode == Mode::All) {
                for kind in ["tools", "prompts", "resources"] {
                    session.push(crate::jsonrpc::notification(
                        &format!("notifications/{kind}/list_changed"),
                        None,
                    ));
                }
            }
        }
        if let Ok(mut c) = self.config.lock() {
            *c = Arc::new(new);
        }
        true
    }

    /// Ends everything: refuses new instances, lets calls in flight finish for up to
    /// [`DRAIN`], ends every session and instance at once, and waits for every shim.
    pub async fn shutdown(&self, why: &str) {
        tracing::info!("shutting down: {why}");
        self.in_flight.drained(tokio::time::Instant::now() + DRAIN).await;
        for session in self.sessions.take_all() {
            session.end(Cause::Shutdown, why);
        }
        // Every instance whose shim still runs, those ended before the shutdown included.
        wait_all(&self.pool.close()).await;
    }

    /// The configuration file to watch, if any.
    fn watched(&self) -> Option<PathBuf> {
        match &self.config().source {
            Source::File(p) => Some(p.clone()),
            Source::Embedded => None,
        }
    }
}

/// Waits for every instance's shim to exit, all at once, each up to its grace plus a second.
pub async fn wait_all(instances: &[Arc<Upstream>]) {
    let waits: Vec<_> = instances
        .iter()
        .cloned()
        .map(|up| {
            tokio::spawn(async move {
                let patience = up.server.grace + Duration::from_secs(1);
                if up.wait_exit(patience).await.is_none() && !up.exited() {
                    tracing::warn!(server = %up.name(), instance = %crate::upstream::short(&up.id), "its shim did not exit within the grace; the sweep will find what is left");
                }
            })
        })
        .collect();
    for w in waits {
        let _ = w.await;
    }
}

/// Runs the idle reaper and the process counter until `stop`.
pub async fn reaper(gw: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(REAPER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_count = Instant::now() - COUNT_EVERY;
    let mut last_compact = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        gw.reap_idle();
        if last_count.elapsed() >= COUNT_EVERY && gw.config().gateway.max_processes.is_some() {
            last_count = Instant::now();
            let gw = gw.clone();
            let _ = tokio::task::spawn_blocking(move || gw.pool.count_processes()).await;
        }
        if last_compact.elapsed() >= COMPACT_EVERY {
            last_compact = Instant::now();
            if let Some(Ok(dir)) = gw.pool.options().ledger.dir() {
                let _ = tokio::task::spawn_blocking(move || compact_ledger(&dir)).await;
            }
        }
    }
}

/// Compacts the ledger in `dir` as a sweep does (closed instances older than a week, or beyond
/// the newest ten thousand): a gateway may run for months between start-ups and start
/// thousands of instances an hour, and its ledger must not grow with them.
fn compact_ledger(dir: &std::path::Path) {
    let compacted = tether_supervisor::ledger::Ledger::open(dir)
        .map_err(|e| e.to_string())
        .and_then(|mut l| tether_supervisor::sweep::compact(&mut l).map_err(|e| e.to_string()));
    match compacted {
        Ok(0) => {}
        Ok(n) => tracing::debug!("ledger compacted: {n} closed instance(s) removed"),
        Err(e) => tracing::warn!("compacting the ledger: {e}"),
    }
}

/// Reloads when the configuration file changes (its size, modification time or inode), until
/// `stop`. Polling keeps this portable and cheap: one `stat` a second.
pub async fn watch_config(gw: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(path) = gw.watched() else { return };
    let stamp = |p: &PathBuf| {
        std::fs::metadata(p).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.len(), m.modified().ok(), m.ino())
        })
    };
    let mut last = stamp(&path);
    // A change is applied once the file has stayed the same for a tick: a writer that truncates
    // the file and then writes it must not be caught in between (a file cut short can be a
    // valid configuration with servers missing, whose sessions the reload would end).
    let mut pending = None;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = stamp(&path);
        if now == last || now.is_none() {
            pending = None;
        } else if pending == Some(now) {
            last = now;
            pending = None;
            tracing::info!("{} changed: reloading", path.display());
            gw.reload();
        } else {
            pending = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_drain_ends_when_the_last_request_does_not_at_its_deadline() {
        let counts = Arc::new(InFlight::default());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let held = counts.clone();
        tokio::spawn(async move {
            held.count.fetch_add(1, Ordering::AcqRel);
            let _busy = Busy(held);
            let _ = released.await;
        });
        tokio::task::yield_now().await;
        let start = tokio::time::Instant::now();
        let waiting = counts.clone();
        let waiter = tokio::spawn(async move {
            waiting.drained(start + Duration::from_secs(60)).await;
            tokio::time::Instant::now()
        });
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "a request is still being handled");
        let _ = release.send(());
        let ended = waiter.await.expect("the waiter");
        // The paused clock never moved: the release woke it, not its deadline.
        assert_eq!(ended, start);
        assert_eq!(counts.count.load(Ordering::Acquire), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_gives_up_at_its_deadline() {
        let counts = Arc::new(InFlight::default());
        counts.count.fetch_add(1, Ordering::AcqRel);
        let _busy = Busy(counts.clone());
        let start = tokio::time::Instant::now();
        counts.drained(start + DRAIN).await;
        assert_eq!(tokio::time::Instant::now() - start, DRAIN);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_gateway_does_not_wait() {
        let counts = InFlight::default();
        let start = tokio::time::Instant::now();
        counts.drained(start + DRAIN).await;
        assert_eq!(tokio::time::Instant::now(), start);
    }
}
