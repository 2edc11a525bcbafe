//! The doctor's [`Diagnosis`] as text for people: the host report, then the ledger, the orphans
//! and the unknown cookie carriers, each problem said once with its fix under it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tether_supervisor::host::render_text;
use tether_supervisor::ids::short;

use super::{Diagnosis, Orphan};

/// Renders the whole diagnosis.
pub fn render(d: &Diagnosis) -> String {
    let mut out = render_text(&d.host);
    let path = if d.ledger.path.is_empty() {
        "none"
    } else {
        d.ledger.path.as_str()
    };
    let _ = writeln!(out, "\nledger: {path} ({})", d.ledger.detail);
    match (&d.ledger.fix, &d.ledger.advice) {
        (Some(fix), Some(advice)) => {
            let _ = writeln!(out, "  fix: {fix}\n    ({advice})");
        }
        (None, Some(advice)) => {
            let _ = writeln!(out, "  fix: {advice}");
        }
        _ => {}
    }
    match &d.orphans {
        None => {
            let _ = writeln!(out, "orphans: unknown, since the ledger cannot be read");
        }
        Some(orphans) => render_orphans(&mut out, orphans),
    }
    render_unknown(&mut out, &d.unknown_cookies, d.orphans.is_some());
    out
}

fn render_orphans(out: &mut String, orphans: &[Orphan]) {
    if orphans.is_empty() {
        let _ = writeln!(out, "orphans: none");
        return;
    }
    let mut instances: Vec<&str> = orphans.iter().map(|o| o.instance.as_str()).collect();
    instances.sort_unstable();
    instances.dedup();
    let _ = writeln!(out, "orphans: {} instance(s) need `tether reap`", instances.len());
    for o in orphans {
        let what = match (o.pid, &o.cgroup) {
            (Some(pid), _) => format!("pid {pid} [{} {}]", o.server, short(&o.instance)),
            (None, Some(c)) => format!("{c} [{} {}]", o.server, short(&o.instance)),
            (None, None) => format!("instance {} [{}]", short(&o.instance), o.server),
        };
        let _ = writeln!(out, "  {what}: {}", o.reason);
        let _ = writeln!(out, "    fix: {}", o.fix);
    }
}

/// The cookie carriers no ledger row explains, by instance. `ledger_read` tells why: the ledger
/// has no record of them, or it could not be read at all.
fn render_unknown(out: &mut String, carriers: &[Orphan], ledger_read: bool) {
    if carriers.is_empty() {
        if !ledger_read {
            let _ = writeln!(
                out,
                "cookie carriers: none (/proc shows no process carrying a Tether cookie)"
            );
        }
        return;
    }
    let why = if ledger_read {
        "this ledger has no record of them"
    } else {
        "unverified, since the ledger cannot be read"
    };
    let _ = writeln!(
        out,
        "cookie carriers: {} process(es) carry a Tether cookie; {why}. Left alone: another state \
         directory's Tether may own them (`tether --state-dir <its dir> ps`); else end them with kill -s KILL <pid>",
        carriers.len()
    );
    let mut by_instance: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in carriers {
        if let Some(pid) = c.pid {
            by_instance.entry(&c.instance).or_default().push(pid.to_string());
        }
    }
    for (instance, pids) in by_instance {
        let _ = writeln!(out, "  instance {}: pids {}", short(instance), pids.join(" "));
    }
}
