//! Phase 3: memory of a wrapped server's three processes (shim, watchdog, fixture; and the
//! keeper above the shim where no cgroup is in force) once the fixture is ready, and of a
//! directly started fixture for comparison.
//!
//! The shim stays resident for the server's whole life, so its footprint is the standing cost
//! of `tether wrap`; it is checked against a target. The shim's info lines also tell the
//! report which containment layers were in force.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::client::Server;
use crate::context::{Ctx, Mode};
use crate::messages::{check_initialize, initialize_request};
use crate::procfs;
use crate::progress;
use crate::smaps::{read_mem, rss_by_file, Mem};

/// Wrapped instances sampled.
pub const MEM_SAMPLES: usize = 3;
/// The shim's memory target.
pub const SHIM_RSS_TARGET_KIB: u64 = 2048;

pub struct Memory {
    /// Per wrapped sample: shim, watchdog, wrapped fixture.
    pub shim: Vec<Mem>,
    pub watchdog: Vec<Mem>,
    pub fixture: Vec<Mem>,
    /// The keeper above each shim, when one runs (no cgroup).
    pub keeper: Vec<Mem>,
    /// A directly started fixture, for comparison.
    pub direct: Mem,
    /// The shim's "containment …" info line, if it printed one.
    pub layers: Option<String>,
    /// The first shim's resident KiB per mapped file, largest first.
    pub shim_by_file: Vec<(String, u64)>,
}

pub fn measure(ctx: &Ctx) -> Result<Memory> {
    progress(format_args!("memory: {MEM_SAMPLES} wrapped instances"));
    let mut m = Memory {
        shim: Vec::new(),
        watchdog: Vec::new(),
        fixture: Vec::new(),
        keeper: Vec::new(),
        direct: Mem::default(),
        layers: None,
        shim_by_file: Vec::new(),
    };
    for _ in 0..MEM_SAMPLES {
        let mut server = Server::start(ctx, Mode::Wrapped, true, true)?;
        let (ready, before) = server.ready_line()?;
        let fixture_pid = ready_pid(&ready)?;
        let top = server.pid();
        let shim_pid = if procfs::comm(top).as_deref() == Some("tether-keeper") {
            m.keeper.push(read_mem(top)?);
            find_child(top, "tether")?
        } else {
            top
        };
        let watchdog_pid = find_child(shim_pid, "tether-watchdog")?;
        ensure!(
            procfs::children(shim_pid, shim_pid)?.contains(&fixture_pid),
            "the fixture (pid {fixture_pid}) is not a child of the shim (pid {shim_pid})"
        );
        m.shim.push(read_mem(shim_pid)?);
        if m.shim_by_file.is_empty() {
            m.shim_by_file = rss_by_file(shim_pid)?;
        }
        m.watchdog.push(read_mem(watchdog_pid)?);
        m.fixture.push(read_mem(fixture_pid)?);
        for l in &before {
            if l.contains("containment") {
                m.layers = containment_layers(l);
            } else {
                progress(format_args!("  shim said: {l}"));
            }
        }
        server.call(&initialize_request()).and_then(check_initialize)?;
        finish_ok_logged(server, Mode::Wrapped)?;
    }
    let mut direct = Server::start(ctx, Mode::Direct, true, false)?;
    let (ready, _) = direct.ready_line()?;
    ensure!(ready_pid(&ready)? == direct.pid(), "unexpected ready line {ready:?}");
    m.direct = read_mem(direct.pid())?;
    direct.finish_ok(Mode::Direct)?;
    Ok(m)
}

/// From "… containment a,b,c (cgroup /sys/fs/cgroup/…/tether-<id>)": the layers and where
/// the cgroups go, not this instance's id.
fn containment_layers(line: &str) -> Option<String> {
    line.split_once("containment ")
        .map(|(_, rest)| match rest.split_once(" (cgroup ") {
            Some((layers, dir)) => {
                let parent = Path::new(dir.trim_end_matches(')')).parent().map(Path::display);
                format!(
                    "{layers} (cgroups under {})",
                    parent.map_or("?".into(), |p| p.to_string())
                )
            }
            None => rest.to_owned(),
        })
}

/// Like [`Server::finish_ok`], and reports anything the shim said after the ready line other
/// than its info lines (stderr stays open until the exit, so the shim never writes to a closed
/// pipe).
fn finish_ok_logged(mut server: Server, mode: Mode) -> Result<()> {
    let (status, _) = server.finish()?;
    for l in server.rest_of_stderr() {
        if !l.contains(": info: ") {
            progress(format_args!("  shim said: {l}"));
        }
    }
    ensure!(status.success(), "{mode:?} server exited with {status}");
    Ok(())
}

fn ready_pid(ready: &str) -> Result<i32> {
    ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no pid in the ready line {ready:?}"))
}

/// The child of `parent` named `name`: the shim's `tether-watchdog` (it renames itself right
/// after the fork), or the keeper's `tether` (the shim).
fn find_child(parent: i32, name: &str) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let kids = procfs::children(parent, parent)?;
        if let Some(&pid) = kids.iter().find(|&&p| procfs::comm(p).as_deref() == Some(name)) {
            return Ok(pid);
        }
        ensure!(
            Instant::now() < deadline,
            "no child of pid {parent} is named {name}; children: {kids:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
