//! Each live instance's process tree and containment, for `GET /v1/instances` (and so for the
//! dashboard and the live `tether ps`).
//!
//! Two sources, joined by instance id. The gateway knows what is live now (its instances and
//! their shims); the ledger, read through [`tether_supervisor::inventory`] exactly as `tether
//! ps` reads it, knows what each shim put in force (layers, cgroup) and finds processes by every
//! route (the server's recorded identity and its descendants, cgroup members, adopted
//! escapees, cookie carriers). The tree shown is the shim, then everything either source finds.
//! Without a ledger (`--no-ledger` hosts, a damaged file) the shim's own descendants still give
//! the tree, and the layers are unknown (shown as none).
//!
//! This reads `/proc` and SQLite, so it runs on a blocking thread, never on the runtime.

use std::collections::HashMap;

use tether_supervisor::inventory::{self, InstanceView, ProcessView};
use tether_supervisor::launch::LedgerChoice;
use tether_supervisor::ledger::Ledger;

/// What the ledger and `/proc` say about one instance.
#[derive(Debug, Default)]
pub struct Containment {
    /// The layers its shim put in force.
    pub layers: Vec<String>,
    /// Its cgroup, if it has one.
    pub cgroup: Option<String>,
    /// Its processes, the shim first.
    pub tree: Vec<ProcessView>,
}

/// The containment of every instance in `shims` (instance id → its shim's pid), read from the
/// ledger `ledger` chose and from `/proc`.
pub fn read(ledger: &LedgerChoice, shims: &[(String, Option<u32>)]) -> HashMap<String, Containment> {
    let mut views = ledger_views(ledger);
    shims
        .iter()
        .map(|(id, shim)| {
            let view = views.remove(id);
            let mut tree = shim
                .and_then(|p| i32::try_from(p).ok())
                .map(inventory::tree_of)
                .unwrap_or_default();
            let (layers, cgroup) = match view {
                Some(v) => {
                    join(&mut tree, v.processes);
                    (v.layers, v.cgroup)
                }
                None => (Vec::new(), None),
            };
            (id.clone(), Containment { layers, cgroup, tree })
        })
        .collect()
}

/// Adds what the ledger's view found to the shim's tree: a process both found is named the
/// ledger's way (`server`, `cgroup`, `adopted`, `cookie` say more than `descendant`).
fn join(tree: &mut Vec<ProcessView>, found: Vec<ProcessView>) {
    for p in found {
        match tree.iter_mut().find(|t| t.pid == p.pid) {
            Some(t) if matches!(t.found_by, "descendant" | "watchdog") => t.found_by = p.found_by,
            Some(_) => {}
            None => tree.push(p),
        }
    }
}

/// The ledger's view of every open instance, by id; empty when there is no ledger or it
/// cannot be read (the trees then come from the shims alone).
fn ledger_views(choice: &LedgerChoice) -> HashMap<String, InstanceView> {
    let Some(dir) = choice.dir() else {
        return HashMap::new();
    };
    let listing = dir
        .and_then(|d| Ledger::open(&d).map_err(|e| e.to_string()))
        .and_then(|l| inventory::list(&l, false).map_err(|e| e.to_string()));
    match listing {
        Ok(listing) => listing
            .owners
            .into_iter()
            .flat_map(|o| o.instances)
            .map(|i| (i.id.clone(), i))
            .collect(),
        Err(e) => {
            tracing::debug!("admin API: the ledger cannot be read ({e}); trees from the shims alone");
            HashMap::new()
        }
    }
}
