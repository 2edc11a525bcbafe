//! The kill of one iteration: SIGKILL of the drawn participant at the drawn moment, and the
//! restart of what should run again (a killed gateway is started again on the same state
//! directory and configuration: its start-up sweep must end what is left).

use nix::sys::signal::Signal;

use super::plan::{Kind, Step};
use super::scene::{self, Traffic, WrapClient};
use super::targets::{self, kill, pick};
use super::{bystanders, Run};
use crate::gateway::support::{Gateway, SLACK};
use crate::harness::eventually;

/// Most calls between a reload's SIGHUP and the gateway's SIGKILL (about 400 ms of calls here).
const RELOAD_CALLS: u64 = 30;

/// Kills `step.kind`'s victim; returns whether something was killed, and the gateway that runs
/// now (`gw`, or its successor). `traffic` runs meanwhile: its calls count out the moments.
pub fn strike(
    run: &mut Run,
    step: Step,
    gw: Gateway,
    wrap: Option<&mut WrapClient>,
    traffic: &Traffic,
) -> (bool, Gateway) {
    let cookie = &run.cookie;
    let one = |pids: Vec<i32>| pick(&pids, step.victim).is_some_and(kill);
    match step.kind {
        Kind::Shim => (one(targets::shims(cookie)), gw),
        Kind::Watchdog => (one(targets::named(cookie, "tether-watchdog")), gw),
        Kind::Keeper => (one(targets::named(cookie, "tether-keeper")), gw),
        Kind::SshClient => (one(targets::named(cookie, "ssh")), gw),
        Kind::Server => (one(targets::servers(cookie)), gw),
        Kind::Client => (wrap.is_some_and(|w| w.kill(cookie)), gw),
        Kind::Gateway => (true, restart(run, gw)),
        Kind::Reload => {
            run.generation += 1;
            let text = scene::config(&run.cookie, run.sshd.as_ref(), run.generation);
            std::fs::write(&run.config, text).expect("rewriting the configuration");
            let made = traffic.made();
            gw.signal(Signal::SIGHUP);
            // The drawn moment inside the reload, counted in calls made since the SIGHUP.
            traffic.reach(made + run.plan.rng.below(RELOAD_CALLS + 1));
            (true, restart(run, gw))
        }
        Kind::Sweep => (true, power_loss_then_sweep(run, step, gw)),
    }
}

/// SIGKILLs the gateway, waits for it, and starts the next one.
fn restart(run: &mut Run, mut gw: Gateway) -> Gateway {
    gw.signal(Signal::SIGKILL);
    gw.wait_exit(SLACK);
    started(run)
}

/// Starts the run's gateway and counts what its start-up sweep did.
pub fn started(run: &mut Run) -> Gateway {
    let gw = scene::gateway(&run.cookie, &run.config, run.mode);
    run.tally.count_sweep(&gw.log());
    gw
}

/// Every shim, watchdog and keeper, then the gateway, die at once (as in a power loss that spared the
/// servers); bystanders may take the pids of a dead shim and of a server that died after it,
/// their rows still open; the next gateway is SIGKILLed while it sweeps (frozen at
/// `step.sweep_point`); the one after must finish the sweep, and leave the bystanders alone.
fn power_loss_then_sweep(run: &mut Run, step: Step, mut gw: Gateway) -> Gateway {
    let cookie = &run.cookie;
    let shims = targets::shims(cookie);
    for pid in targets::named(cookie, "tether-watchdog")
        .into_iter()
        .chain(targets::named(cookie, "tether-keeper"))
        .chain(shims.iter().copied())
    {
        kill(pid);
    }
    // The gateway (or a wrap's shell) reaps its dead shims while it lives: their pids are then
    // free for a stranger.
    let gone = |p: &i32| !std::path::Path::new(&format!("/proc/{p}")).exists();
    eventually(SLACK, || shims.iter().all(gone));
    gw.signal(Signal::SIGKILL);
    gw.wait_exit(SLACK);
    if step.recycle {
        let freed: Vec<i32> = shims.iter().copied().filter(gone).collect();
        if let Some(pid) = pick(&freed, step.victim) {
            run.bystanders.recycle(pid, bystanders::SWEPT_CAP);
        }
        // The servers died with their shims (pdeathsig); PID 1 reaps them (on this VM within a
        // second or two), and a stranger takes one's pid while its row is still open: the
        // sweep must find the recorded identity changed, and leave the stranger alone. (A
        // server whose process group lives on keeps its pid from reuse: the local `ssh` of an
        // SSH instance is the one whose pid frees.)
        if let Some(pid) = pick(&targets::dead_servers(&run.cookie), step.victim) {
            run.bystanders.recycle(pid, bystanders::SWEPT_CAP);
        }
    }
    let launcher = format!("TETHER_FAILPOINT={}", step.sweep_point);
    let (mut frozen, log) = Gateway::spawn_via(
        &["env", &launcher],
        &run.cookie,
        run.mode,
        &run.config,
        &["--listen", "127.0.0.1:0"],
    );
    let pid = frozen.id() as i32;
    let stopped = eventually(SLACK, || tether_supervisor::process::procfs::state_of(pid) == Some('T'));
    if !stopped {
        run.tally.note(
            run.tally.iterations,
            "the sweeping gateway never reached its failpoint",
            &[log.lines().join("\n")],
        );
    }
    let _ = frozen.kill();
    let _ = frozen.wait();
    started(run)
}
