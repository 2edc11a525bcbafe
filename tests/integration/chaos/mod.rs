//! The chaos driver (seeded, reproducible, bounded): iteration after iteration it runs sessions
//! of every lifetime over the fixture's escapee zoo, locally and over SSH, SIGKILLs one drawn
//! participant at a drawn moment, restarts what should run, ends every scope, and proves that
//! nothing carrying the run's cookie survives, that no bystander was signalled, and that the
//! ledger is sound and agrees with `/proc`. `docs/chaos.md` says how to run and replay it.
//!
//! Two runs: `chaos` with a cgroup per instance, `chaos_without_cgroups` with cgroups forced
//! off (keepers above the shims, and a keeper among the participants killed).
//! `TETHER_CHAOS_SEED` (decimal or `0x…`) and `TETHER_CHAOS_ITERATIONS` choose the run; the
//! defaults are CI's short run (one round: every kind killed once). The seed is printed first: a failure replays with it.

mod bystanders;
mod checks;
mod kill;
mod plan;
mod report;
mod scene;
mod targets;

use std::path::PathBuf;

use nix::sys::signal::Signal;

use crate::gateway::support::SLACK;
use crate::harness::{eventually, Cookie, Mode};
use crate::sshd::Sshd;
use bystanders::Bystanders;
use plan::{Kind, Plan};
use report::Tally;
use scene::{Traffic, WrapClient};

/// Bystanders started before the first iteration.
const BYSTANDERS: usize = 4;

/// A run's state, across iterations.
pub struct Run {
    /// The run's cookie: every process it starts carries it; its ledger is the run's.
    cookie: Cookie,
    /// The test sshd on localhost, when the host has one.
    sshd: Option<Sshd>,
    /// The gateway's configuration file.
    config: PathBuf,
    /// Bumped by each reload (the per-session server changes).
    generation: u32,
    /// The strangers.
    bystanders: Bystanders,
    /// The seeded choices.
    plan: Plan,
    /// Cgroups on (`Mode::Cgroup`), or forced off (`Mode::NoCgroup`: keepers above the shims).
    mode: Mode,
    /// What the run counted.
    tally: Tally,
}

#[test]
fn chaos() {
    run_chaos(Mode::Cgroup, plan::DEFAULT_SEED);
}

/// The same chaos with cgroups forced off: what a SIGKILLed shim leaves must end by its keeper
/// (and the keeper itself is a participant to kill).
#[test]
fn chaos_without_cgroups() {
    run_chaos(Mode::NoCgroup, plan::DEFAULT_SEED_NO_CGROUP);
}

fn run_chaos(mode: Mode, default_seed: u64) {
    let (seed, iterations) = plan::from_env(default_seed);
    let keepers = mode == Mode::NoCgroup;
    let cookie = Cookie::new();
    let sshd = Sshd::start();
    let config = scene::write_config(&cookie, &scene::config(&cookie, sshd.as_ref(), 0));
    let ssh = sshd.is_some();
    let plan = Plan::new(seed, ssh, keepers);
    let iterations = iterations.unwrap_or_else(|| plan.round());
    eprintln!(
        "chaos: seed {seed:#x}, {iterations} iterations, {mode:?} (replay: {}={seed:#x} {}={iterations})",
        plan::SEED_VAR,
        plan::ITERATIONS_VAR
    );
    let mut run = Run {
        tally: Tally {
            seed,
            ssh,
            keepers,
            ..Tally::default()
        },
        cookie,
        sshd,
        config,
        generation: 0,
        bystanders: Bystanders::start(BYSTANDERS),
        plan,
        mode,
    };
    for i in 0..iterations {
        iteration(&mut run, i);
        run.tally.iterations = i + 1;
    }
    finish(run);
}

