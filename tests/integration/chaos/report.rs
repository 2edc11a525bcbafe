//! The run's tally and its Markdown table (the README's and `docs/chaos.md`'s), printed and
//! written to `target/chaos-report.md`; and the findings that fail the run.

use std::collections::BTreeMap;

use super::plan::Kind;

/// What a run counted.
#[derive(Default)]
pub struct Tally {
    /// The seed it ran.
    pub seed: u64,
    /// Iterations completed.
    pub iterations: u32,
    /// Participants killed, by kind.
    pub killed: BTreeMap<Kind, u32>,
    /// Iterations whose drawn kind found no live candidate (nothing killed).
    pub no_target: u32,
    /// Processes that carried the run's cookie after every scope ended.
    pub orphans: usize,
    /// Without a cgroup: `env -i` escapees a power loss left, born after their shim's last
    /// tree walk (the documented window; not orphans of the guarantee's single kills).
    pub window: usize,
    /// Bystanders found dead.
    pub strangers_signalled: usize,
    /// Ledger checks (integrity, agreement with `/proc`) passed, and run.
    pub ledger_passed: u32,
    /// Ledger checks run.
    pub ledger_checks: u32,
    /// Bystanders in all, and those at recycled pids.
    pub bystanders: (usize, usize),
    /// Instances found orphaned, and processes killed, by the start-up sweeps.
    pub swept: (u64, u64),
    /// Sweep actions that left a recorded pid alone: another process holds it.
    pub strangers_spared: u64,
    /// Whether SSH instances ran.
    pub ssh: bool,
    /// Whether cgroups were forced off (instances under keepers).
    pub keepers: bool,
    /// Each failure, with its iteration: what survived or died, how.
    pub findings: Vec<String>,
}

impl Tally {
    /// Records failures of iteration `i` under `what`.
    pub fn note(&mut self, i: u32, what: &str, items: &[String]) {
        for item in items {
            self.findings
                .push(format!("seed {:#x} iteration {i}: {what}: {item}", self.seed));
        }
    }

    /// Counts what a gateway's start-up sweep said it did (`serve.rs`'s `log_sweep` lines).
    pub fn count_sweep(&mut self, log: &str) {
        for line in log.lines() {
            if let Some(rest) = line.split("start-up sweep: ").nth(1) {
                if rest.contains("orphaned instance(s)") {
                    let instances = rest.split(' ').next().and_then(|n| n.parse::<u64>().ok());
                    let killed = rest.split(", ").nth(1).and_then(|k| k.split(' ').next()?.parse().ok());
                    eprintln!("chaos: {}", line.trim());
                    self.swept.0 += instances.unwrap_or(0);
                    self.swept.1 += killed.unwrap_or(0);
                }
                if rest.contains("skipped (stranger)") {
                    eprintln!("chaos: {}", line.trim());
                    self.strangers_spared += 1;
                }
            }
        }
    }

    /// The Markdown table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            "| chaos run | result |".to_string(),
            "|---|---|".to_string(),
            format!("| seed | `{:#x}` |", self.seed),
            format!("| iterations | {} |", self.iterations),
            format!(
                "| cgroups | {} |",
                if self.keepers {
                    "forced off (keepers above the shims)"
                } else {
                    "on (one per instance)"
                }
            ),
            format!(
                "| SSH instances | {} |",
                if self.ssh {
                    "yes (test sshd on localhost)"
                } else {
                    "no (no sshd)"
                }
            ),
        ];
        for kind in Kind::ALL.into_iter().filter(|k| self.keepers || *k != Kind::Keeper) {
            let n = self.killed.get(&kind).copied().unwrap_or(0);
            rows.push(format!("| killed: {} | {n} |", kind.name()));
        }
        rows.push(format!("| iterations with no live candidate | {} |", self.no_target));
        rows.push(format!(
            "| start-up sweeps: orphaned instances ended, processes killed | {}, {} |",
            self.swept.0, self.swept.1
        ));
        rows.push(format!(
            "| recorded pids held by a bystander, left alone by a sweep | {} |",
            self.strangers_spared
        ));
        rows.push(format!(
            "| orphans (processes left carrying the cookie) | {} |",
            self.orphans
        ));
        if self.keepers {
            rows.push(format!(
                "| power losses without a cgroup: `env -i` escapees born after the last tree walk (the window left) | {} |",
                self.window
            ));
        }
        rows.push(format!(
            "| strangers signalled (of {} bystanders, {} at recycled pids) | {} |",
            self.bystanders.0, self.bystanders.1, self.strangers_signalled
        ));
        rows.push(format!(
            "| ledger checks passed | {} of {} |",
            self.ledger_passed, self.ledger_checks
        ));
        rows.join("\n") + "\n"
    }

    /// Prints the table and writes it next to the build's outputs.
    pub fn publish(&self) {
        let table = self.table();
        println!("\n{table}");
        let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(|t| {
            t.join(if self.keepers {
                "chaos-report-no-cgroup.md"
            } else {
                "chaos-report.md"
            })
        });
        if let Some(path) = target {
            if let Err(e) = std::fs::write(&path, &table) {
                eprintln!("chaos: cannot write {}: {e}", path.display());
            }
        }
    }
}
