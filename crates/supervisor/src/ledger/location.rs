//! Where the ledger lives: one state directory per user, private to that user.
//!
//! `--state-dir` wins, then `TETHER_STATE_DIR`, then `$XDG_STATE_HOME/tether`, then
//! `~/.local/state/tether`. The directory is created 0700; an existing one owned by another
//! user is refused (its owner could plant rows naming our processes), and one we own but left
//! open to others is closed to 0700.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::LedgerError;

/// The environment variable naming the state directory.
pub const STATE_DIR_VAR: &str = "TETHER_STATE_DIR";

/// The running gateway's admin socket in the state directory (the gateway's admin API; `tether
/// sessions`, `kill` and `reload` connect to it).
pub const ADMIN_SOCKET: &str = "admin.sock";

/// Resolves the state directory from an explicit choice or the environment.
pub fn state_dir(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = from_env(STATE_DIR_VAR) {
        return Ok(dir);
    }
    if let Some(xdg) = from_env("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("tether"));
    }
    match from_env("HOME") {
        Some(home) => Ok(home.join(".local/state/tether")),
        None => Err(format!(
            "no state directory: set --state-dir, {STATE_DIR_VAR}, XDG_STATE_HOME or HOME"
        )),
    }
}

/// Creates `dir` (0700, parents too) or checks an existing one is private to this user.
pub fn prepare_dir(dir: &Path) -> Result<(), LedgerError> {
    let io_err = |what| {
        move |cause| LedgerError::Io {
            what,
            path: dir.to_path_buf(),
            cause,
        }
    };
    if let Err(e) = DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        return Err(match file_in_the_way(dir) {
            Some(blocker) => LedgerError::NotADirectory {
                state_dir: dir.to_path_buf(),
                blocker,
            },
            None => io_err("creating the state directory")(e),
        });
    }
    let meta = fs::metadata(dir).map_err(io_err("stat"))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(LedgerError::Unsafe {
            path: dir.to_path_buf(),
            why: format!("owned by uid {}, not by this user (uid {me})", meta.uid()),
        });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err("chmod 0700"))?;
    }
    Ok(())
}

/// The nearest of `dir` and its ancestors that exists, when it is not a directory: what stops
/// the state directory from being created.
fn file_in_the_way(dir: &Path) -> Option<PathBuf> {
    let existing = dir
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && fs::metadata(p).is_ok())?;
    (!existing.is_dir()).then(|| existing.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_wins() {
        let p = Path::new("/tmp/x");
        assert_eq!(state_dir(Some(p)).unwrap(), p);
    }

    #[test]
    fn a_file_at_or_above_the_state_directory_is_named() {
        let file = std::env::temp_dir().join(format!("tether-loc-file-{}", std::process::id()));
        fs::write(&file, "not a directory").unwrap();
        for (dir, reason) in [
            (
                file.clone(),
                "the state directory is a file, not a directory".to_string(),
            ),
            (
                file.join("state"),
                format!(
                    "{}, above the state directory, is a file, not a directory",
                    file.display()
                ),
            ),
        ] {
            let e = prepare_dir(&dir).unwrap_err();
            assert!(
                matches!(&e, LedgerError::NotADirectory { blocker, .. } if *blocker == file),
                "{e}"
            );
            assert_eq!(e.reason(), reason);
        }
        fs::remove_file(&file).unwrap();
    }

    #[test]
    fn open_directory_is_closed() {
        let dir = std::env::temp_dir().join(format!("tether-loc-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        prepare_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        fs::remove_dir(&dir).unwrap();
    }
}
