//! The ledger under abuse: a recorded pid taken over by a stranger, writers SIGKILLed in the
//! middle of their transactions, and a hundred shims writing at once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::ledger::{Intent, Ledger, ProcessRole};
use tether_supervisor::process::identity::ProcessIdentity;
use tether_supervisor::process::procfs;

use crate::harness::{eventually, random_below, reap, report_pids, require, Cookie, Feature, FIXTURE, TETHER};

/// Rewrites the boot id of `instance`'s row in the test's ledger: recorded, the sweep now
/// believes, in an earlier boot of this host.
pub fn pretend_an_earlier_boot(cookie: &Cookie, instance: &str) {
    let db = rusqlite::Connection::open(cookie.state_dir().join(tether_supervisor::ledger::FILE_NAME))
        .expect("open the ledger");
    db.execute(
        "UPDATE instances SET boot_id = '00000000-0000-4000-8000-000000000000' WHERE id = ?1",
        [instance],
    )
    .expect("rewrite the boot id");
}

/// A fixture that just waits on its stdin (kept open by the returned `Child`).
pub fn bystander(cookie: &Cookie) -> Child {
    Command::new(FIXTURE)
        .args(["--tag", &cookie.0])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning a bystander")
}

/// Starts and ends a process; returns the identity it had.
pub fn dead_identity(cookie: &Cookie) -> ProcessIdentity {
    let mut child = bystander(cookie);
    let id = ProcessIdentity::of(child.id() as i32).expect("identity");
    child.kill().expect("kill");
    child.wait().expect("reap");
    id
}

/// Makes the next fork of this host get `pid`, through `ns_last_pid` (see
/// [`Feature::PidReuse`]). Returns a bystander holding that pid, or why there is none.
///
/// The pid must be free first: a process that was just killed holds it as a zombie until its
/// parent (an sshd session, on a loaded host) reaps it. Then other forks of a busy host may win
/// the race for it; each loss is retried until the deadline.
pub fn bystander_with_pid(cookie: &Cookie, pid: i32) -> Result<Child, String> {
    spawned_with_pid(pid, || bystander(cookie))
}

/// Makes the next fork of this host get `pid` (as [`bystander_with_pid`]) for the process
/// `spawn` starts.
pub fn spawned_with_pid(pid: i32, mut spawn: impl FnMut() -> Child) -> Result<Child, String> {
    let within = Duration::from_secs(20);
    let proc_entry = std::path::PathBuf::from(format!("/proc/{pid}"));
    if !eventually(within, || !proc_entry.exists()) {
        return Err(format!("pid {pid} was not freed within {within:?}"));
    }
    let mut tries = 0;
    let mut got = None;
    eventually(within, || {
        if proc_entry.exists() {
            return false; // Another fork took it: wait until that one is gone.
        }
        tries += 1;
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            return false;
        }
        let mut child = spawn();
        if child.id() as i32 == pid {
            got = Some(child);
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    });
    got.ok_or_else(|| format!("other forks took pid {pid} in each of {tries} tries over {within:?}"))
}

pub fn orphan_intent(cookie: &Cookie, holder: ProcessIdentity) -> Intent {
    Intent {
        id: tether_supervisor::ids::random_id().expect("id"),
        owner_id: tether_supervisor::ids::random_id().expect("id"),
        scope: "wrap".into(),
        server: format!("stranger-test-{}", cookie.0),
        command: vec!["test".into()],
        boot_id: procfs::boot_id().expect("boot id"),
        holder,
        cgroup: None,
        cgroup_v1: None,
        layers: vec![],
        remote: None,
    }
}

#[test]
fn a_stranger_holding_a_recorded_pid_is_never_signalled() {
    let cookie = Cookie::new();
    let holder = dead_identity(&cookie);
    let server = dead_identity(&cookie);
    // The pid of the dead, recorded server goes to a process Tether never started.
    let (mut stranger, how) = if require(
        Feature::PidReuse,
        "exercising the fallback, a live process recorded with another start time",
    ) {
        (
            bystander_with_pid(&cookie, server.pid).expect("the recorded pid for a stranger"),
            "real pid reuse through ns_last_pid",
        )
    } else {
        (bystander(&cookie), "a live process recorded with another start time")
    };
    let recorded = ProcessIdentity {
        pid: stranger.id() as i32,
        ..server
    };
    let mut ledger = Ledger::open(&cookie.state_dir()).expect("ledger");
    let intent = orphan_intent(&cookie, holder);
    ledger.record_intent(&intent).expect("intent");
    ledger
        .record_spawned(&intent.id, &recorded, None, true)
        .expect("identity");
    drop(ledger);

    let report = reap(&cookie, &[]);
    assert_eq!(
        report_pids(&report, "skipped-stranger"),
        vec![recorded.pid],
        "{how}: {report:#}"
    );
    assert!(report_pids(&report, "killed").is_empty(), "{report:#}");
    assert!(
        matches!(stranger.try_wait(), Ok(None)),
        "{how}: the stranger was signalled"
    );
    let ledger = Ledger::open(&cookie.state_dir()).expect("ledger");
    let row = ledger.instance(&intent.id).expect("read").expect("row");
    assert_eq!(row.state.as_str(), "reaped");
    stranger.kill().expect("kill the stranger");
    stranger.wait().expect("reap it");
    cookie.assert_none_survive(Duration::from_secs(1));
}

