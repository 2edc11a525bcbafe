//! What `/proc` alone shows when the ledger cannot be read: the processes carrying a Tether
//! cookie, grouped by instance, each instance with the owner id its processes carry.
//!
//! Unverified by nature: without the ledger nothing says which Tether started an instance,
//! what its server is, or whether its shim is alive (another state directory's Tether may own
//! it), and a process that scrubbed its environment is not found at all.

use super::ProcessView;
use crate::process::cookie::OWNER_VAR;
use crate::process::procfs;
use crate::sweep;

/// One instance, as its cookie carriers show it.
#[derive(Debug, serde::Serialize)]
pub struct CookieInstance {
    /// Instance id (the cookie).
    pub id: String,
    /// The owner id in its carriers' environment (`TETHER_OWNER`), when readable.
    pub owner: Option<String>,
    /// Its live carriers, by pid.
    pub processes: Vec<ProcessView>,
}

/// Every instance with a live cookie carrier, by instance id.
pub fn list() -> Vec<CookieInstance> {
    let owner_prefix = format!("{OWNER_VAR}=");
    let mut instances: Vec<CookieInstance> = sweep::carriers_by_instance()
        .into_iter()
        .filter_map(|(id, mut pids)| {
            pids.sort_unstable();
            let owner = pids
                .iter()
                .find_map(|&pid| procfs::environ_value(pid, owner_prefix.as_bytes()));
            let processes: Vec<ProcessView> = pids
                .into_iter()
                .filter_map(|pid| ProcessView::of_live(pid, "cookie"))
                .collect();
            (!processes.is_empty()).then_some(CookieInstance { id, owner, processes })
        })
        .collect();
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    instances
}
