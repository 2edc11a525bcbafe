//! The escapee zoo: starting every requested sleeper and announcing readiness.
//!
//! Integration tests prove that a supervisor kills whole process trees, so the
//! fixture must not report ready until every sleeper, including orphaned
//! grandchildren in other sessions, has confirmed it is running.

use crate::args::{Args, SleeperKind};
use crate::notify::{self, Notice};
use crate::spawn::{self, Reexec};
use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Child;
use std::time::Duration;

/// How long all sleepers together get to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The sleepers `args` asks for, in spawn order.
pub fn plan(args: &Args) -> Vec<SleeperKind> {
    let mut kinds = vec![SleeperKind::Group; args.children];
    if args.setsid_escapee {
        kinds.push(SleeperKind::Setsid);
    }
    if args.double_fork {
        kinds.push(SleeperKind::DoubleFork);
    }
    if args.env_i_escapee {
        kinds.push(SleeperKind::EnvI);
    }
    kinds
}

/// Starts every planned sleeper and waits until each has reported ready.
///
/// On failure, every process known so far is SIGKILLed before returning the error.
pub fn spawn_all(args: &Args) -> Result<Vec<Notice>> {
    let kinds = plan(args);
    let mut notices = Vec::new();
    if kinds.is_empty() {
        return Ok(notices);
    }
    let mut direct = Vec::new();
    let result = start(args, &kinds, &mut direct, &mut notices);
    if result.is_err() {
        for pid in direct
            .iter()
            .map(|c: &Child| c.id() as i32)
            .chain(notices.iter().map(|n| n.pid))
        {
            // Best effort: the process may already be gone.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for child in &mut direct {
            let _ = child.wait();
        }
    }
    result?;
    notices.sort();
    // The direct sleepers are dropped un-waited: they are meant to outlive us.
    Ok(notices)
}

fn start(args: &Args, kinds: &[SleeperKind], direct: &mut Vec<Child>, notices: &mut Vec<Notice>) -> Result<()> {
    let exe = std::env::current_exe().context("resolving the fixture executable")?;
    // Close-on-exec in this process: only the child being started inherits it.
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the notify pipe")?;
    let r = Reexec {
        exe: &exe,
        tag: args.tag.as_deref(),
        notify_fd: write.as_raw_fd(),
        tough: args.tough_children,
    };
    let mut intermediates = Vec::new();
    for &kind in kinds {
        match kind {
            SleeperKind::Group => direct.push(spawn::sleeper(&r, kind, false, false)?),
            SleeperKind::Setsid => direct.push(spawn::sleeper(&r, kind, true, false)?),
            SleeperKind::DoubleFork | SleeperKind::EnvI => intermediates.push((kind, spawn::intermediate(&r, kind)?)),
        }
    }
    // From here only the sleepers (and exiting intermediates) hold write ends,
    // so a sleeper dying before it reports shows up as EOF rather than a hang.
    drop(write);
    for (kind, mut child) in intermediates {
        let status = child
            .wait()
            .with_context(|| format!("waiting for the {} intermediate", kind.name()))?;
        if !status.success() {
            anyhow::bail!("the {} intermediate failed: {status}", kind.name());
        }
    }
    notify::collect(&read, kinds.len(), READY_TIMEOUT, notices)
}

/// The one ready line written to stderr, without its newline.
pub fn ready_line(pid: u32, pgid: i32, sleepers: &[Notice]) -> String {
    let list: Vec<String> = sleepers
        .iter()
        .map(|n| format!("{}:{}", n.pid, n.kind.name()))
        .collect();
    format!(
        "tether-fixture: ready pid={pid} pgid={pgid} sleepers={}",
        list.join(",")
    )
}

/// Writes the ready line to stderr in a single write.
pub fn announce(sleepers: &[Notice]) -> Result<()> {
    let pgid = nix::unistd::getpgrp().as_raw();
    let line = ready_line(std::process::id(), pgid, sleepers) + "\n";
    let mut err = std::io::stderr().lock();
    err.write_all(line.as_bytes()).context("writing the ready line")?;
    err.flush().context("writing the ready line")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn zoo_plans_five_sleepers() {
        let a = Args::parse_from(["f", "--zoo"]).expand_zoo();
        use SleeperKind::*;
        assert_eq!(plan(&a), vec![Group, Group, Setsid, DoubleFork, EnvI]);
        assert!(plan(&Args::parse_from(["f"])).is_empty());
    }

    #[test]
    fn ready_line_format() {
        assert_eq!(ready_line(7, 7, &[]), "tether-fixture: ready pid=7 pgid=7 sleepers=");
        let s = [
            Notice {
                kind: SleeperKind::Group,
                pid: 10,
            },
            Notice {
                kind: SleeperKind::EnvI,
                pid: 12,
            },
        ];
        assert_eq!(
            ready_line(7, 5, &s),
            "tether-fixture: ready pid=7 pgid=5 sleepers=10:group,12:env-i"
        );
    }
}
