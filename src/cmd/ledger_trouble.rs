//! A ledger that cannot be used, as `tether ps`, `reap` and `doctor` report it: what is wrong,
//! said once, and the shell command that fixes it, with the real paths.
//!
//! The two problems one command fixes get one: a damaged database is moved aside together with
//! its `-wal` and `-shm` files (renamed so that SQLite still pairs them, for inspection), and a
//! file where the state directory should be is moved aside. Anything else gets advice only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tether_supervisor::ledger::LedgerError;

use super::shell::quote;

/// What is wrong with the ledger, and how to fix it.
#[derive(Debug, serde::Serialize)]
pub struct LedgerTrouble {
    /// The database file, or the state directory when that is the problem.
    pub path: String,
    /// What is wrong, without the path.
    pub problem: String,
    /// The shell command that fixes it, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What the fix does and what it costs, or what to do when no command can fix it.
    pub advice: String,
}

/// Advice for every problem a person must look into.
const CHOOSE_ANOTHER: &str = "or choose another state directory with --state-dir DIR (or TETHER_STATE_DIR)";

impl LedgerTrouble {
    /// The trouble `e` describes. Call it once the ledger is closed: the fix lists the `-wal`
    /// and `-shm` files that exist then.
    pub fn of(e: &LedgerError) -> LedgerTrouble {
        let (fix, advice) = match e {
            LedgerError::Damaged { path, .. } => (
                Some(move_aside(path, &database_files(path), "damaged")),
                "moves the damaged database aside, with its -wal and -shm files if any, kept for \
                 inspection (`sqlite3 FILE .recover`); the next tether starts an empty ledger, which \
                 does not know the instances the damaged one recorded"
                    .to_string(),
            ),
            LedgerError::NotADirectory { blocker, .. } => (
                Some(move_aside(blocker, &[""], "not-a-directory")),
                format!(
                    "moves the file in the way aside, if it is not needed (the next tether creates the \
                     state directory); {CHOOSE_ANOTHER}"
                ),
            ),
            LedgerError::Unsafe { .. } => (
                None,
                format!("the state directory must be yours alone; {CHOOSE_ANOTHER}"),
            ),
            LedgerError::TooNew { .. } => (None, format!("use the newer tether that wrote it, {CHOOSE_ANOTHER}")),
            LedgerError::Io { .. } | LedgerError::Sql { .. } => {
                (None, format!("fix the cause above, {CHOOSE_ANOTHER}"))
            }
        };
        LedgerTrouble {
            path: e.path().display().to_string(),
            problem: e.reason(),
            fix,
            advice,
        }
    }

    /// No state directory could be chosen at all (no HOME, say).
    pub fn no_state_dir(why: String) -> LedgerTrouble {
        LedgerTrouble {
            path: String::new(),
            problem: why,
            fix: None,
            advice: "choose a state directory with --state-dir DIR (or TETHER_STATE_DIR)".into(),
        }
    }

    /// One line: the path and what is wrong.
    pub fn headline(&self) -> String {
        if self.path.is_empty() {
            self.problem.clone()
        } else {
            format!("ledger {}: {}", self.path, self.problem)
        }
    }

    /// The fix for people, indented by `indent`: the command on a line of its own, to copy.
    pub fn fix_text(&self, indent: &str) -> String {
        match &self.fix {
            Some(command) => format!("{indent}fix: {command}\n{indent}  ({})", self.advice),
            None => format!("{indent}fix: {}", self.advice),
        }
    }
}

/// The suffixes of the files that make up the database `db`: itself (`""`), and its `-wal` and
/// `-shm` files when they exist.
fn database_files(db: &Path) -> Vec<&'static str> {
    let mut suffixes = vec![""];
    for suffix in ["-wal", "-shm"] {
        if suffixed(db, suffix).symlink_metadata().is_ok() {
            suffixes.push(suffix);
        }
    }
    suffixes
}

/// `mv` commands, joined by `&&`, renaming `file` + each suffix to `file.WHY-STAMP` + the same
/// suffix.
fn move_aside(file: &Path, suffixes: &[&str], why: &str) -> String {
    let aside = suffixed(file, &format!(".{why}-{}", stamp()));
    suffixes
        .iter()
        .map(|suffix| {
            format!(
                "mv {} {}",
                quote(&suffixed(file, suffix)),
                quote(&suffixed(&aside, suffix))
            )
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

fn suffixed(p: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(p.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// The time now as `20261129T184700Z`: sortable, and needing no quotes in a shell.
fn stamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_database_moves_aside_with_its_companions_paired() {
        let fix = move_aside(Path::new("/s d/ledger.sqlite3"), &["", "-wal"], "damaged");
        let parts: Vec<&str> = fix.split(" && ").collect();
        assert_eq!(parts.len(), 2, "{fix}");
        assert!(
            parts[0].starts_with("mv '/s d/ledger.sqlite3' '/s d/ledger.sqlite3.damaged-"),
            "{fix}"
        );
        assert!(parts[0].ends_with("Z'"), "{fix}");
        assert!(
            parts[1].starts_with("mv '/s d/ledger.sqlite3-wal' '/s d/ledger.sqlite3.damaged-"),
            "{fix}"
        );
        assert!(parts[1].ends_with("Z-wal'"), "{fix}");
    }

    #[test]
    fn the_stamp_needs_no_quotes() {
        let s = stamp();
        assert_eq!(s.len(), "20261129T184700Z".len(), "{s}");
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
    }
}
