//! The ledger: every process Tether starts, on disk before it exists.
//!
//! One SQLite database per host and user, shared by every Tether process at once (many
//! `tether wrap` shims, a gateway, `tether ps`). WAL mode lets readers run beside the one
//! writer, every write is a short `IMMEDIATE` transaction under a generous busy timeout, and a
//! writer SIGKILLed mid-transaction loses only that transaction (the WAL is replayed or
//! discarded on the next open). A spawn writes an *intent* (instance id = cookie, cgroup path,
//! command) before the fork, then the server's identity before it runs its first instruction,
//! so a crash at any moment leaves enough for the sweep to find what was started.
//!
//! The file lives in the state directory ([`location`]), 0700, and is itself 0600, as are the
//! WAL and shared-memory files SQLite derives from it.

mod error;
pub mod location;
mod read;
mod rows;
mod write;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use error::sql;

pub use error::LedgerError;
pub use rows::{InstanceRow, InstanceState, Intent, OwnerRow, ProcessRole, ProcessRow};

/// The file name of the database inside the state directory.
pub const FILE_NAME: &str = "ledger.sqlite3";
/// The schema version this build writes; older ledgers are migrated, newer ones refused.
const SCHEMA_VERSION: i64 = 1;
/// The most problems `PRAGMA quick_check` lists (SQLite's own default).
const QUICK_CHECK_LIMIT: usize = 100;
/// Pages in the WAL past which a commit checkpoints it (SQLite's default is 1000).
///
/// SQLite's default life cycle costs a `tether wrap` about 1 ms at each end: the last
/// connection to close checkpoints the WAL (two fsyncs) and deletes it, so the next one, alone
/// again, creates it (an fsync of the directory) and syncs its header on the first commit. With
/// one short-lived shim per instance, nearly every spawn was "the last" and "the first". So no
/// connection checkpoints on close (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`): the WAL stays, and
/// commits checkpoint it once it holds this many pages. The price: a connection that opens
/// the ledger alone rebuilds the WAL's index by reading it (the `-shm` file is reset by the
/// first opener), a read of at most this many pages from the page cache, which a small
/// threshold keeps well under the fsyncs it replaces; and the WAL starts over (its header
/// synced) only after a checkpoint, which the watchdogs do off the client's path
/// ([`Ledger::tidy_wal`]). Durability is unchanged: commits are in the WAL either way, and
/// `synchronous=NORMAL` never synced them at commit.
const CHECKPOINT_PAGES: u32 = 64;
/// The threshold for a shim's own connection (see [`Ledger::defer_checkpoints`]); only a WAL
/// nobody else checkpoints reaches it.
const DEFERRED_CHECKPOINT_PAGES: u32 = 1000;
/// How long a writer waits for another one before giving up. Writes take well under a
/// millisecond; this only matters when hundreds of shims start at once on a loaded host.
const BUSY_TIMEOUT: Duration = Duration::from_secs(20);

