//! Why the ledger could not be used, classified by what fixes it.
//!
//! `tether ps`, `reap` and `doctor` go on without a ledger they cannot use and print the fix,
//! so the two problems a person fixes with one command have variants of their own: a damaged
//! database ([`LedgerError::Damaged`]: move it aside) and a state path that is a file
//! ([`LedgerError::NotADirectory`]: move the file aside or choose another directory).
//!
//! Each message says the cause once. A variant holding an OS or SQLite error writes that
//! error's text into its own and does not also return it as [`std::error::Error::source`]:
//! printers of error chains (`anyhow`'s `{:#}`) would repeat it, and rusqlite's errors repeat
//! themselves in their own source besides.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::SCHEMA_VERSION;

/// Why the ledger could not be used.
#[derive(Debug)]
pub enum LedgerError {
    /// A file-system step on the state directory or the database file failed.
    Io {
        /// The step, e.g. `creating`.
        what: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// What the OS said.
        cause: io::Error,
    },
    /// The state directory, or a directory above it, exists and is not a directory.
    NotADirectory {
        /// The state directory asked for.
        state_dir: PathBuf,
        /// The file in the way: `state_dir` itself or one of its ancestors.
        blocker: PathBuf,
    },
    /// The state directory is not private to this user.
    Unsafe { path: PathBuf, why: String },
    /// The database file is not a sound SQLite database: SQLite says so (not a database,
    /// malformed) or `PRAGMA quick_check` found problems.
    Damaged {
        /// The database file.
        path: PathBuf,
        /// The step that found it and what was found, e.g. `reading instances: database disk
        /// image is malformed`.
        problem: String,
    },
    /// SQLite refused an operation for another reason (a lock, a full disk, permissions).
    Sql {
        what: String,
        path: PathBuf,
        cause: rusqlite::Error,
    },
    /// The ledger was written by a newer Tether.
    TooNew { path: PathBuf, found: i64 },
}

impl LedgerError {
    /// The file or directory concerned (the state directory for [`LedgerError::NotADirectory`]).
    pub fn path(&self) -> &Path {
        match self {
            LedgerError::Io { path, .. }
            | LedgerError::Unsafe { path, .. }
            | LedgerError::Damaged { path, .. }
            | LedgerError::Sql { path, .. }
            | LedgerError::TooNew { path, .. } => path,
            LedgerError::NotADirectory { state_dir, .. } => state_dir,
        }
    }

    /// What is wrong, without the path: for reports that name the path already.
    pub fn reason(&self) -> String {
        match self {
            LedgerError::Io { what, cause, .. } => format!("{what}: {cause}"),
            LedgerError::NotADirectory { state_dir, blocker } if state_dir == blocker => {
                "the state directory is a file, not a directory".to_string()
            }
            LedgerError::NotADirectory { blocker, .. } => format!(
                "{}, above the state directory, is a file, not a directory",
                blocker.display()
            ),
            LedgerError::Unsafe { why, .. } => why.clone(),
            LedgerError::Damaged { problem, .. } => format!("damaged: {problem}"),
            LedgerError::Sql { what, cause, .. } => format!("{what}: {cause}"),
            LedgerError::TooNew { found, .. } => {
                format!("schema version {found} is newer than this tether understands ({SCHEMA_VERSION})")
            }
        }
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ledger {}: {}", self.path().display(), self.reason())
    }
}

impl std::error::Error for LedgerError {}

/// Turns a SQLite error of `what` on `path` into a [`LedgerError`], as [`LedgerError::Damaged`]
/// when SQLite says the file is not a sound database.
pub(super) fn sql<'a>(path: &'a Path, what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> LedgerError + 'a {
    let what = what.into();
    move |cause| {
        let damaged = matches!(
            cause.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        );
        if damaged {
            LedgerError::Damaged {
                path: path.to_path_buf(),
                problem: format!("{what}: {cause}"),
            }
        } else {
            LedgerError::Sql {
                what,
                path: path.to_path_buf(),
                cause,
            }
        }
    }
}

/// The `PRAGMA quick_check` output `lines` (one row per problem, or one row of many lines,
/// depending on SQLite's version) as a [`LedgerError::Damaged`]: the first problem and how many
/// there are, since a damaged page alone can yield a hundred lines. `limit` is the most
/// quick_check reports.
pub(super) fn quick_check_failed(path: &Path, rows: &[String], limit: usize) -> LedgerError {
    let problems: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.lines())
        .map(str::trim)
        // `*** in database main ***` heads the list; it is not a problem.
        .filter(|l| !l.is_empty() && !l.starts_with("***"))
        .collect();
    let first = problems.first().copied().unwrap_or("no detail given");
    let count = match problems.len() {
        n if n >= limit => format!("{limit} or more problems"),
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    LedgerError::Damaged {
        path: path.to_path_buf(),
        problem: format!("quick_check found {count}; the first: {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sql_error_says_its_cause_once() {
        let path = Path::new("/s/ledger.sqlite3");
        let cause = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            Some("file is not a database".into()),
        );
        let e = sql(path, "PRAGMA journal_mode=WAL")(cause);
        let text = e.to_string();
        assert_eq!(
            text,
            "ledger /s/ledger.sqlite3: damaged: PRAGMA journal_mode=WAL: file is not a database"
        );
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn quick_check_output_becomes_the_first_problem_and_a_count() {
        let path = Path::new("/s/ledger.sqlite3");
        let one_row = "*** in database main ***\nTree 6 page 6 cell 24: bad\nTree 6 page 6 cell 23: bad".to_string();
        let e = quick_check_failed(path, &[one_row], 100);
        assert_eq!(
            e.reason(),
            "damaged: quick_check found 2 problems; the first: Tree 6 page 6 cell 24: bad"
        );
        let many: Vec<String> = (0..100).map(|i| format!("page {i}: bad")).collect();
        assert!(quick_check_failed(path, &many, 100)
            .reason()
            .contains("100 or more problems; the first: page 0: bad"));
    }

    #[test]
    fn a_file_in_the_way_is_named() {
        let e = LedgerError::NotADirectory {
            state_dir: "/s/a/b".into(),
            blocker: "/s/a".into(),
        };
        assert_eq!(
            e.to_string(),
            "ledger /s/a/b: /s/a, above the state directory, is a file, not a directory"
        );
    }
}
