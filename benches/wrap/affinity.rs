//! Which CPUs the bench's thread runs on, through nix's safe `sched_getaffinity` and
//! `sched_setaffinity`.
//!
//! The pinned round trips need it: a process inherits the affinity of the thread that spawns
//! it, so pinning this thread before a spawn places the server, and pinning it again after
//! places the client.

use anyhow::{ensure, Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Pid 0 names the calling thread.
const THIS_THREAD: Pid = Pid::from_raw(0);

/// The CPUs this thread may run on; called before any pinning, that is every CPU the bench
/// was given.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(THIS_THREAD).context("sched_getaffinity")?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    ensure!(!cpus.is_empty(), "empty CPU affinity mask");
    Ok(cpus)
}

/// Restricts the calling thread (and so the processes it spawns from now on) to `cpus`.
pub fn set_thread_affinity(cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)
            .with_context(|| format!("CPU numbers {cpus:?} beyond CPU_SETSIZE"))?;
    }
    sched_setaffinity(THIS_THREAD, &set).with_context(|| format!("sched_setaffinity({cpus:?})"))
}
