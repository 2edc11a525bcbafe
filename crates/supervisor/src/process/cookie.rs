//! The environment cookie: `TETHER_INSTANCE` and `TETHER_OWNER` in every process of an instance.
//!
//! Children inherit their parent's environment, so a sweep of `/proc/*/environ` finds every
//! descendant of an instance even after it left the process group and was re-parented to init.
//! It is the layer of last resort when no cgroup is available; a process that scrubs its
//! environment (`env -i`) escapes it, which is why it is not the only one.

use nix::sys::signal::Signal;

use super::pidfd::Pidfd;
use super::procfs;

/// Environment variable naming the instance a process belongs to.
pub const INSTANCE_VAR: &str = "TETHER_INSTANCE";
/// Environment variable naming the owner (shim or gateway) of that instance.
pub const OWNER_VAR: &str = "TETHER_OWNER";

/// The cookie of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// Random id of the instance; unique per spawn.
    pub instance: String,
    /// Random id of the Tether process that owns the instance.
    pub owner: String,
}

impl Cookie {
    /// The environment entries to give the server.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [(INSTANCE_VAR, &self.instance), (OWNER_VAR, &self.owner)]
    }

    /// The exact `TETHER_INSTANCE=…` entry searched for in `/proc/*/environ`.
    pub fn needle(&self) -> Vec<u8> {
        instance_needle(&self.instance)
    }

    /// Opens a pidfd on every live process that carries this cookie, except `exclude`. Each is
    /// verified after the pidfd was opened: the environment read must have been of the very
    /// process the pidfd holds, so a recycled pid is never returned.
    pub fn carriers(&self, exclude: &[i32]) -> Vec<Pidfd> {
        let needle = self.needle();
        let me = std::process::id() as i32;
        procfs::all_pids()
            .into_iter()
            .filter(|p| *p != me && !exclude.contains(p))
            .filter_map(|pid| verified_carrier(pid, &needle))
            .collect()
    }

    /// Sends `signal` to every carrier; returns the pidfds signalled, to wait on.
    pub fn signal_carriers(&self, signal: Signal, exclude: &[i32]) -> Vec<Pidfd> {
        let carriers = self.carriers(exclude);
        for c in &carriers {
            if let Err(e) = c.signal(signal) {
                tracing::warn!(
                    "could not send {signal} to pid {} carrying instance {}: {e}",
                    c.pid(),
                    self.instance
                );
            }
        }
        carriers
    }
}

/// The environment entry `TETHER_INSTANCE=<instance>` that marks the instance's processes.
pub fn instance_needle(instance: &str) -> Vec<u8> {
    format!("{INSTANCE_VAR}={instance}").into_bytes()
}

/// Opens `pid` and keeps it if it carries `needle`, proving the read matched the pidfd's process.
pub fn verified_carrier(pid: i32, needle: &[u8]) -> Option<Pidfd> {
    // Cheap pre-check first: most processes are strangers.
    if !procfs::environ_has(pid, needle) {
        return None;
    }
    let fd = Pidfd::open(pid).ok()?;
    // Re-read after opening: if the pidfd's process is still alive after this read, the pid
    // could not have been recycled in between, so the environment read was its own.
    (procfs::environ_has(pid, needle) && fd.is_alive()).then_some(fd)
}
