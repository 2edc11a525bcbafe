//! Phase 4: teardown latency, from the end of a scope (a client's DELETE of its session) to
//! the last process of its instance dead (exited: the server and the shim are reaped by their
//! parents at once; the shim's watchdog, which finishes the ledger's bookkeeping after the
//! shim exits, is an orphan reaped by PID 1, which this VM's init does only every second or
//! two), for a cooperative server (it exits when its stdin
//! closes) and a stubborn one (it ignores both EOF and SIGTERM, so only SIGKILL after the
//! grace ends it); and what `tether wrap` adds to a server's start-up and teardown over a
//! direct spawn.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use crate::bins::Bins;
use crate::clients::{Caller, Http, Piped, INITIALIZE};
use crate::progress;
use crate::services::Service;
use crate::stats::median;
use crate::{poll, procfs};

/// Sessions ended per kind of server.
const SESSIONS: usize = 20;
/// The stubborn server's grace.
pub const GRACE_MS: u64 = 100;
/// Spawns per way for `tether wrap`.
const SPAWNS: usize = 60;

pub struct Teardown {
    /// Median ms from DELETE sent to the last process dead.
    pub cooperative: f64,
    pub stubborn: f64,
    /// Median ms: spawn → `initialize` answer, direct and wrapped.
    pub start_direct: f64,
    pub start_wrapped: f64,
    /// Median ms: stdin closed → exit, direct and wrapped.
    pub end_direct: f64,
    pub end_wrapped: f64,
}

pub fn measure(bins: &Bins) -> Result<Teardown> {
    let fixture = crate::servers::Server::fixture(bins);
    let config = format!(
        "{}{}",
        fixture.table("coop", &[], "lifetime = \"session\""),
        fixture.table(
            "stubborn",
            &["--ignore-sigterm", "--ignore-eof"],
            &format!("lifetime = \"session\"\ngrace = \"{GRACE_MS}ms\"")
        )
    );
    let gw = Service::tether(bins, "teardown", &config)?;
    let cooperative = sessions(&gw, "coop")?;
    let stubborn = sessions(&gw, "stubborn")?;
    drop(gw);
    let (start_direct, start_wrapped, end_direct, end_wrapped) = wrap(bins)?;
    Ok(Teardown {
        cooperative,
        stubborn,
        start_direct,
        start_wrapped,
        end_direct,
        end_wrapped,
    })
}

/// Median ms from a session's DELETE to its instance's last process dead.
fn sessions(gw: &Service, server: &str) -> Result<f64> {
    progress(format_args!("teardown: {SESSIONS} sessions of {server}"));
    let mut times = Vec::new();
    for _ in 0..SESSIONS {
        let before = procfs::descendants(gw.pid());
        let mut c = Http::open(gw.addr, &format!("/mcp/{server}"))?;
        c.echo(1, "echo")?;
        let mine: Vec<u32> = procfs::descendants(gw.pid())
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        ensure!(mine.len() >= 2, "{server}: no instance processes found ({mine:?})");
        let t = Instant::now();
        let status = c.delete()?;
        ensure!(status == 200 || status == 204, "DELETE: status {status}");
        // Looked at every 200 µs at most: the figure is in ms.
        let gone = poll::until(Duration::from_secs(30), Duration::from_micros(200), || {
            !mine.iter().any(|&p| procfs::alive(p))
        });
        let took = t.elapsed();
        ensure!(gone, "{server}: processes {mine:?} still there 30 s after the DELETE");
        times.push(took.as_secs_f64() * 1e3);
    }
    Ok(median(&times))
}

/// Start-up (spawn → initialize answer) and teardown (stdin closed → exit) of the fixture,
/// direct and under `tether wrap`, alternated.
fn wrap(bins: &Bins) -> Result<(f64, f64, f64, f64)> {
    progress(format_args!("tether wrap: {SPAWNS} spawns per way"));
    let mut start = [Vec::new(), Vec::new()];
    let mut end = [Vec::new(), Vec::new()];
    for i in 0..SPAWNS * 2 {
        let wrapped = i % 2 == 1;
        let mut command = if wrapped {
            let mut c = Command::new(&bins.tether);
            c.env("TETHER_STATE_DIR", bins.dir.join("state-wrap"))
                .args(["wrap", "--"]);
            c.arg(&bins.fixture);
            c
        } else {
            Command::new(&bins.fixture)
        };
        command.env_remove("TETHER_LOG");
        let t = Instant::now();
        let mut p = Piped::spawn(command)?;
        p.call(INITIALIZE, "protocolVersion")?;
        start[usize::from(wrapped)].push(t.elapsed().as_secs_f64() * 1e3);
        end[usize::from(wrapped)].push(p.finish()?.as_secs_f64() * 1e3);
    }
    Ok((median(&start[0]), median(&start[1]), median(&end[0]), median(&end[1])))
}
