//! Reading `/proc`: a process's `status` fields, its children and its name.
//!
//! The phases and the leak check look at the processes the bench started (the shim, its
//! watchdog, the fixture) from outside, as an operator would; this is the one place that
//! knows the file formats.

use std::fmt::Display;

use anyhow::{Context, Result};

/// `/proc/<pid>/<file>` as text; `pid` may be `self`.
pub fn read(pid: impl Display, file: &str) -> Result<String> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))
}

/// The number on the `name:` line of `text` (a `status`-like file), its `kB` unit dropped.
pub fn number(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A process's `/proc/<pid>/status`, read once.
pub struct Status {
    pid: i32,
    text: String,
}

impl Status {
    pub fn read(pid: i32) -> Result<Status> {
        Ok(Status {
            pid,
            text: read(pid, "status")?,
        })
    }

    /// The number on the `name:` line (in KiB for the memory fields).
    pub fn number(&self, name: &str) -> Result<u64> {
        number(&self.text, name).with_context(|| format!("no {name} in /proc/{}/status", self.pid))
    }
}

/// The children of thread `tid` of process `pid` (`self` for the bench).
pub fn children(pid: impl Display, tid: impl Display) -> Result<Vec<i32>> {
    let text = read(pid, &format!("task/{tid}/children"))?;
    Ok(text.split_whitespace().filter_map(|p| p.parse().ok()).collect())
}

/// The process's name (`comm`), if it still exists.
pub fn comm(pid: i32) -> Option<String> {
    read(pid, "comm").ok().map(|s| s.trim_end().to_owned())
}
