//! `tether ps`: the ledger joined with `/proc` ([`tether_supervisor::inventory`]), as JSON or
//! as text for people: one block per owner, one per instance, one line per process.
//!
//! When a gateway answers on the state directory's admin socket, its own live view comes
//! first ([`super::ps_live`]: sessions, instances, process trees), then the ledger's other
//! owners (`tether wrap`s, other gateways); `--ledger` shows the ledger's view alone.
//!
//! When the ledger cannot be used, it still shows what `/proc` alone shows (the cookie
//! carriers, by instance), marked unverified, says once what is wrong with the ledger and how
//! to fix it, and exits with 1.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use tether_supervisor::ids::short;
use tether_supervisor::inventory::unverified::{self, CookieInstance};
use tether_supervisor::inventory::{self, Listing, ProcessView};
use tether_supervisor::ledger::{location, Ledger};

use super::ledger_trouble::LedgerTrouble;

/// `tether ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list instances that have ended (the ledger view).
    #[arg(long)]
    pub all: bool,
    /// Show the ledger's view even when a gateway runs (by default a running gateway's own
    /// live view comes first: its sessions, instances and process trees).
    #[arg(long)]
    pub ledger: bool,
}

/// What `tether ps --json` prints when the ledger cannot be used.
#[derive(Debug, serde::Serialize)]
struct UnverifiedListing {
    /// Always false: no ledger vouches for any of this.
    verified: bool,
    /// What is wrong with the ledger, and the fix.
    ledger_problem: LedgerTrouble,
    /// The cookie carriers, by instance.
    instances: Vec<CookieInstance>,
}

/// Runs `tether ps`.
pub fn run(args: &PsArgs, state_dir: Option<&Path>) -> ExitCode {
    let dir = match location::state_dir(state_dir) {
        Ok(dir) => dir,
        Err(why) => return run_unverified(args, LedgerTrouble::no_state_dir(why)),
    };
    // The ledger is closed when this returns, before a fix naming its files is worked out.
    let listing = Ledger::open(&dir).and_then(|ledger| inventory::list(&ledger, args.all));
    let mut listing = match listing {
        Ok(listing) => listing,
        Err(e) => return run_unverified(args, LedgerTrouble::of(&e)),
    };
    if !(args.ledger || args.all) {
        if let Some(live) = super::ps_live::view(state_dir) {
            // The gateway's own instances are in its view; the ledger adds the others.
            listing.owners.retain(|o| o.id != live.owner());
            return if args.json {
                let mut json = live.json();
                json["others"] = serde_json::to_value(&listing).unwrap_or_default();
                print_json(&json)
            } else {
                print!("{}", live.text());
                if !listing.owners.is_empty() {
                    println!("\nnot this gateway's, from the ledger ({}):", listing.ledger);
                    print!("{}", text(&listing));
                }
                ExitCode::SUCCESS
            };
        }
    }
    if args.json {
        print_json(&listing)
    } else {
        print!("{}", text(&listing));
        ExitCode::SUCCESS
    }
}

fn run_unverified(args: &PsArgs, trouble: LedgerTrouble) -> ExitCode {
    let instances = unverified::list();
    if args.json {
        let _ = print_json(&UnverifiedListing {
            verified: false,
            ledger_problem: trouble,
            instances,
        });
    } else {
        tracing::error!("ps: {}\n{}", trouble.headline(), trouble.fix_text("  "));
        print!("{}", unverified_text(&instances));
    }
    ExitCode::FAILURE
}

fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("ps: encoding JSON: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Renders the cookie carriers found without a ledger.
fn unverified_text(instances: &[CookieInstance]) -> String {
    let mut out = String::from(
        "UNVERIFIED: the ledger cannot be read, so this is what /proc alone shows: processes carrying \
         a Tether cookie, by instance. Which Tether started them, and whether it is alive, is unknown.\n",
    );
    if instances.is_empty() {
        out.push_str("no process carries a Tether cookie\n");
    }
    for inst in instances {
        let owner = inst.owner.as_deref().map_or("unknown".into(), |o| short(o).to_string());
        let _ = writeln!(out, "  instance {} (owner {owner})", short(&inst.id));
        process_table(&mut out, &inst.processes);
    }
    out
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
            // A session with a server over HTTP is held by the gateway, not a shim.
            let http = (inst.command.first().map(String::as_str) == Some("http")).then(|| inst.command.get(1));
            let holder = match (inst.holder_alive, http.is_some()) {
                (true, _) => "",
                (false, false) => ", shim dead",
                (false, true) => ", gateway dead",
            };
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
            if let Some(url) = http {
                let url = url.map_or("?", String::as_str);
                let _ = writeln!(out, "    a session with {url} over HTTP (no process)");
                continue;
            }
            if inst.processes.is_empty() {
                let _ = writeln!(out, "    (no live process)");
                continue;
            }
            process_table(&mut out, &inst.processes);
        }
    }
    out
}

/// One line of a process table: a process as the ledger view or a gateway's admin API gives it.
pub(super) struct Row<'a> {
    pub pid: i64,
    pub ppid: Option<i64>,
    pub state: Option<char>,
    pub rss_kib: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub age_secs: Option<f64>,
    pub found_by: &'a str,
    pub cmdline: &'a str,
}

impl<'a> From<&'a ProcessView> for Row<'a> {
    fn from(p: &'a ProcessView) -> Row<'a> {
        Row {
            pid: p.pid.into(),
            ppid: p.ppid.map(i64::from),
            state: p.state,
            rss_kib: p.rss_kib,
            cpu_ms: p.cpu_ms,
            age_secs: p.age_secs,
            found_by: p.found_by,
            cmdline: &p.cmdline,
        }
    }
}

/// One header line, then one line per process.
fn process_table(out: &mut String, processes: &[ProcessView]) {
    rows_table(out, processes.iter().map(Row::from));
}

/// One header line, then one line per row.
pub(super) fn rows_table<'a>(out: &mut String, rows: impl Iterator<Item = Row<'a>>) {
    let _ = writeln!(
        out,
        "    {:>7} {:>7} S {:>9} {:>8} {:>8}  {:<10} CMD",
        "PID", "PPID", "RSS", "CPU", "AGE", "FOUND-BY"
    );
    for p in rows {
        let _ = writeln!(
            out,
            "    {:>7} {:>7} {} {:>9} {:>8} {:>8}  {:<10} {}",
            p.pid,
            p.ppid.map_or("-".into(), |v| v.to_string()),
            p.state.unwrap_or('?'),
            p.rss_kib.map_or("-".into(), |k| format!("{k}K")),
            p.cpu_ms.map_or("-".into(), |ms| format!("{ms}ms")),
            p.age_secs.map_or("-".into(), age),
            p.found_by,
            truncate(p.cmdline, 60)
        );
    }
}

/// A duration for people: `4.2s`, `17m`, `3.1h`.
pub(super) fn age(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.1}s"),
        s if s < 3600.0 => format!("{:.0}m", s / 60.0),
        s => format!("{:.1}h", s / 3600.0),
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}
