//! Phase 1: sequential `echo` round trips, p50 and p99, each way against the direct stdio
//! baseline, the ways alternated round by round; and the gateway's CPU time per sequential
//! call.

use std::time::Instant;

use anyhow::Result;

use crate::clients::Caller;
use crate::procfs;
use crate::progress;
use crate::stats::{median, percentile};
use crate::ways::Way;

/// Untimed calls before each round.
const WARMUP: u64 = 200;
/// Most time one way's round takes: the slow ways (the peers) make fewer calls.
const BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

/// One way's figures: medians over the rounds.
pub struct Row {
    pub label: String,
    pub p50: f64,
    pub p99: f64,
    /// CPU time of the process in between per call, µs.
    pub cpu: Option<f64>,
}

/// Times `calls` sequential calls per round (fewer if they take longer than [`BUDGET`]), `rounds` rounds, every way in each round.
pub fn measure(server: &str, ways: &[Way], rounds: usize, calls: u64) -> Result<Vec<Row>> {
    let mut p50 = vec![Vec::new(); ways.len()];
    let mut p99 = vec![Vec::new(); ways.len()];
    let mut cpu = vec![Vec::new(); ways.len()];
    for round in 0..rounds {
        progress(format_args!("{server}: latency round {}/{rounds}", round + 1));
        for (i, way) in ways.iter().enumerate() {
            let mut c = way.open()?;
            for id in 1..=WARMUP {
                c.echo(id, &way.tool)?;
            }
            let before = way.pid.map(procfs::cpu).transpose()?;
            let mut samples = Vec::with_capacity(calls as usize);
            let start = Instant::now();
            for id in 1..=calls {
                if start.elapsed() > BUDGET {
                    break;
                }
                let t = Instant::now();
                c.echo(id, &way.tool)?;
                samples.push(t.elapsed().as_secs_f64() * 1e6);
            }
            if let (Some(pid), Some(before)) = (way.pid, before) {
                cpu[i].push((procfs::cpu(pid)? - before).as_secs_f64() * 1e6 / samples.len() as f64);
            }
            p50[i].push(percentile(&mut samples, 0.5));
            p99[i].push(percentile(&mut samples, 0.99));
            drop::<Box<dyn Caller>>(c);
        }
    }
    Ok(ways
        .iter()
        .enumerate()
        .map(|(i, w)| Row {
            label: w.label.clone(),
            p50: median(&p50[i]),
            p99: median(&p99[i]),
            cpu: (!cpu[i].is_empty()).then(|| median(&cpu[i])),
        })
        .collect())
}
