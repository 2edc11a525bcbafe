//! The doctor's report as text for a terminal: one aligned row per finding, advice under the
//! finding it fixes, then the guarantees. No colour, so it survives pipes and logs.

use std::fmt::Write as _;

use super::check::Status;
use super::guarantees::Verdict;
use super::probe::HostReport;

/// Total width the text is wrapped to.
const WIDTH: usize = 110;
/// Width of the status column.
const STATUS: usize = 10;
/// Width of the title column.
const TITLE: usize = 18;

/// Renders a host report for people.
pub fn render_text(report: &HostReport) -> String {
    let mut out = String::new();
    let kernel = report.kernel.as_ref().map_or("unknown", |k| k.release.as_str());
    let _ = writeln!(out, "Host: Linux {kernel}, cgroups {}", report.cgroup.layout.describe());
    let not_ok = report.checks.iter().filter(|c| c.status != Status::Ok).count();
    let _ = writeln!(
        out,
        "{} checks, {} ok, {not_ok} not ok\n",
        report.checks.len(),
        report.checks.len() - not_ok
    );

    let indent = 2 + STATUS + TITLE;
    for c in &report.checks {
        let head = format!("  {:<STATUS$}{:<TITLE$}", c.status.word(), c.id.title());
        out.push_str(&wrap(&head, &c.detail, indent));
        if let Some(advice) = &c.advice {
            out.push_str(&wrap(&format!("{:indent$}", ""), &format!("fix: {advice}"), indent));
        }
    }

    let _ = writeln!(out, "\nGuarantees");
    let indent = 2 + STATUS;
    for g in &report.guarantees {
        let word = match g.verdict {
            Verdict::Holds => "holds",
            Verdict::Degrades => "DEGRADES",
        };
        out.push_str(&wrap(&format!("  {word:<STATUS$}"), g.promise, indent));
        out.push_str(&wrap(&format!("{:indent$}", ""), &g.why, indent));
    }
    out
}

/// `head` followed by `text`, word-wrapped to [`WIDTH`] with continuation lines indented to
/// `indent` columns. Words longer than a line (paths) are kept whole.
fn wrap(head: &str, text: &str, indent: usize) -> String {
    let mut out = head.to_string();
    let mut column = head.chars().count();
    let mut first = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !first && column + 1 + len > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
            first = true;
        }
        if !first {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
        first = false;
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::check::{Check, CheckId};
    use crate::host::guarantees;
    use crate::host::probe::CgroupFacts;
    use crate::host::probes::layout::Layout;

    #[test]
    fn wraps_with_a_hanging_indent() {
        let text = "word ".repeat(40);
        let out = wrap("  head ", &text, 7);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH));
        assert!(lines[1..].iter().all(|l| l.starts_with("       word")));
    }

    #[test]
    fn shows_status_title_detail_and_fix_aligned() {
        let checks = vec![
            Check::ok(CheckId::Kernel, "uname(2) release 6.18"),
            Check::not_ok(CheckId::PidsV2, Status::Missing, "not offered", "boot with pure v2"),
        ];
        let report = HostReport {
            kernel: None,
            cgroup: CgroupFacts {
                layout: Layout::Hybrid,
                v2_mount: None,
                own_v2_dir: None,
                v2_writable: false,
                v1_pids_dir: None,
                pids_via: None,
            },
            proc: Default::default(),
            guarantees: guarantees::derive(&checks, None),
            checks,
        };
        let text = render_text(&report);
        assert!(
            text.contains("  ok        kernel            uname(2) release 6.18\n"),
            "{text}"
        );
        assert!(text.contains("  missing   pids (cgroup v2)  not offered\n"), "{text}");
        assert!(
            text.contains(&format!("{}fix: boot with pure v2\n", " ".repeat(30))),
            "{text}"
        );
        assert!(
            text.contains("DEGRADES  SIGKILL of the shim leaves nothing behind"),
            "{text}"
        );
    }
}
