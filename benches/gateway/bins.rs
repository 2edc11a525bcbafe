//! Where the bench finds what it runs: Tether's release binaries beside the bench executable,
//! server-everything from the test deps, the peers from the bench deps (`scripts/bench`
//! installs both), and the bench's own directory, through which every server it starts is
//! named so that none can be missed at the end.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Everything the bench starts.
pub struct Bins {
    pub tether: PathBuf,
    /// The fixture server, through a link in the bench directory (see [`Bins::tag`]).
    pub fixture: PathBuf,
    pub node: PathBuf,
    /// server-everything's entry point, through a link in the bench directory.
    pub everything: PathBuf,
    pub supergateway: PathBuf,
    pub mcp_proxy: PathBuf,
    /// The bench's directory: state, configs and the links.
    pub dir: PathBuf,
}

impl Bins {
    /// The text every server process the bench starts has in its command line: the bench
    /// directory, through which the servers are started (a link's path stays in argv).
    pub fn tag(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}

fn must(p: PathBuf, how: &str) -> Result<PathBuf> {
    if p.exists() {
        Ok(p)
    } else {
        bail!("{} not found: {how}", p.display())
    }
}

/// Finds everything and makes the bench directory (under the system's temporary directory).
pub fn locate() -> Result<Bins> {
    let exe = std::env::current_exe().context("finding the bench executable")?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .context("no profile directory")?
        .to_path_buf();
    let root = profile
        .parent()
        .and_then(Path::parent)
        .context("no workspace directory")?
        .to_path_buf();
    let build = "run `cargo build --release` first (or scripts/bench)";
    let deps = "run scripts/bench, which installs the pinned servers and peers";
    let everything = must(
        root.join("target/test-deps/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
        deps,
    )?;
    let dir = std::env::temp_dir().join(format!("tether-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let link = |target: &Path, name: &str| -> Result<PathBuf> {
        let l = dir.join(name);
        std::os::unix::fs::symlink(target, &l).with_context(|| format!("linking {}", l.display()))?;
        Ok(l)
    };
    let fixture = must(profile.join("tether-fixture"), build)?;
    Ok(Bins {
        tether: must(profile.join("tether"), build)?,
        fixture: link(&fixture, "tether-fixture")?,
        node: which("node").context("node is not on PATH")?,
        everything: link(&everything, "server-everything.js")?,
        supergateway: must(
            root.join("target/bench-deps/node/node_modules/supergateway/dist/index.js"),
            deps,
        )?,
        mcp_proxy: must(root.join("target/bench-deps/venv/bin/mcp-proxy"), deps)?,
        dir,
    })
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}
