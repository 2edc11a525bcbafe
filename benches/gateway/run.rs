//! The phases, in order, and the proof at the end that nothing the bench started is left.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bins::{self, Bins};
use crate::clients::{Caller, Http};
use crate::memory::{self, Rss};
use crate::progress;
use crate::report::{self, PerServer, Results};
use crate::servers::Server;
use crate::services::Service;
use crate::ways::Way;
use crate::{churn, latency, poll, procfs, teardown, thousand, throughput};

/// Rounds of every throughput measurement, and of latency ([`LATENCY_ROUNDS`]); medians are
/// reported.
pub const ROUNDS: usize = 3;
pub const LATENCY_ROUNDS: usize = 5;

/// The floor's label in the reports.
pub const FLOOR: &str = "the floor (a minimal hyper relay)";

/// Sequential calls per latency round.
const LATENCY_CALLS: u64 = 2000;

pub fn run() -> Result<()> {
    raise_fd_limit()?;
    let bins = bins::locate()?;
    let t = Instant::now();
    let result = measure(&bins);
    let left = leftovers(&bins);
    let _ = std::fs::remove_dir_all(&bins.dir);
    let results = result?;
    left?;
    report::print(&results, t.elapsed());
    Ok(())
}

/// The soak ([`crate::soak`]) for `run`: its table on stdout and in `target/soak-report.md`.
pub fn soak(run: std::time::Duration) -> Result<()> {
    raise_fd_limit()?;
    let bins = bins::locate()?;
    let result = crate::soak::run(&bins, run);
    let left = leftovers(&bins);
    let _ = std::fs::remove_dir_all(&bins.dir);
    let table = result?;
    left?;
    println!("{table}");
    let report = bins
        .tether
        .parent()
        .and_then(|d| d.parent())
        .map(|t| t.join("soak-report.md"));
    if let Some(path) = report {
        std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn measure(bins: &Bins) -> Result<Results> {
    let servers = [Server::fixture(bins), Server::everything(bins)];
    let tables = |extra: &str| -> String { servers.iter().map(|s| s.table(s.name, &[], extra)).collect() };
    let json = "[gateway]\nresponse_mode = \"json\"\n";
    let shared = Service::tether(bins, "shared", &format!("{json}{}", tables("")))?;
    let stream = Service::tether(bins, "stream", &tables(""))?;
    let session = Service::tether(bins, "session", &format!("{json}{}", tables("lifetime = \"session\"")))?;
    progress(format_args!(
        "gateways: shared (json) pid {}, stream pid {}, session pid {}",
        shared.pid(),
        stream.pid(),
        session.pid()
    ));
    // The shared instances started, nothing else: the gateway idle.
    for s in &servers {
        Http::open(shared.addr, &format!("/mcp/{}", s.name))?.echo(1, "echo")?;
    }
    let gateway_idle = Rss::idle(&shared)?;
    let mut per_server = Vec::new();
    for server in &servers {
        per_server.push(one_server(bins, server, &shared, &stream, &session)?);
    }
    let gateway = Rss::peak(&shared, gateway_idle)?;
    drop((shared, stream, session));
    let per_session = memory::per_session(bins)?;
    Ok(Results {
        per_server,
        gateway,
        per_session,
        teardown: teardown::measure(bins)?,
        churn: churn::measure(bins)?,
        thousand: thousand::measure(bins)?,
    })
}

/// Latency and throughput of every way with one server, the peers started for it.
fn one_server(
    bins: &Bins,
    server: &Server,
    shared: &Service,
    stream: &Service,
    session: &Service,
) -> Result<PerServer> {
    let floor = Service::floor(server)?;
    let supergateway = Service::supergateway(bins, server)?;
    let mcp_proxy = Service::mcp_proxy(bins, server)?;
    let one = format!("/mcp/{}", server.name);
    let peer_idle = [Rss::idle(&supergateway)?, Rss::idle(&mcp_proxy)?];
    let latency_ways = vec![
        Way::direct(server),
        Way::http(FLOOR, &floor, "/mcp", "echo"),
        Way::http("`/mcp/{server}`", shared, &one, "echo"),
        Way::http("`/mcp/{server}`, event-stream answers", stream, &one, "echo"),
        Way::http("`/mcp` (aggregated)", shared, "/mcp", &format!("{}__echo", server.name)),
        Way::tether_stdio(bins, server)?,
        Way::http("supergateway", &supergateway, "/mcp", "echo"),
        Way::http("mcp-proxy", &mcp_proxy, "/mcp", "echo"),
    ];
    let latency = latency::measure(server.name, &latency_ways, LATENCY_ROUNDS, LATENCY_CALLS)?;
    let throughput_ways = vec![
        Way::direct(server),
        Way::http(FLOOR, &floor, "/mcp", "echo"),
        Way::http("one `shared` instance", shared, &one, "echo"),
        Way::http("`session` instances", session, &one, "echo"),
        Way::http("supergateway", &supergateway, "/mcp", "echo"),
        Way::http("mcp-proxy", &mcp_proxy, "/mcp", "echo"),
    ];
    let mut throughput = Vec::new();
    for clients in [1, 8, 64] {
        // 64 Node servers per way at once would be 320 of them: one way after the other there.
        let alternate = server.name == "fixture" || clients < 64;
        throughput.extend(throughput::measure(
            server.name,
            &throughput_ways,
            clients,
            ROUNDS,
            alternate,
        )?);
    }
    let peers = vec![
        ("supergateway", Rss::peak(&supergateway, peer_idle[0])?),
        ("mcp-proxy", Rss::peak(&mcp_proxy, peer_idle[1])?),
    ];
    Ok(PerServer {
        server: server.name,
        latency,
        throughput,
        peers,
    })
}

/// Every process the bench started has ended: none carries the bench's tag. Any that does is
/// killed by pid (they are the bench's own: their command lines name its directory) and the
/// bench fails.
fn leftovers(bins: &Bins) -> Result<()> {
    let tag = bins.tag();
    let mut left = Vec::new();
    if poll::until(Duration::from_secs(20), Duration::from_millis(50), || {
        left = procfs::tagged(&tag);
        left.is_empty()
    }) {
        progress(format_args!("no process left with the bench's tag"));
        return Ok(());
    }
    for &p in &left {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
    }
    bail!("{} process(es) left running by the bench, killed: {left:?}", left.len())
}

/// A thousand session instances need some five thousand fds in the gateway (pipes, pidfds,
/// lifelines): the soft limit goes up to the hard one, for this process and what it starts.
fn raise_fd_limit() -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising the fd limit")?;
    Ok(())
}
