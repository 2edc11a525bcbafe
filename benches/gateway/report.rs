//! The report: Markdown tables on stdout, every ratio against the direct baseline of the same
//! run, and the targets of issue 12 with what was measured against each.

use std::time::Duration;

use crate::churn::Churn;
use crate::latency::Row;
use crate::memory::{Rss, IDLE_CONNECTED, IDLE_SESSIONS};
use crate::run::{FLOOR, LATENCY_ROUNDS, ROUNDS};
use crate::teardown::{Teardown, GRACE_MS};
use crate::thousand::{Thousand, SESSIONS};
use crate::throughput::Cell;

pub struct PerServer {
    pub server: &'static str,
    pub latency: Vec<Row>,
    pub throughput: Vec<Cell>,
    pub peers: Vec<(&'static str, Rss)>,
}

pub struct Results {
    pub per_server: Vec<PerServer>,
    /// The gateway with the shared instances: idle, and its peak after every load.
    pub gateway: Rss,
    /// KiB per idle session: over one connection, and each with its own.
    pub per_session: (f64, f64),
    pub teardown: Teardown,
    pub churn: Churn,
    pub thousand: Thousand,
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn opt_us(v: Option<f64>) -> String {
    v.map_or_else(|| "".into(), |v| format!("{v:.0} µs"))
}

pub fn print(r: &Results, took: Duration) {
    println!("## `cargo bench --bench gateway`\n");
    println!(
        "Medians of {LATENCY_ROUNDS} rounds (latency) and {ROUNDS} (throughput); every ratio is against the direct stdio baseline of the same run. The run took {:.0} s.\n",
        took.as_secs_f64()
    );
    for s in &r.per_server {
        latency(s);
        throughput(s);
    }
    memory(r);
    teardown(&r.teardown);
    churn(&r.churn);
    thousand(&r.thousand);
    targets(r);
}

fn latency(s: &PerServer) {
    let Some(base) = s.latency.first() else { return };
    println!("### {}: sequential `echo` round trips\n", s.server);
    let floor = find(s, FLOOR).map_or(f64::NAN, |f| f.p50);
    println!("| way | p50 | p99 | p50 ×direct | p99 ×direct | p50 added | p50 ×floor | CPU per call in between |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &s.latency {
        println!(
            "| {} | {:.0} µs | {:.0} µs | ×{:.2} | ×{:.2} | {:+.0} µs | ×{:.2} | {} |",
            row.label,
            row.p50,
            row.p99,
            row.p50 / base.p50,
            row.p99 / base.p99,
            row.p50 - base.p50,
            row.p50 / floor,
            opt_us(row.cpu)
        );
    }
    println!();
}

fn throughput(s: &PerServer) {
    println!(
        "### {}: throughput (calls/s), against as many direct server processes as clients\n",
        s.server
    );
    println!("| clients | way | calls/s | ×direct | CPU per call in between |");
    println!("|---:|---|---:|---:|---:|");
    for c in &s.throughput {
        let direct = s
            .throughput
            .iter()
            .find(|d| d.clients == c.clients && d.cpu.is_none() && d.label == "direct stdio")
            .map_or(f64::NAN, |d| d.calls_per_s);
        println!(
            "| {} | {} | {:.0} | ×{:.2} | {} |",
            c.clients,
            c.label,
            c.calls_per_s,
            c.calls_per_s / direct,
            opt_us(c.cpu)
        );
    }
    println!();
}

fn memory(r: &Results) {
    println!("### Memory (resident)\n");
    println!("| process | idle | peak under load |\n|---|---:|---:|");
    println!(
        "| `tether serve` (two shared instances) | {} | {} |",
        mib(r.gateway.idle),
        mib(r.gateway.peak)
    );
    for s in &r.per_server {
        for (name, rss) in &s.peers {
            println!(
                "| {name} in front of {} | {} | {} |",
                s.server,
                mib(rss.idle),
                mib(rss.peak)
            );
        }
    }
    println!(
        "\nPer idle session in `tether serve`: {:.1} KiB ({IDLE_SESSIONS} opened over one connection); {:.1} KiB with a kept-alive connection of its own ({IDLE_CONNECTED} opened).\n",
        r.per_session.0, r.per_session.1
    );
}

fn teardown(t: &Teardown) {
    println!("### Teardown and `tether wrap`\n");
    println!("| what | median |\n|---|---:|");
    println!(
        "| session ended (DELETE) → last process dead, cooperative server | {:.1} ms |",
        t.cooperative
    );
    println!(
        "| the same, a server that ignores EOF and SIGTERM (grace {GRACE_MS} ms) | {:.1} ms |",
        t.stubborn
    );
    println!(
        "| start-up, spawn → `initialize` answer: direct / `tether wrap` | {:.2} / {:.2} ms (+{:.2}) |",
        t.start_direct,
        t.start_wrapped,
        t.start_wrapped - t.start_direct
    );
    println!(
        "| teardown, stdin closed → exit: direct / `tether wrap` | {:.2} / {:.2} ms (+{:.2}) |\n",
        t.end_direct,
        t.end_wrapped,
        t.end_wrapped - t.end_direct
    );
}

fn churn(c: &Churn) {
    println!("### Session churn (`session` instances: open, one call, DELETE)\n");
    println!(
        "{:.0} sessions/s ({} sessions). The gateway before / at the busiest sample / after every instance ended:\n",
        c.sessions_per_s, c.sessions
    );
    println!("| | before | busiest | after |\n|---|---:|---:|---:|");
    println!(
        "| processes below it | {} | {} | {} |",
        c.before.processes, c.peak.processes, c.after.processes
    );
    println!("| its fds | {} | {} | {} |", c.before.fds, c.peak.fds, c.after.fds);
    println!(
        "| its RSS | {} | {} | {} |\n",
        mib(c.before.rss_kib),
        mib(c.peak.rss_kib),
        mib(c.after.rss_kib)
    );
}

fn thousand(t: &Thousand) {
    println!("### {SESSIONS} sessions at once, each with its own fixture instance\n");
    println!("| what | figure |\n|---|---:|");
    println!("| opened, first call answered (instance started) | {:.1} s |", t.open_s);
    println!(
        "| servers running / processes below the gateway | {} / {} |",
        t.servers, t.processes
    );
    println!(
        "| gateway RSS / fds with all of them | {} / {} |",
        mib(t.rss_kib),
        t.fds
    );
    println!(
        "| per instance, shim + watchdog: PSS / private | {:.0} / {:.0} KiB |",
        t.overhead_pss_kib, t.overhead_private_kib
    );
    println!("| every session DELETEd → last process gone | {:.1} s |", t.end_s);
    println!("| processes left | {} |\n", t.left);
}

fn find<'a>(s: &'a PerServer, label: &str) -> Option<&'a Row> {
    s.latency.iter().find(|r| r.label == label)
}

