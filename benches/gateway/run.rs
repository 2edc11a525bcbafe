//! The phases, in order, and the report.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::clients::{echo, Caller, Http, Piped};
use crate::progress;

/// Calls per latency round, after the warm-up.
const CALLS: u64 = 2000;
/// Warm-up calls before each round.
const WARMUP: u64 = 200;
/// Rounds of every measurement; the median is reported.
const ROUNDS: usize = 3;
/// Calls per client in a throughput round.
const PER_CLIENT: u64 = 1000;
/// Idle sessions opened to measure the memory of one.
const IDLE_SESSIONS: usize = 200;

struct Bins {
    tether: PathBuf,
    fixture: PathBuf,
}

fn locate() -> Result<Bins> {
    let exe = std::env::current_exe().context("finding the bench executable")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("no profile directory")?
        .to_path_buf();
    let find = |name: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            bail!("{} not found: run `cargo build --release` first", p.display())
        }
    };
    Ok(Bins {
        tether: find("tether")?,
        fixture: find("tether-fixture")?,
    })
}

/// A running `tether serve` over HTTP.
struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Gateway {
    #[allow(clippy::disallowed_methods)] // The bench starts what it measures.
    fn start(bins: &Bins, dir: &Path, config: &str) -> Result<Gateway> {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, config)?;
        let mut child = Command::new(&bins.tether)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .env("TETHER_STATE_DIR", dir.join("state"))
            .env("TETHER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tether serve")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split(" at http://")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .context("the gateway did not listen")?;
        Ok(Gateway { child, addr })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// CPU time of a process so far (user + system), from `/proc/<pid>/stat`.
fn cpu(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).context("stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// Resident memory of a process, KiB.
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

/// Round trips of `calls` sequential calls, µs each.
fn latencies(c: &mut dyn Caller, tool: &str, calls: u64) -> Result<Vec<f64>> {
    for i in 0..WARMUP {
        c.call(&echo(i + 1, tool), "bench")?;
    }
    let mut out = Vec::with_capacity(calls as usize);
    for i in 0..calls {
        let t = Instant::now();
        c.call(&echo(i + 1, tool), "bench")?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(out)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    percentile(&mut v, 0.5)
}

/// Calls per second of `clients` threads, each making `PER_CLIENT` calls through its own caller.
fn throughput(make: &(dyn Fn() -> Result<Box<dyn Caller + Send>> + Sync), tool: &str, clients: usize) -> Result<f64> {
    let callers: Vec<Box<dyn Caller + Send>> = (0..clients).map(|_| make()).collect::<Result<_>>()?;
    let start = std::sync::Barrier::new(clients + 1);
    let t = std::thread::scope(|s| -> Result<Duration> {
        let workers: Vec<_> = callers
            .into_iter()
            .map(|mut c| {
                let start = &start;
                s.spawn(move || -> Result<()> {
                    start.wait();
                    for i in 0..PER_CLIENT {
                        c.call(&echo(i + 1, tool), "bench")?;
                    }
                    Ok(())
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        Ok(t0.elapsed())
    })?;
    Ok((clients as u64 * PER_CLIENT) as f64 / t.as_secs_f64())
}

pub fn run() -> Result<()> {
    let bins = locate()?;
    let dir = std::env::temp_dir().join(format!("tether-bench-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&bins, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(bins: &Bins, dir: &Path) -> Result<()> {
    let fixture = bins.fixture.to_string_lossy();
    let server = |name: &str| format!("[servers.{name}]\ncommand = \"{fixture}\"\n");
    let config = format!("[gateway]\nresponse_mode = \"json\"\n{}{}", server("a"), server("b"));
    let gw = Gateway::start(bins, dir, &config)?;
    progress(format_args!("gateway pid {} at {}", gw.pid(), gw.addr));
    let rss_idle = {
        // The shared instances started, nothing else.
        let mut warm = Http::open(gw.addr, "/mcp/a")?;
        warm.call(&echo(1, "echo"), "bench")?;
        let mut warm = Http::open(gw.addr, "/mcp/b")?;
        warm.call(&echo(1, "echo"), "bench")?;
        rss(gw.pid())?
    };
    let one_server = server("fx");
    let stdio_config = dir.join("stdio.toml");
    std::fs::write(&stdio_config, &one_server)?;
    let direct = || -> Result<Piped> { Piped::start(Command::new(&bins.fixture)) };
    let serve_stdio = || -> Result<Piped> {
        let mut c = Command::new(&bins.tether);
        c.args(["serve", "--stdio", "--config"])
            .arg(&stdio_config)
            .env("TETHER_STATE_DIR", dir.join("state-stdio"));
        Piped::start(c)
    };

    // 1. Sequential round trips, the ways alternated round by round.
    let names = [
        "direct stdio",
        "/mcp/{server}",
        "/mcp (aggregated)",
        "tether serve --stdio",
    ];
    let mut p50: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut cpu_per_call = Vec::new();
    for round in 0..ROUNDS {
        progress(format_args!("latency round {}/{ROUNDS}", round + 1));
        for way in 0..4 {
            let mut samples = match way {
                0 => latencies(&mut direct()?, "echo", CALLS)?,
                1 => {
                    let before = cpu(gw.pid())?;
                    let s = latencies(&mut Http::open(gw.addr, "/mcp/a")?, "echo", CALLS)?;
                    let used = cpu(gw.pid())? - before;
                    cpu_per_call.push(used.as_secs_f64() * 1e6 / (CALLS + WARMUP) as f64);
                    s
                }
                2 => latencies(&mut Http::open(gw.addr, "/mcp")?, "a__echo", CALLS)?,
                _ => latencies(&mut serve_stdio()?, "echo", CALLS)?,
            };
            p50[way].push(percentile(&mut samples, 0.5));
            p99[way].push(percentile(&mut samples, 0.99));
        }
    }

    // 2. Throughput: 1 and 8 clients on the one shared instance, against as many direct servers.
    let mut tput: Vec<(usize, f64, f64, f64)> = Vec::new();
    for clients in [1usize, 8] {
        let mut d = Vec::new();
        let mut g = Vec::new();
        let mut cpu8 = Vec::new();
        for round in 0..ROUNDS {
            progress(format_args!(
                "throughput, {clients} client(s), round {}/{ROUNDS}",
                round + 1
            ));
            d.push(throughput(
                &|| Ok(Box::new(direct()?) as Box<dyn Caller + Send>),
                "echo",
                clients,
            )?);
            let before = cpu(gw.pid())?;
            g.push(throughput(
                &|| Ok(Box::new(Http::open(gw.addr, "/mcp/a")?) as Box<dyn Caller + Send>),
                "echo",
                clients,
            )?);
            let used = cpu(gw.pid())? - before;
            cpu8.push(used.as_secs_f64() * 1e6 / (clients as u64 * PER_CLIENT) as f64);
        }
        tput.push((clients, median(d), median(g), median(cpu8)));
    }
    let rss_load = rss(gw.pid())?;

    // 3. Memory per idle session.
    let before = rss(gw.pid())?;
    let mut idle = Vec::new();
    for _ in 0..IDLE_SESSIONS {
        idle.push(Http::open(gw.addr, "/mcp/a")?);
    }
    let per_session = (rss(gw.pid())?.saturating_sub(before)) as f64 / IDLE_SESSIONS as f64;
    drop(idle);

    // The report.
    let base50 = median(p50[0].clone());
    let base99 = median(p99[0].clone());
    println!("### `tether serve` (cargo bench --bench gateway)\n");
    println!("Sequential `echo` round trips, {CALLS} calls a round, median of {ROUNDS} rounds (the fixture, release build):\n");
    println!("| way | p50 | p99 | p50 ratio | p99 ratio |\n|---|---:|---:|---:|---:|");
    for (i, name) in names.iter().enumerate() {
        let a = median(p50[i].clone());
        let b = median(p99[i].clone());
        println!(
            "| {name} | {a:.0} µs | {b:.0} µs | ×{:.2} | ×{:.2} |",
            a / base50,
            b / base99
        );
    }
    println!(
        "\nThroughput (calls/s), {PER_CLIENT} calls per client, one shared instance against as many direct servers:\n"
    );
    println!("| clients | direct | through the gateway | ratio | gateway CPU per call |\n|---:|---:|---:|---:|---:|");
    for (clients, d, g, c) in &tput {
        println!("| {clients} | {d:.0} | {g:.0} | ×{:.2} | {c:.0} µs |", g / d);
    }
    println!("\nGateway CPU per sequential call: {:.0} µs. Gateway RSS: {} KiB idle (two shared instances started), {} KiB after the load, {:.1} KiB per idle session ({IDLE_SESSIONS} opened).",
        median(cpu_per_call), rss_idle, rss_load, per_session);
    Ok(())
}
