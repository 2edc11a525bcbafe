//! Phase 2: calls per second with 1, 8 and 64 concurrent clients, each way against as many
//! direct server processes, and the CPU time per call of the process in between (phase 3's
//! CPU figure at load).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::clients::Caller;
use crate::procfs;
use crate::progress;
use crate::stats::median;
use crate::ways::Way;

/// One way at one number of clients: medians over the rounds.
pub struct Cell {
    pub label: String,
    pub clients: usize,
    pub calls_per_s: f64,
    pub cpu: Option<f64>,
}

/// How long each round runs.
const ROUND: Duration = Duration::from_millis(700);

/// Every client calls for [`ROUND`], `rounds` rounds per way. With
/// `alternate`, every way's clients are opened first and the rounds alternate between the
/// ways; without it (to bound memory, 64 Node servers a way) one way after the other.
pub fn measure(server: &str, ways: &[Way], clients: usize, rounds: usize, alternate: bool) -> Result<Vec<Cell>> {
    let mut rates = vec![Vec::new(); ways.len()];
    let mut cpus = vec![Vec::new(); ways.len()];
    let mut run = |i: usize, callers: &mut Vec<Box<dyn Caller>>, round: usize| -> Result<()> {
        progress(format_args!(
            "{server}: {clients} client(s), {}, round {}/{rounds}",
            ways[i].label,
            round + 1
        ));
        let before = ways[i].pid.map(procfs::cpu).transpose()?;
        let (calls, t) = timed(callers, &ways[i].tool)?;
        rates[i].push(calls as f64 / t.as_secs_f64());
        if let (Some(pid), Some(before)) = (ways[i].pid, before) {
            cpus[i].push((procfs::cpu(pid)? - before).as_secs_f64() * 1e6 / calls as f64);
        }
        Ok(())
    };
    if alternate {
        let mut all: Vec<Vec<Box<dyn Caller>>> = ways.iter().map(|w| open(w, clients)).collect::<Result<_>>()?;
        for round in 0..rounds {
            for (i, callers) in all.iter_mut().enumerate() {
                run(i, callers, round)?;
            }
        }
    } else {
        for (i, way) in ways.iter().enumerate() {
            let mut callers = open(way, clients)?;
            for round in 0..rounds {
                run(i, &mut callers, round)?;
            }
        }
    }
    Ok(ways
        .iter()
        .enumerate()
        .map(|(i, w)| Cell {
            label: w.label.clone(),
            clients,
            calls_per_s: median(&rates[i]),
            cpu: (!cpus[i].is_empty()).then(|| median(&cpus[i])),
        })
        .collect())
}

/// Opens `n` clients of a way, each warmed by one call (a `session` instance starts then).
fn open(way: &Way, n: usize) -> Result<Vec<Box<dyn Caller>>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| -> Result<Box<dyn Caller>> {
                    let mut c = way.open()?;
                    c.echo(1, &way.tool)?;
                    Ok(c)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a client thread panicked"))?)
            .collect()
    })
}

/// Every caller calls at once for [`ROUND`]: the calls answered and the time from the start to
/// the last answer.
fn timed(callers: &mut [Box<dyn Caller>], tool: &str) -> Result<(u64, Duration)> {
    let start = Barrier::new(callers.len() + 1);
    let t0 = std::sync::OnceLock::<Instant>::new();
    std::thread::scope(|s| {
        let workers: Vec<_> = callers
            .iter_mut()
            .map(|c| {
                let (start, t0) = (&start, &t0);
                s.spawn(move || -> Result<u64> {
                    start.wait();
                    let t0 = *t0.get_or_init(Instant::now);
                    let mut id = 2;
                    while t0.elapsed() < ROUND {
                        c.echo(id, tool)?;
                        id += 1;
                    }
                    Ok(id - 2)
                })
            })
            .collect();
        start.wait();
        let t0 = *t0.get_or_init(Instant::now);
        let mut calls = 0;
        for w in workers {
            calls += w.join().map_err(|_| anyhow!("a client thread panicked"))??;
        }
        Ok((calls, t0.elapsed()))
    })
}
