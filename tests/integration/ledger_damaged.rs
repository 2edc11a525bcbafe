//! A damaged ledger does not stop `tether ps`, `reap` or `doctor`: each still does what needs
//! no ledger (ps and doctor show the cookie carriers `/proc` shows, reap reports them and kills
//! none of them), says once what is wrong, prints the command that fixes it, and exits with 1.
//! The fix, run as printed, gives a working ledger again.
//!
//! Two kinds of damage: a file that is not a database at all, and a real ledger whose pages
//! were overwritten (SQLite opens it; `quick_check` finds a hundred problems, and the doctor
//! shows the first and the count).

use std::fs;
use std::path::Path;
use std::time::Duration;

use tether_supervisor::ledger::{Intent, Ledger, FILE_NAME};
use tether_supervisor::process::identity::ProcessIdentity;
use tether_supervisor::process::procfs;

use crate::harness::{Cookie, Mode, WrapBuilder};
use crate::unusable::{
    alive, assert_fails_saying_once, cookie_carrier, json_of, pids_of, run_fix, tether_at, unverified_pids,
};

#[test]
fn a_garbage_ledger_still_shows_reports_and_spares_a_live_tether_s_processes() {
    let cookie = Cookie::new();
    // A real Tether instance with its own, sound ledger (the cookie's state directory).
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup)
        .fixture(&["--children", "2"])
        .spawn();
    let ready = w.wait_ready();
    let instance = Ledger::open(&cookie.state_dir())
        .expect("the wrap's ledger")
        .open_instances()
        .expect("read")
        .pop()
        .expect("the wrap's instance")
        .intent
        .id;
    let mut carriers: Vec<i32> = ready.sleepers.iter().map(|(p, _)| *p).collect();
    carriers.push(ready.pid);
    carriers.sort_unstable();

    // Another state directory, whose ledger is garbage.
    let dir = cookie.state_dir().join("garbage");
    fs::create_dir_all(&dir).expect("state dir");
    let db = dir.join(FILE_NAME);
    fs::write(&db, b"not a database\n".repeat(500)).expect("garbage");
    let cause = "file is not a database";

    let ps = tether_at(&cookie, &dir, &["ps"]);
    assert_fails_saying_once("ps", &ps, cause);
    let stdout = String::from_utf8_lossy(&ps.stdout);
    assert!(stdout.starts_with("UNVERIFIED"), "{stdout}");
    assert!(stdout.contains(&format!("instance {}", &instance[..8])), "{stdout}");
    let stderr = String::from_utf8_lossy(&ps.stderr);
    assert!(
        stderr.contains(&format!("fix: mv {} {}.damaged-", db.display(), db.display())),
        "{stderr}"
    );

    let (code, listing) = json_of(&tether_at(&cookie, &dir, &["ps", "--json"]));
    assert_eq!(
        (code, &listing["verified"]),
        (Some(1), &serde_json::json!(false)),
        "{listing:#}"
    );
    let mut listed = unverified_pids(&listing, &instance);
    listed.sort_unstable();
    assert_eq!(listed, carriers, "{listing:#}");

    let reap = tether_at(&cookie, &dir, &["reap"]);
    assert_fails_saying_once("reap", &reap, cause);
    assert!(seen_has(&reap, "another state directory's Tether may own them"));
    let (code, report) = json_of(&tether_at(&cookie, &dir, &["reap", "--json"]));
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["killed"], 0, "{report:#}");
    let mut skipped = pids_of(&report, "actions", &instance);
    skipped.sort_unstable();
    assert_eq!(skipped, carriers, "{report:#}");
    assert!(report["ledger_problem"]["problem"]
        .as_str()
        .is_some_and(|p| p.contains(cause)));

    let doctor = tether_at(&cookie, &dir, &["doctor"]);
    assert_fails_saying_once("doctor", &doctor, cause);
    assert!(seen_has(&doctor, "orphans: unknown"));
    let (code, diag) = json_of(&tether_at(&cookie, &dir, &["doctor", "--json"]));
    assert_eq!(
        (code, diag["ledger"]["ok"].as_bool()),
        (Some(1), Some(false)),
        "{diag:#}"
    );
    assert!(diag["orphans"].is_null(), "{diag:#}");
    let mut unknown = pids_of(&diag, "unknown_cookies", &instance);
    unknown.sort_unstable();
    assert_eq!(unknown, carriers, "{diag:#}");

    // Nothing was killed: the wrapped server and its children all still run.
    assert!(carriers.iter().all(|&p| alive(p)), "a carrier died: {carriers:?}");
    assert!(matches!(w.child.try_wait(), Ok(None)), "the wrap died");

    run_fix(diag["ledger"]["fix"].as_str().expect("a fix"));
    assert!(!db.exists(), "the damaged ledger is still in place");
    assert_moved_aside(&dir);
    let ps = tether_at(&cookie, &dir, &["ps"]);
    assert!(ps.status.success(), "{}", crate::unusable::seen(&ps));

    w.stdin.take();
    w.wait_exit(Duration::from_secs(5));
    cookie.assert_none_survive(Duration::from_secs(2));
}

