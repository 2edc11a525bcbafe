//! Prometheus metrics, served at `GET /metrics` on the admin socket (see [`crate::admin`]),
//! in the OpenMetrics text format, by the `prometheus-client` crate.
//!
//! Counters and histograms are updated where the events happen (an instance started, ended,
//! torn down; a tool call answered); what is alive (sessions, instances, processes) is read
//! from the gateway when it is scraped. One gateway per process, so the metrics are a process
//! global, which spares every layer from carrying them.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use tether_supervisor::inventory::unverified;
use tether_supervisor::launch::LedgerChoice;
use tether_supervisor::sweep::{ActionKind, Report};

use crate::cause::Cause;
use crate::gateway::Gateway;

/// A server's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabel {
    pub server: String,
}

/// A server and why its instance ended ([`Cause::label`]; `server_exited` too when the shim
/// exited before anything asked it to, which is a server exiting by itself).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndLabels {
    pub server: String,
    pub reason: &'static str,
}

/// Why a session ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// A server and the kind of trouble it gave.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub server: String,
    pub kind: &'static str,
}

/// A server and the stream a message of its was dropped from ([`crate::dropped::Where`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub server: String,
    pub r#where: &'static str,
}

/// Which cap refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CapLabel {
    pub cap: &'static str,
}

/// What a sweep left alone, and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabel {
    pub why: &'static str,
}

/// A server and a lifetime.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub server: String,
    pub lifetime: String,
}

type Seconds = Family<ServerLabel, Histogram, fn() -> Histogram>;

