//! One pass over `/proc` that finds every process carrying a Tether instance cookie.
//!
//! Reading a process's environment is the expensive part of a sweep, so it is done once for
//! all instances, not once per instance: the result maps instance ids to the pids that carried
//! them at the time of the read. Callers must re-verify through a pidfd before signalling
//! ([`crate::process::cookie::verified_carrier`]), since any of these pids may have been
//! recycled since.

use std::collections::HashMap;

use crate::process::cookie::INSTANCE_VAR;
use crate::process::procfs;

/// Instance id → pids that carried its cookie.
pub fn carriers_by_instance() -> HashMap<String, Vec<i32>> {
    let me = std::process::id() as i32;
    let prefix = format!("{INSTANCE_VAR}=");
    let mut found: HashMap<String, Vec<i32>> = HashMap::new();
    for pid in procfs::all_pids().into_iter().filter(|&p| p != me) {
        if let Some(id) = procfs::environ_value(pid, prefix.as_bytes()) {
            found.entry(id).or_default().push(pid);
        }
    }
    found
}
