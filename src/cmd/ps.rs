//! `tether ps`: the ledger joined with `/proc` ([`tether_supervisor::inventory`]), as JSON or
//! as text for people: one block per owner, one per instance, one line per process.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use tether_supervisor::inventory::{self, Listing};
use tether_supervisor::ledger::{location, Ledger};
use tether_supervisor::sweep::short;

/// `tether ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list instances that have ended.
    #[arg(long)]
    pub all: bool,
}

/// Runs `tether ps`.
pub fn run(args: &PsArgs, state_dir: Option<&Path>) -> ExitCode {
    let run = || -> anyhow::Result<()> {
        let dir = location::state_dir(state_dir).map_err(anyhow::Error::msg)?;
        let ledger = Ledger::open(&dir)?;
        let listing = inventory::list(&ledger, args.all)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&listing).context("encoding JSON")?);
        } else {
            print!("{}", text(&listing));
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("ps: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Renders the listing.
fn text(listing: &Listing) -> String {
    let mut out = String::new();
    if listing.owners.is_empty() {
        let _ = writeln!(out, "no instances recorded in {}", listing.ledger);
        return out;
    }
    for owner in &listing.owners {
        let who = match (&owner.kind, owner.pid) {
            (Some(kind), Some(pid)) => format!("{kind} pid {pid}"),
            _ => "unregistered owner".to_string(),
        };
        let alive = if owner.alive { "alive" } else { "dead" };
        let _ = writeln!(out, "owner {} ({who}, {alive})", short(&owner.id));
        for inst in &owner.instances {
            let holder = if inst.holder_alive { "" } else { ", shim dead" };
            let _ = writeln!(
                out,
                "  instance {} {} [{}] {}{holder}; layers {}",
                short(&inst.id),
                inst.server,
                inst.scope,
                inst.state,
                if inst.layers.is_empty() {
                    "-".to_string()
                } else {
                    inst.layers.join(",")
                }
            );
            if let Some(r) = &inst.remote {
                let pid = r.pid.map_or("pid not reported yet".into(), |p| format!("pid {p}"));
                let state = match (&r.outcome, r.settled) {
                    (Some(o), _) => o.clone(),
                    (None, true) => "over".into(),
                    (None, false) => "running".into(),
                };
                let _ = writeln!(out, "    remote {} {pid}: {state}", r.destination);
            }
            if inst.processes.is_empty() {
                let _ = writeln!(out, "    (no live process)");
                continue;
            }
            let _ = writeln!(
                out,
                "    {:>7} {:>7} S {:>9} {:>8}  {:<10} CMD",
                "PID", "PPID", "RSS", "AGE", "FOUND-BY"
            );
            for p in &inst.processes {
                let _ = writeln!(
                    out,
                    "    {:>7} {:>7} {} {:>9} {:>8}  {:<10} {}",
                    p.pid,
                    p.ppid.map_or("-".into(), |v| v.to_string()),
                    p.state.unwrap_or('?'),
                    p.rss_kib.map_or("-".into(), |k| format!("{k}K")),
                    p.age_secs.map_or("-".into(), age),
                    p.found_by,
                    truncate(&p.cmdline, 60)
                );
            }
        }
    }
    out
}

fn age(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.1}s"),
        s if s < 3600.0 => format!("{:.0}m", s / 60.0),
        s => format!("{:.1}h", s / 3600.0),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}
