//! Finding the two release binaries the bench measures: `tether` and `tether-fixture`.
//!
//! They are looked for beside the bench executable rather than built here, so the bench
//! measures exactly what `cargo bench` just built; their age is printed so that a stale
//! binary shows.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::progress;

/// The binaries the bench starts.
pub struct Bins {
    pub tether: PathBuf,
    pub fixture: PathBuf,
}

/// Finds `tether` and `tether-fixture` in the bench executable's target profile directory
/// (`target/release/deps/wrap-…` → `target/release/`), falling back to the paths Cargo
/// compiled in. `cargo bench` builds both binaries (Cargo builds a package's bin targets for
/// its benches and tests) in the `bench` profile, which inherits `release`.
pub fn locate() -> Result<Bins> {
    let exe = std::env::current_exe().context("finding the bench executable")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} has no profile directory", exe.display()))?
        .to_path_buf();
    let find = |name: &str, compiled: Option<&str>| -> Result<PathBuf> {
        let beside = dir.join(name);
        let candidates = [Some(beside.clone()), compiled.map(PathBuf::from)];
        candidates.into_iter().flatten().find(|p| p.is_file()).with_context(|| {
            format!(
                "{} not found (looked beside the bench in {}); run `cargo build --release` first",
                name,
                dir.display()
            )
        })
    };
    let bins = Bins {
        tether: find("tether", option_env!("CARGO_BIN_EXE_tether"))?,
        fixture: find("tether-fixture", option_env!("CARGO_BIN_EXE_tether-fixture"))?,
    };
    for p in [&bins.tether, &bins.fixture] {
        let age = std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        let age = age.map_or_else(|| "?".to_owned(), |a| format!("{} s", a.as_secs()));
        progress(format_args!("using {} (built {age} ago)", p.display()));
    }
    Ok(bins)
}
