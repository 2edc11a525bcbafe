//! A ledger the gateway cannot use: corrupt, read-only (immutable: root ignores file modes),
//! on a full disk, or locked by a hung process. In each case the gateway serves, says in its
//! log which file and what is wrong, and keeps what it can: the file is left as it was, and
//! once the disk has room again new instances are recorded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tether_supervisor::ledger::{Ledger, FILE_NAME};

use super::super::support::{fixture_server, Gateway};
use super::mount::{Immutable, Tmpfs};
use crate::harness::{tether_run, Cookie, Mode};

const UNRECORDED: &str = "running unrecorded: a crash of this gateway would leave the sweep nothing to go by";

/// The test's configuration, beside the ledger (before anything is done to it), and the
/// ledger's path.
fn prepare(cookie: &Cookie, server: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let config = cookie.state_dir().join("gateway.toml");
    std::fs::write(&config, server).expect("configuration");
    (config, cookie.state_dir().join(FILE_NAME))
}

/// A sound ledger in the cookie's state directory, made by `tether ps`.
fn sound_ledger(cookie: &Cookie) {
    let out = tether_run(cookie, &["ps"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Starts the gateway on `config`, proves it serves, and waits for `said` in its log.
fn serves_saying(cookie: &Cookie, config: PathBuf, said: &str) -> Gateway {
    let gw = Gateway::start_file(cookie, Mode::Cgroup, config, &[]);
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("served all the same");
    gw.wait_log(said);
    gw
}

#[test]
fn a_corrupt_ledger_is_named_left_as_it_is_and_the_gateway_serves() {
    let cookie = Cookie::new();
    let (config, db) = prepare(&cookie, &fixture_server("fx", &cookie, &[], ""));
    let garbage = b"not a database\n".repeat(500);
    std::fs::write(&db, &garbage).expect("garbage");
    let said = format!(
        "ledger {}: damaged: PRAGMA journal_mode=WAL: file is not a database; {UNRECORDED}",
        db.display()
    );
    let gw = serves_saying(&cookie, config, &said);
    gw.shut_down(&cookie);
    assert_eq!(
        std::fs::read(&db).expect("the ledger"),
        garbage,
        "the damaged file was changed"
    );
}

#[test]
fn a_read_only_ledger_is_named_and_the_gateway_serves() {
    let cookie = Cookie::new();
    let (config, db) = prepare(&cookie, &fixture_server("fx", &cookie, &[], ""));
    sound_ledger(&cookie);
    let before = std::fs::read(&db).expect("the ledger");
    let immutable = Immutable::set(&db);
    let said = format!(
        "ledger {}: opening for writing: Operation not permitted (os error 1); {UNRECORDED}",
        db.display()
    );
    let gw = serves_saying(&cookie, config, &said);
    gw.shut_down(&cookie);
    drop(immutable);
    assert_eq!(std::fs::read(&db).expect("the ledger"), before);
}

#[test]
fn a_full_disk_is_named_and_once_it_has_room_instances_are_recorded_again() {
    let cookie = Cookie::new();
    let tmpfs = Tmpfs::mount(&cookie.state_dir(), "2m");
    let (config, db) = prepare(&cookie, &fixture_server("fx", &cookie, &[], "lifetime = \"session\""));
    sound_ledger(&cookie);
    let filler = tmpfs.fill();
    let gw = serves_saying(
        &cookie,
        config,
        &format!(
            "ledger {}: recording the intent: database or disk is full; this instance is not recorded",
            db.display()
        ),
    );
    gw.wait_log(&format!(
        "registering the gateway in the ledger: ledger {}: registering the owner: database or disk is full",
        db.display()
    ));
    assert!(recorded(&cookie.state_dir()).is_empty(), "recorded on a full disk?");
    std::fs::remove_file(&filler).expect("making room");
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("recorded again");
    assert_eq!(recorded(&cookie.state_dir()), vec!["fx".to_string()], "{}", gw.log());
    gw.shut_down(&cookie);
    drop(tmpfs);
}

/// The servers of the ledger's open instances.
fn recorded(dir: &Path) -> Vec<String> {
    Ledger::open(dir)
        .and_then(|l| l.open_instances())
        .expect("reading the ledger")
        .into_iter()
        .map(|i| i.intent.server)
        .collect()
}

/// A process holding the ledger's write lock (`BEGIN EXCLUSIVE`) until killed, as a hung
/// process would.
struct Locker(Child);

impl Locker {
    fn hold(db: &Path) -> Locker {
        let script = "import sqlite3, sys\n\
                      c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                      c.execute('BEGIN EXCLUSIVE')\n\
                      print('locked', flush=True)\n\
                      sys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("reading python3");
        assert_eq!(line.trim(), "locked");
        Locker(child)
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_ledger_locked_by_a_hung_process_is_named_and_the_gateway_serves_at_once() {
    let cookie = Cookie::new();
    let (config, db) = prepare(&cookie, &fixture_server("fx", &cookie, &[], "lifetime = \"session\""));
    sound_ledger(&cookie);
    let locker = Locker::hold(&db);
    let started = std::time::Instant::now();
    let said = format!(
        "ledger {}: taking the write lock: database is locked (held for over 5s: `fuser {}` names the process holding it); {UNRECORDED}",
        db.display(),
        db.display()
    );
    let gw = serves_saying(&cookie, config, &said);
    // Each new instance starts without waiting for the lock.
    for n in 0..3 {
        let mut c = gw.client(Some("fx"));
        c.initialize();
        c.echo(&format!("session {n}"));
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}: the gateway waited on the lock",
        started.elapsed()
    );
    // The locker names the ledger, so it carries the cookie: it goes first, by its pid.
    drop(locker);
    gw.shut_down(&cookie);
    assert!(recorded(&cookie.state_dir()).is_empty());
}
