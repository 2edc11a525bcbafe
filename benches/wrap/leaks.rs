//! The final leak check: no process of this bench may outlive it.
//!
//! A process is the bench's if its `TETHER_INSTANCE` (environment) or its command line carries
//! this run's instance-id prefix; that finds the shim and watchdog as well as anything the
//! fixture left behind, and never mistakes the processes of tests running alongside for ours.
//! Whatever is found is SIGKILLed and reported, and the bench fails.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use tether_supervisor::process::cookie::INSTANCE_VAR;

use crate::context::Ctx;
use crate::procfs;

pub struct Leaks {
    /// Processes carrying one of this bench's instance ids (in their environment or command
    /// line, which catches the shim and watchdog too): must be empty.
    ours: Vec<(i32, String)>,
    /// Processes with a `TETHER_INSTANCE` from someone else (e.g. tests running alongside).
    foreign: usize,
    /// Children the bench has not reaped.
    children: Vec<i32>,
}

/// Looks for leftovers for up to two seconds (a tree being torn down may take a moment), then
/// SIGKILLs whatever of ours is still there.
pub fn check(ctx: &Ctx) -> Result<Leaks> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let leaks = scan(ctx)?;
        if leaks.clean() || Instant::now() >= deadline {
            for &(pid, _) in &leaks.ours {
                // Found by our own instance id, so it is ours to end.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            return Ok(leaks);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Leaks {
    /// Nothing of ours survived and no child is left unreaped.
    pub fn clean(&self) -> bool {
        self.ours.is_empty() && self.children.is_empty()
    }

    /// The line the report ends with.
    pub fn summary(&self, ctx: &Ctx) -> String {
        if self.clean() {
            format!(
                "Leak check: no process with a `{INSTANCE_VAR}` of this bench remains ({} instances started; {} other `{INSTANCE_VAR}` processes on the machine, not ours), and the bench has no child left.",
                ctx.instances_started(),
                self.foreign
            )
        } else {
            format!(
                "Leak check FAILED: processes of this bench remained (now SIGKILLed; pid, comm): {:?}; unreaped children: {:?}",
                self.ours, self.children
            )
        }
    }
}

fn scan(ctx: &Ctx) -> Result<Leaks> {
    let me = std::process::id();
    let var = format!("{INSTANCE_VAR}=");
    let mut leaks = Leaks {
        ours: Vec::new(),
        foreign: 0,
        children: Vec::new(),
    };
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        // Processes can vanish while we look; unreadable ones are skipped.
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let instance = environ
            .split(|&b| b == 0)
            .find_map(|kv| kv.strip_prefix(var.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let ours_by_env = instance.as_deref().is_some_and(|v| v.starts_with(&ctx.prefix));
        let ours_by_cmd = cmdline.split(|&b| b == 0).any(|a| a.starts_with(ctx.prefix.as_bytes()));
        if ours_by_env || ours_by_cmd {
            leaks.ours.push((pid, procfs::comm(pid).unwrap_or_default()));
        } else if instance.is_some() {
            leaks.foreign += 1;
        }
    }
    for task in std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")? {
        let Ok(task) = task else { continue };
        if let Ok(kids) = procfs::children("self", task.file_name().to_string_lossy()) {
            leaks.children.extend(kids);
        }
    }
    Ok(leaks)
}