fn cell<'a>(s: &'a PerServer, label: &str, clients: usize) -> Option<&'a Cell> {
    s.throughput.iter().find(|c| c.label == label && c.clients == clients)
}

fn targets(r: &Results) {
    println!("### Targets (issue 12)\n");
    println!("| target | measured | met |\n|---|---:|:---:|");
    let line = |what: String, measured: String, met: bool| {
        println!("| {what} | {measured} | {} |", if met { "yes" } else { "**no**" });
    };
    for s in &r.per_server {
        let Some(base) = s.latency.first() else { continue };
        for label in ["`/mcp/{server}`", "`/mcp` (aggregated)"] {
            if let Some(row) = find(s, label) {
                let (p50, p99) = (row.p50 / base.p50, row.p99 / base.p99);
                if s.server == "everything" {
                    line(
                        format!("{label} p50 ≤ ×1.2 direct ({})", s.server),
                        format!("×{p50:.2}"),
                        p50 <= 1.2,
                    );
                }
                if let Some(floor) = find(s, FLOOR) {
                    line(
                        format!(
                            "{label} p50 within ×1.1 of the floor's (the floor: ×{:.2} direct; {})",
                            floor.p50 / base.p50,
                            s.server
                        ),
                        format!("×{:.2} of the floor", row.p50 / floor.p50),
                        row.p50 <= floor.p50 * 1.1,
                    );
                }
                line(
                    format!("{label} p99 ≤ ×1.5 direct ({})", s.server),
                    format!("×{p99:.2}"),
                    p99 <= 1.5,
                );
            }
        }
        let direct8 = cell(s, "direct stdio", 8).map_or(f64::NAN, |c| c.calls_per_s);
        if let Some(c) = cell(s, "one `shared` instance", 8) {
            let x = c.calls_per_s / direct8;
            line(
                format!("8 clients, one shared instance ≥ ×1.5 of 8 direct ({})", s.server),
                format!("×{x:.2}"),
                x >= 1.5,
            );
            let cpu = c.cpu.unwrap_or(f64::NAN);
            line(
                format!("gateway CPU ≤ 30 µs per call at 8 clients ({})", s.server),
                format!("{cpu:.0} µs"),
                cpu <= 30.0,
            );
        }
        if let Some(c) = cell(s, "`session` instances", 8) {
            let x = c.calls_per_s / direct8;
            line(
                format!("8 clients, session instances ≥ ×0.8 of 8 direct ({})", s.server),
                format!("×{x:.2}"),
                x >= 0.8,
            );
        }
    }
    let peak_mib = r.gateway.peak as f64 / 1024.0;
    line(
        "gateway RSS ≤ 30 MB (peak under load)".into(),
        format!("{peak_mib:.1} MiB"),
        peak_mib * 1.048_576 <= 30.0,
    );
    let (alone, connected) = r.per_session;
    line(
        "≤ 50 KB per idle session".into(),
        format!("{alone:.1} KiB"),
        alone * 1.024 <= 50.0,
    );
    line(
        "≤ 50 KB per idle session, each with its own kept-alive connection".into(),
        format!("{connected:.1} KiB"),
        connected * 1.024 <= 50.0,
    );
    let t = &r.teardown;
    line(
        "teardown ≤ 20 ms, cooperative".into(),
        format!("{:.1} ms", t.cooperative),
        t.cooperative <= 20.0,
    );
    line(
        format!("teardown ≤ grace ({GRACE_MS} ms) + 20 ms, stubborn"),
        format!("{:.1} ms", t.stubborn),
        t.stubborn <= GRACE_MS as f64 + 20.0,
    );
    let up = t.start_wrapped - t.start_direct;
    line(
        "`tether wrap` start-up ≤ +2 ms".into(),
        format!("{up:+.2} ms"),
        up <= 2.0,
    );
    let down = t.end_wrapped - t.end_direct;
    line(
        "`tether wrap` teardown ≤ +1 ms".into(),
        format!("{down:+.2} ms"),
        down <= 1.0,
    );
    let th = &r.thousand;
    line(
        "per instance (shim + watchdog) PSS ≤ 1 MiB".into(),
        format!("{:.0} KiB", th.overhead_pss_kib),
        th.overhead_pss_kib <= 1024.0,
    );
    line(
        "per instance private memory ≤ 512 KiB".into(),
        format!("{:.0} KiB", th.overhead_private_kib),
        th.overhead_private_kib <= 512.0,
    );
    line(
        format!("{SESSIONS} sessions: all served, all ended, none left"),
        format!("{} servers, {} left", th.servers, th.left),
        th.servers == SESSIONS && th.left == 0,
    );
    println!();
}