/// `sh` that appends its pid to `pidfile`, then execs the fixture (same pid): a line in the
/// file proves that process ran, so its identity must be in the ledger.
fn recorded_writer(cookie: &Cookie, pidfile: &std::path::Path) -> Child {
    cookie
        .set_env(&mut Command::new(TETHER))
        .args([
            "wrap",
            "--disable",
            "cgroup",
            "--",
            "sh",
            "-c",
            "echo $$ >> \"$0\"; exec \"$1\" --tag \"$2\"",
        ])
        .arg(pidfile)
        .args([FIXTURE, &cookie.0])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning tether")
}

#[test]
fn sigkilled_writers_leave_a_ledger_that_opens_and_has_every_spawned_process() {
    let cookie = Cookie::new();
    let pidfile = cookie.state_dir().with_extension("pids");
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let mut shims = 0;
    for _ in 0..200 {
        let mut writers: Vec<Child> = (0..3).map(|_| recorded_writer(&cookie, &pidfile)).collect();
        shims += writers.len();
        // A random moment inside their start-up, where the ledger writes are.
        std::thread::sleep(Duration::from_micros(random_below(12_000)));
        for w in &mut writers {
            let _ = w.kill();
        }
        for w in &mut writers {
            let _ = w.wait();
        }
    }
    let ledger = Ledger::open(&cookie.state_dir()).expect("the ledger opens after 600 SIGKILLed writers");
    ledger.quick_check().expect("and is sound");
    let spawned: HashSet<i32> = std::fs::read_to_string(&pidfile)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let mut recorded = HashSet::new();
    for inst in ledger.all_instances().expect("instances") {
        for p in ledger.processes_of(&inst.intent.id).expect("processes") {
            if p.role == ProcessRole::Leader {
                recorded.insert(p.identity.pid);
            }
        }
    }
    let lost: Vec<_> = spawned.difference(&recorded).collect();
    assert!(lost.is_empty(), "spawned but not in the ledger: {lost:?}");
    eprintln!(
        "{shims} shims SIGKILLed; {} servers ran, all recorded; {} instances in the ledger",
        spawned.len(),
        ledger.all_instances().expect("instances").len()
    );
    assert!(
        !spawned.is_empty(),
        "no kill came late enough for a server to run: the test proved nothing"
    );
    drop(ledger);
    reap(&cookie, &[]);
    let _ = std::fs::remove_file(&pidfile);
    cookie.assert_none_survive(Duration::from_secs(2));
}

#[test]
fn a_hundred_concurrent_shims_share_the_ledger() {
    let cookie = Cookie::new();
    let mut shims: Vec<Child> = (0..100)
        .map(|_| {
            cookie
                .set_env(&mut Command::new(TETHER))
                .args(["wrap", "--", FIXTURE, "--tag", &cookie.0])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning tether")
        })
        .collect();
    // Each client keeps reading until the shim exits: a closed stdout is a teardown trigger.
    let mut readers = Vec::new();
    for (i, shim) in shims.iter_mut().enumerate() {
        let mut stdin = shim.stdin.take().expect("stdin");
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"n{i}"}}}}}}"#
        )
        .expect("request");
        let mut line = String::new();
        let mut reader = BufReader::new(shim.stdout.take().expect("stdout"));
        reader.read_line(&mut line).expect("response");
        assert!(line.contains(&format!("n{i}")), "shim {i} answered {line:?}");
        readers.push(reader);
        drop(stdin);
    }
    for (i, shim) in shims.into_iter().enumerate() {
        let out = shim.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "shim {i}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("ledger"), "shim {i} had ledger trouble: {stderr}");
    }
    drop(readers);
    // The watchdogs close the rows after their shims exit, and carry the cookie until then.
    cookie.assert_none_survive(Duration::from_secs(5));
    let ledger = Ledger::open(&cookie.state_dir()).expect("ledger");
    let all = ledger.all_instances().expect("instances");
    assert_eq!(all.len(), 100);
    assert!(all.iter().all(|i| i.state.as_str() == "ended"), "{all:#?}");
}

#[test]
fn dry_run_kills_nothing_and_says_what_it_would() {
    let cookie = Cookie::new();
    let mut victim = bystander(&cookie);
    let mut ledger = Ledger::open(&cookie.state_dir()).expect("ledger");
    let intent = orphan_intent(&cookie, dead_identity(&cookie));
    ledger.record_intent(&intent).expect("intent");
    let id = ProcessIdentity::of(victim.id() as i32).expect("identity");
    ledger.record_spawned(&intent.id, &id, None, false).expect("identity");
    drop(ledger);
    let dry = reap(&cookie, &["--dry-run"]);
    assert_eq!(report_pids(&dry, "would-kill"), vec![id.pid], "{dry:#}");
    assert!(matches!(victim.try_wait(), Ok(None)), "dry run killed");
    let real = reap(&cookie, &[]);
    assert_eq!(report_pids(&real, "killed"), vec![id.pid], "{real:#}");
    assert!(victim.wait().is_ok());
    let _ = kill(Pid::from_raw(id.pid), Signal::SIGKILL);
    cookie.assert_none_survive(Duration::from_secs(1));
}

#[test]
fn a_server_that_cannot_start_leaves_a_closed_row() {
    let cookie = Cookie::new();
    let out = crate::harness::tether_run(&cookie, &["wrap", "--", "surely-no-such-mcp-server"]);
    assert_eq!(out.status.code(), Some(127));
    let ledger = Ledger::open(&cookie.state_dir()).expect("ledger");
    let all = ledger.all_instances().expect("instances");
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].state.as_str(), "ended");
    assert!(
        all[0].end_reason.as_deref().is_some_and(|r| r.contains("spawn failed")),
        "{all:#?}"
    );
    drop(ledger);
    let report = reap(&cookie, &[]);
    assert_eq!(report["orphaned_instances"], 0, "{report:#}");
    cookie.assert_none_survive(Duration::from_secs(1));
}
