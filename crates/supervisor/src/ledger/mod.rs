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
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sql(&self.path, "busy_timeout"))?;
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
            .execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256;")
            .map_err(sql(&self.path, "pragmas"))
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
        .map_err(io_err("creating"))?;
    let mode = fs::metadata(path).map_err(io_err("stat"))?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err("chmod 0600"))?;
    }
    Ok(())
}