/// One iteration: start, call, kill, restart, end, check.
fn iteration(run: &mut Run, i: u32) {
    let step = run.plan.next_step();
    eprintln!("chaos: iteration {i}: {step:?}");
    let gw = kill::started(run);
    let clients = scene::sessions(&gw, step.sessions, run.sshd.is_some()).unwrap_or_else(|e| {
        run.tally.note(i, "a session did not start", &[e]);
        Vec::new()
    });
    let mut wrap = step.wrap.then(|| WrapClient::start(&run.cookie, run.mode));
    let traffic = Traffic::start(&clients);
    traffic.reach(step.calls);
    let (killed, gw) = kill::strike(run, step, gw, wrap.as_mut(), &traffic);
    let calls = traffic.stop();
    if killed {
        *run.tally.killed.entry(step.kind).or_default() += 1;
    } else {
        run.tally.no_target += 1;
    }
    eprintln!(
        "chaos: iteration {i}: killed {} ({killed}) after {calls} calls",
        step.kind.name()
    );
    check_strangers(run, i, "after the kill and any restart's sweep");
    // A session opened while the gateway is still learning of a dead shared instance may get
    // that instance's error once; the next one must be served (by a fresh instance).
    let mut served = Ok(());
    if !eventually(SLACK, || {
        served = scene::session(&gw, "shared").map(drop);
        served.is_ok()
    }) {
        let e = served.err().unwrap_or_default();
        run.tally.note(i, "the gateway did not serve after the kill", &[e]);
    }
    drop(clients);
    if let Some(w) = wrap {
        w.end(&run.cookie);
    }
    gw.signal(Signal::SIGTERM);
    let mut gw = gw;
    let status = gw.wait_exit(SLACK + checks::SETTLE);
    if !status.success() {
        run.tally.note(
            i,
            "the gateway's SIGTERM did not end it cleanly",
            &[format!("{status}: {}", gw.log())],
        );
    }
    let orphans = checks::orphans(&run.cookie, &[]);
    if run.mode == Mode::NoCgroup && step.kind == Kind::Sweep {
        // Without a cgroup, a power loss (the shim and its keeper killed at once) leaves an
        // `env -i` escapee born after its shim's last tree walk: beyond reach by design
        // (README, "What this closes, and the window left"). Counted, not a finding; any
        // other survivor is.
        run.tally.window += orphans.unrecorded_env_i.len();
        for o in &orphans.unrecorded_env_i {
            eprintln!("chaos: iteration {i}: in the window without a cgroup: {o}");
        }
        let others: Vec<String> = orphans
            .all
            .into_iter()
            .filter(|o| !orphans.unrecorded_env_i.contains(o))
            .collect();
        run.tally.orphans += others.len();
        run.tally.note(i, "survived its scope", &others);
    } else {
        run.tally.orphans += orphans.all.len();
        run.tally.note(i, "survived its scope", &orphans.all);
    }
    check_strangers(run, i, "at the iteration's end");
    let failed = checks::ledger(&run.cookie);
    run.tally.ledger_checks += 1;
    if failed.is_empty() {
        run.tally.ledger_passed += 1;
    }
    run.tally.note(i, "ledger check", &failed);
    if step.recycle {
        let dead = checks::dead_recorded_servers(&run.cookie);
        if let Some(pid) = targets::pick(&dead, run.plan.rng.next()) {
            run.bystanders.recycle(pid, bystanders::ENDED_CAP);
        }
    }
}

/// Counts and notes bystanders newly found dead.
fn check_strangers(run: &mut Run, i: u32, when: &str) {
    let dead = run.bystanders.signalled();
    if dead.len() > run.tally.strangers_signalled {
        let new = dead[run.tally.strangers_signalled..].to_vec();
        run.tally.note(i, &format!("stranger signalled ({when})"), &new);
        run.tally.strangers_signalled = dead.len();
    }
}

/// The last sweep (`tether reap`), the last checks, the table; fails on any finding.
fn finish(mut run: Run) {
    let report = crate::harness::reap(&run.cookie, &[]);
    let i = run.tally.iterations;
    let orphans = checks::orphans(&run.cookie, &[]).all;
    run.tally.orphans += orphans.len();
    run.tally.note(i, "survived the final reap", &orphans);
    check_strangers(&mut run, i, "after the final reap");
    if !crate::harness::actions(&report, "killed").is_empty() {
        run.tally
            .note(i, "the final reap had something to kill", &[report.to_string()]);
    }
    run.tally.bystanders = (run.bystanders.len(), run.bystanders.recycled());
    run.tally.publish();
    let Run {
        tally,
        bystanders,
        cookie,
        sshd,
        ..
    } = run;
    bystanders.end();
    cookie.assert_none_survive(SLACK);
    drop(sshd);
    assert!(
        tally.findings.is_empty(),
        "the chaos run (seed {:#x}) found {} problem(s):\n{}",
        tally.seed,
        tally.findings.len(),
        tally.findings.join("\n")
    );
}