/// 1 ms to about 33 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric, registered.
pub struct Metrics {
    registry: Registry,
    sessions: Gauge,
    instances: Family<InstanceLabels, Gauge>,
    processes: Gauge,
    orphans: Gauge,
    started: Family<ServerLabel, Counter>,
    ended: Family<EndLabels, Counter>,
    sessions_ended: Family<ReasonLabel, Counter>,
    escalated: Family<ServerLabel, Counter>,
    upstream_errors: Family<ErrorLabels, Counter>,
    dropped: Family<DropLabels, Counter>,
    caps_hit: Family<CapLabel, Counter>,
    sweeps: Counter,
    swept: Counter,
    strangers_skipped: Family<SkipLabel, Counter>,
    ledger_bytes: Gauge,
    teardown: Seconds,
    tool_calls: Seconds,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tether");
        let m = Metrics {
            sessions: Gauge::default(),
            instances: Family::default(),
            processes: Gauge::default(),
            orphans: Gauge::default(),
            started: Family::default(),
            ended: Family::default(),
            sessions_ended: Family::default(),
            escalated: Family::default(),
            upstream_errors: Family::default(),
            dropped: Family::default(),
            caps_hit: Family::default(),
            sweeps: Counter::default(),
            swept: Counter::default(),
            strangers_skipped: Family::default(),
            ledger_bytes: Gauge::default(),
            teardown: Family::new_with_constructor(seconds),
            tool_calls: Family::new_with_constructor(seconds),
            registry: Registry::default(),
        };
        registry.register("sessions", "Client sessions open", m.sessions.clone());
        registry.register(
            "instances",
            "Instances alive, by server and lifetime",
            m.instances.clone(),
        );
        registry.register(
            "processes",
            "Processes in every instance's tree (shims, servers, their descendants)",
            m.processes.clone(),
        );
        registry.register(
            "orphan_processes",
            "Processes carrying this gateway's owner cookie that no instance of it holds: should be 0 (alert when it stays above)",
            m.orphans.clone(),
        );
        registry.register("instances_started", "Instances started, by server", m.started.clone());
        registry.register(
            "instances_ended",
            "Instances whose tree is gone (their shim exited), by server and reason",
            m.ended.clone(),
        );
        registry.register(
            "sessions_ended",
            "Client sessions ended, by reason",
            m.sessions_ended.clone(),
        );
        registry.register(
            "kill_escalations",
            "Teardowns that ended their server with SIGKILL: it outlived its grace (the server itself, as the shim reports it), by server",
            m.escalated.clone(),
        );
        registry.register(
            "upstream_errors",
            "Trouble from servers, by server and kind (start, failed, exited, malformed, too_long, timeout)",
            m.upstream_errors.clone(),
        );
        registry.register(
            "dropped_messages",
            "Messages for a client dropped because it did not read them as fast as its server sent them, by server and the stream that was full (call, session); the answers to calls are never dropped",
            m.dropped.clone(),
        );
        registry.register(
            "caps_hit",
            "Starts and sessions refused by a cap, by cap (max_instances, max_processes, max_sessions)",
            m.caps_hit.clone(),
        );
        registry.register(
            "sweeps",
            "Sweeps run (at start-up and through the admin API)",
            m.sweeps.clone(),
        );
        registry.register(
            "swept_processes",
            "Processes left by a dead Tether that sweeps killed",
            m.swept.clone(),
        );
        registry.register(
            "strangers_skipped",
            "Processes sweeps left alone: a recorded pid now another process's (pid_reused), or a cookie this ledger does not know (unknown_cookie)",
            m.strangers_skipped.clone(),
        );
        registry.register(
            "ledger_bytes",
            "The size of the ledger's files (database and write-ahead log)",
            m.ledger_bytes.clone(),
        );
        registry.register(
            "teardown_seconds",
            "From an instance's end asked for to its shim's exit (the whole tree gone), by server",
            m.teardown.clone(),
        );
        registry.register(
            "tool_call_seconds",
            "tools/call round trips through the gateway, by server",
            m.tool_calls.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn server(name: &str) -> ServerLabel {
    ServerLabel {
        server: name.to_string(),
    }
}

/// An instance of `name` started.
pub fn started(name: &str) {
    get().started.get_or_create(&server(name)).inc();
}

/// An instance of `name` is gone: its shim exited, `teardown` after its end was asked for,
/// for `cause`.
pub fn ended(name: &str, cause: Cause, teardown: Option<Duration>) {
    let m = get();
    let labels = EndLabels {
        server: name.to_string(),
        reason: cause.label(),
    };
    m.ended.get_or_create(&labels).inc();
    if let Some(t) = teardown {
        m.teardown.get_or_create(&server(name)).observe(t.as_secs_f64());
    }
}

/// A session ended, for `cause`.
pub fn session_ended(cause: Cause) {
    get()
        .sessions_ended
        .get_or_create(&ReasonLabel { reason: cause.label() })
        .inc();
}

/// A teardown of an instance of `name` had to SIGKILL.
pub fn escalated(name: &str) {
    get().escalated.get_or_create(&server(name)).inc();
}

/// Server `name` gave trouble of `kind`.
pub fn upstream_error(name: &str, kind: &'static str) {
    let labels = ErrorLabels {
        server: name.to_string(),
        kind,
    };
    get().upstream_errors.get_or_create(&labels).inc();
}

/// A message of server `name`'s for a client was dropped, its stream `at` full.
pub fn dropped(name: &str, at: crate::dropped::Where) {
    let labels = DropLabels {
        server: name.to_string(),
        r#where: at.label(),
    };
    get().dropped.get_or_create(&labels).inc();
}

/// How many messages of server `name`'s were dropped at `at` so far (for unit tests).
#[cfg(test)]
pub fn dropped_so_far(name: &str, at: crate::dropped::Where) -> u64 {
    let labels = DropLabels {
        server: name.to_string(),
        r#where: at.label(),
    };
    get().dropped.get_or_create(&labels).get()
}

/// The cap `cap` refused a start or a session.
pub fn cap_hit(cap: &'static str) {
    get().caps_hit.get_or_create(&CapLabel { cap }).inc();
}

/// A sweep ran and did what `report` says.
pub fn swept(report: &Report) {
    let m = get();
    m.sweeps.inc();
    m.swept.inc_by(report.killed as u64);
    for a in &report.actions {
        let why = match a.kind {
            ActionKind::SkippedStranger => "pid_reused",
            ActionKind::SkippedUnknown => "unknown_cookie",
            _ => continue,
        };
        m.strangers_skipped.get_or_create(&SkipLabel { why }).inc();
    }
}

/// The tool-call histogram of server `name`, for an instance to keep: observing it then costs
/// no label lookup (and no allocation) on the call's path.
pub fn tool_calls_of(name: &str) -> Histogram {
    get().tool_calls.get_or_create(&server(name)).clone()
}

/// Processes whose cookie names this gateway as their owner but no instance it tracks (those
/// ending included): what the guarantee says cannot exist for long.
fn orphans(gw: &Gateway) -> usize {
    let tracked: HashSet<String> = gw.pool.tracked().iter().map(|u| u.id.clone()).collect();
    let owner = gw.pool.options().owner_id.as_str();
    unverified::list()
        .into_iter()
        .filter(|i| i.owner.as_deref() == Some(owner) && !tracked.contains(&i.id))
        .map(|i| i.processes.len())
        .sum()
}

/// The size of the ledger's database and write-ahead log, 0 without a ledger.
fn ledger_bytes(choice: &LedgerChoice) -> i64 {
    let Some(Ok(dir)) = choice.dir() else {
        return 0;
    };
    let file = dir.join(tether_supervisor::ledger::FILE_NAME);
    let wal = dir.join(format!("{}-wal", tether_supervisor::ledger::FILE_NAME));
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    i64::try_from(size(&file) + size(&wal)).unwrap_or(i64::MAX)
}

/// The metrics now, as OpenMetrics text: what is alive read from `gw` and `/proc` first (so
/// call it on a blocking thread).
pub fn scrape(gw: &Gateway) -> String {
    let m = get();
    m.sessions.set(i64::try_from(gw.sessions.len()).unwrap_or(i64::MAX));
    m.instances.clear();
    for up in gw.pool.live() {
        let labels = InstanceLabels {
            server: up.name().to_string(),
            lifetime: up.lifetime().name().to_string(),
        };
        m.instances.get_or_create(&labels).inc();
    }
    m.processes
        .set(i64::try_from(gw.pool.count_processes()).unwrap_or(i64::MAX));
    m.ledger_bytes.set(ledger_bytes(&gw.pool.options().ledger));
    m.orphans.set(i64::try_from(orphans(gw)).unwrap_or(i64::MAX));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        out = "# the metrics could not be encoded\n".into();
    }
    out
}
