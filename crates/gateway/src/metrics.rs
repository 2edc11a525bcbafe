//! Prometheus metrics, served at `GET /metrics` on the admin socket (see [`crate::admin`]),
//! in the OpenMetrics text format, by the `prometheus-client` crate.
//!
//! Counters and histograms are updated where the events happen (an instance started, ended,
//! torn down; a tool call answered); what is alive (sessions, instances, processes) is read
//! from the gateway when it is scraped. One gateway per process, so the metrics are a process
//! global, which spares every layer from carrying them.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::gateway::Gateway;

/// A server's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabel {
    pub server: String,
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
    started: Family<ServerLabel, Counter>,
    ended: Family<ServerLabel, Counter>,
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
            started: Family::default(),
            ended: Family::default(),
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
        registry.register("instances_started", "Instances started, by server", m.started.clone());
        registry.register(
            "instances_ended",
            "Instances whose tree is gone (their shim exited), by server",
            m.ended.clone(),
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

/// An instance of `name` is gone: its shim exited; `teardown` since its end was asked for.
pub fn ended(name: &str, teardown: Option<Duration>) {
    let m = get();
    m.ended.get_or_create(&server(name)).inc();
    if let Some(t) = teardown {
        m.teardown.get_or_create(&server(name)).observe(t.as_secs_f64());
    }
}

/// The tool-call histogram of server `name`, for an instance to keep: observing it then costs
/// no label lookup (and no allocation) on the call's path.
pub fn tool_calls_of(name: &str) -> Histogram {
    get().tool_calls.get_or_create(&server(name)).clone()
}

/// The metrics now, as OpenMetrics text: what is alive read from `gw` first.
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
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        out = "# the metrics could not be encoded\n".into();
    }
    out
}