#[test]
fn a_ledger_with_damaged_pages_gets_its_first_problem_and_a_count() {
    let cookie = Cookie::new();
    let dir = cookie.state_dir().join("damaged");
    write_ledger_then_damage_it(&dir);
    let instance = tether_supervisor::ids::random_id().expect("id");
    let mut carrier = cookie_carrier(&cookie, &instance);
    let pid = carrier.id() as i32;

    let doctor = tether_at(&cookie, &dir, &["doctor"]);
    assert_fails_saying_once("doctor", &doctor, "quick_check found ");
    let text = String::from_utf8_lossy(&doctor.stdout);
    let ledger_line = text.lines().find(|l| l.starts_with("ledger: ")).expect("a ledger line");
    assert!(
        ledger_line.contains("or more problems; the first: ") || ledger_line.contains(" problems; the first: "),
        "{ledger_line}"
    );
    // The ledger's part of the report: its line, the fix and its note, the orphans' line, the
    // carriers' line, then one line per instance carrying a cookie (this test's among them).
    let tail: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("ledger: "))
        .filter(|l| !l.starts_with("  instance "))
        .collect();
    assert!(tail.len() <= 5, "the doctor says too much:\n{}", tail.join("\n"));
    assert!(
        text.contains(&format!("instance {}: pids {pid}", &instance[..8])),
        "{text}"
    );

    let ps = tether_at(&cookie, &dir, &["ps"]);
    assert_fails_saying_once("ps", &ps, "database disk image is malformed");
    let (_, report) = json_of(&tether_at(&cookie, &dir, &["reap", "--json"]));
    assert_eq!(pids_of(&report, "actions", &instance), vec![pid], "{report:#}");
    assert!(alive(pid), "reap killed a process no ledger proves Tether started");

    let (_, diag) = json_of(&tether_at(&cookie, &dir, &["doctor", "--json"]));
    run_fix(diag["ledger"]["fix"].as_str().expect("a fix"));
    assert_moved_aside(&dir);
    let doctor = tether_at(&cookie, &dir, &["doctor"]);
    assert!(doctor.status.success(), "{}", crate::unusable::seen(&doctor));

    carrier.kill().expect("kill the carrier by pid");
    carrier.wait().expect("reap it");
    cookie.assert_none_survive(Duration::from_secs(1));
}

fn seen_has(out: &std::process::Output, text: &str) -> bool {
    crate::unusable::seen(out).contains(text)
}

/// The damaged database sits beside the new one, renamed `ledger.sqlite3.damaged-STAMP`.
fn assert_moved_aside(dir: &Path) {
    let names: Vec<String> = fs::read_dir(dir)
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with(&format!("{FILE_NAME}.damaged-"))),
        "{names:?}"
    );
}

/// A real ledger with enough rows to fill many pages, closed, then every page but the first
/// (the header and the schema) overwritten.
fn write_ledger_then_damage_it(dir: &Path) {
    let me = ProcessIdentity::of(std::process::id() as i32).expect("own identity");
    let mut ledger = Ledger::open(dir).expect("ledger");
    for n in 0..300 {
        let intent = Intent {
            id: tether_supervisor::ids::random_id().expect("id"),
            owner_id: tether_supervisor::ids::random_id().expect("id"),
            scope: "wrap".into(),
            server: format!("filler-{n}"),
            command: vec!["filler".into(), n.to_string()],
            boot_id: procfs::boot_id().expect("boot id"),
            holder: me,
            cgroup: None,
            cgroup_v1: None,
            layers: vec![],
            remote: None,
        };
        ledger.record_intent(&intent).expect("intent");
    }
    // The last connection to close checkpoints the WAL into the file and removes it.
    drop(ledger);
    let db = dir.join(FILE_NAME);
    let mut bytes = fs::read(&db).expect("read the ledger");
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(bytes.len() >= 4 * page, "only {} bytes", bytes.len());
    for chunk in bytes.chunks_mut(page).skip(1) {
        let end = chunk.len().saturating_sub(8);
        chunk[8..end].fill(0xA5);
    }
    fs::write(&db, bytes).expect("damage the ledger");
}