/// An open ledger.
pub struct Ledger {
    /// The SQLite connection; one per process, never shared across a fork.
    conn: Connection,
    /// The database file, for messages.
    path: PathBuf,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

/// Milliseconds since the Unix epoch, for timestamps meant for people.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `dir`.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        location::prepare_dir(dir)?;
        let path = dir.join(FILE_NAME);
        create_private_file(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(sql(&path, "opening"))?;
        let mut ledger = Ledger { conn, path };
        ledger.configure()?;
        ledger.migrate()?;
        Ok(ledger)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&mut self) -> Result<(), LedgerError> {
        self.conn
            .busy_handler(Some(wait_for_writer))
            .map_err(sql(&self.path, "busy_handler"))?;
        // Switching to WAL takes an exclusive lock once per database; when many processes
        // open a new ledger at once, some see SQLITE_BUSY here without the busy handler.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            match self
                .conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            {
                Ok(_) => break,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(sql(&self.path, "PRAGMA journal_mode=WAL")(e)),
            }
        }
        // NORMAL is durable against a killed process (the WAL is in the page cache); a power
        // loss may drop the last commits, and then every local process is gone too.
        self.conn
            .execute_batch(&format!(
                "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256;
                 PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}; PRAGMA journal_size_limit=0;"
            ))
            .map_err(sql(&self.path, "pragmas"))?;
        // See CHECKPOINT_PAGES: the WAL is left for the next connection, not checkpointed and
        // deleted by whoever closes last.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(sql(&self.path, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE"))
            .map(drop)
    }

    /// Checkpoints the WAL if it holds more than [`CHECKPOINT_PAGES`] pages, so that the next
    /// write starts it over (and syncs its new header) here rather than in a shim on its
    /// client's start-up path; a watchdog calls it before it closes its instance's row. The
    /// size is read from the file, which `journal_size_limit=0` trims to what is in use each
    /// time the WAL starts over. `PASSIVE`: it never makes a writer wait.
    pub fn tidy_wal(&mut self) -> Result<(), LedgerError> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let frame = 24 + 4096; // a frame header and a page of the default size
        let pages = fs::metadata(&wal).map_or(0, |m| m.len().saturating_sub(32) / frame);
        if pages <= u64::from(CHECKPOINT_PAGES) {
            return Ok(());
        }
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(sql(&self.path, "PRAGMA wal_checkpoint(PASSIVE)"))
    }

    /// Takes the write lock and gives it back at once, waiting at most `within` for another
    /// connection to let go of it; an error when it could not (`database is locked`). Writes
    /// hold the lock well under a millisecond, so a lock held for seconds is a hung or stopped
    /// process: a gateway checks this once at start-up rather than wait [`BUSY_TIMEOUT`] on
    /// every write (its own and each shim's) while the lock stays held.
    pub fn check_write_lock(&mut self, within: Duration) -> Result<(), LedgerError> {
        let path = self.path.clone();
        self.conn.busy_timeout(within).map_err(sql(&path, "busy_timeout"))?;
        let taken = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| tx.rollback());
        self.conn
            .busy_handler(Some(wait_for_writer))
            .map_err(sql(&path, "busy_handler"))?;
        taken.map_err(sql(&path, "taking the write lock"))
    }

    /// Leaves checkpoints to other connections unless the WAL grows large: for a shim, whose
    /// writes are on its client's start-up path (a checkpoint syncs the WAL and the database).
    /// Its watchdog, which closes its row off that path, checkpoints at the usual threshold.
    pub fn defer_checkpoints(&mut self) -> Result<(), LedgerError> {
        self.conn
            .execute_batch(&format!("PRAGMA wal_autocheckpoint={DEFERRED_CHECKPOINT_PAGES};"))
            .map_err(sql(&self.path, "PRAGMA wal_autocheckpoint"))
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let path = self.path.clone();
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(&path, "reading the schema version"))?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if version > SCHEMA_VERSION {
            return Err(LedgerError::TooNew { path, found: version });
        }
        self.write("creating the schema", |tx| {
            tx.execute_batch(include_str!("schema.sql"))?;
            tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
        })
    }

    /// Runs `f` in one IMMEDIATE transaction (the write lock is taken up front, so the
    /// transaction never fails half-way on a lock upgrade).
    fn write<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(&path, what))?;
        let out = f(&tx).map_err(sql(&path, what))?;
        tx.commit().map_err(sql(&path, what))?;
        Ok(out)
    }

    /// Checks the database file's structure (`PRAGMA quick_check`); `Ok(())` when sound, else
    /// [`LedgerError::Damaged`] with the first problem found and how many there are.
    pub fn quick_check(&self) -> Result<(), LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA quick_check({QUICK_CHECK_LIMIT})"))
            .map_err(sql(&self.path, "quick_check"))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(sql(&self.path, "quick_check"))?;
        if rows.iter().all(|r| r == "ok") {
            Ok(())
        } else {
            Err(error::quick_check_failed(&self.path, &rows, QUICK_CHECK_LIMIT))
        }
    }
}

/// SQLite's busy handler, called when another connection holds the write lock; `tries` counts
/// the calls before this one. SQLite's own (`busy_timeout`) sleeps 1 ms first, then longer,
/// for a lock held about 0.1 ms: a shim that met a watchdog closing its row would lose a
/// millisecond of its client's start-up. This one sleeps 50 µs more on each try, up to 5 ms,
/// and gives up after about [`BUSY_TIMEOUT`].
fn wait_for_writer(tries: i32) -> bool {
    let step = Duration::from_micros(50);
    let cap = Duration::from_millis(5);
    let tries = u32::try_from(tries).unwrap_or(0);
    // 100 tries ramp up to the cap in about 0.25 s; the rest wait at the cap.
    let ramp: u32 = 100;
    let after_ramp = BUSY_TIMEOUT.as_micros() / cap.as_micros();
    if u128::from(tries) > u128::from(ramp) + after_ramp {
        return false;
    }
    std::thread::sleep((step * (tries + 1)).min(cap));
    true
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Creates the database file 0600 if it does not exist (SQLite gives its WAL and shm files the
/// database's mode), and refuses one that others can read or write.
fn create_private_file(path: &Path) -> Result<(), LedgerError> {
    let io_err = |what| {
        move |cause| LedgerError::Io {
            what,
            path: path.to_path_buf(),
            cause,
        }
    };
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("opening for writing"))?;
    let mode = fs::metadata(path).map_err(io_err("stat"))?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err("chmod 0600"))?;
    }
    Ok(())
}
