//! The shim: one small, single-threaded process per instance that owns the server's whole
//! process tree and ends it when its owner goes away, however it goes.
//!
//! [`wrap_main`] is its one entry point (the `tether wrap` subcommand). It runs in three parts:
//! [`setup`] puts the containment layers in place, writes the intent to the ledger, forks a
//! [`watchdog`] (for the shim's own SIGKILL) and starts the server at an exec gate;
//! [`running`] then sleeps in one `poll` over its signalfd, the client's pipe ends, its
//! parent's pidfd and the lifeline, drives the [`teardown`] state machine when a trigger fires,
//! and finishes once nothing of the tree is alive, returning the server's exit status.
//!
//! Where no cgroup holds the tree, the process first splits: the original stays above as the
//! [`keeper`], a subreaper that ends what a SIGKILLed shim leaves, and the child goes on as the
//! shim.
//!
//! The shim never starts an async runtime or a thread: `fork`, `PR_SET_PDEATHSIG` and signal
//! masks all assume one thread, and [`wrap_main`] refuses to run in a process that has more
//! (see `crate::fork`).

mod keeper;
mod ledger_writer;
pub mod lifeline;
mod running;
mod setup;
mod signals;
mod spawn;
mod ssh_client;
mod teardown;
mod tree;
mod watch;
mod watchdog;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::layers::Disabled;
use crate::ssh::SshServer;

pub use signals::FORWARDED_AS_IS;

/// The keeper's command name, as `ps` and `/proc/PID/comm` show it (see `keeper`).
pub const KEEPER_NAME: &str = "tether-keeper";
pub use spawn::SpawnError;
pub use teardown::{Trigger, MAX_GRACE};
pub use tree::ServerExit;

/// Everything a shim needs to run one instance.
#[derive(Debug)]
pub struct ShimConfig {
    /// The server's program and arguments.
    pub argv: Vec<OsString>,
    /// Time between the polite signal and SIGKILL.
    pub grace: Duration,
    /// `pids.max` for the instance, if any.
    pub max_procs: Option<u32>,
    /// Layers switched off on purpose.
    pub disabled: Disabled,
    /// The read end of the lifeline: its EOF means "end it now", replacing the watch on stdin
    /// and stdout (see [`lifeline::adopt_inherited`]).
    pub lifeline: Option<OwnedFd>,
    /// The instance's id.
    pub instance: String,
    /// The owner's id.
    pub owner: String,
    /// The shim is its own owner (a `tether wrap` started by a client, not by a gateway).
    pub standalone: bool,
    /// The scope the instance lives in, for the ledger (see [`crate::launch::Scope`]).
    pub scope: String,
    /// The server's name, for the ledger and `tether ps`.
    pub server: String,
    /// The state directory holding the ledger; `None` runs unrecorded.
    pub state_dir: Option<PathBuf>,
    /// Run `argv` on this SSH host instead (then `argv` is the remote command, and the local
    /// server is the ssh client).
    pub ssh: Option<SshServer>,
}

/// Why a shim could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The server could not be started.
    #[error("spawn failed: {0}")]
    Spawn(#[from] SpawnError),
    /// A system call the shim depends on failed.
    #[error("{what}: {source}")]
    Os {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The lifeline fd cannot be used.
    #[error("--lifeline-fd {fd}: {why}")]
    BadLifeline { fd: i32, why: String },
    /// The SSH server's command line cannot be built.
    #[error("{0}")]
    Remote(#[from] crate::ssh::scripts::RemoteError),
}

impl ShimError {
    /// The status `tether wrap` exits with for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ShimError::Spawn(e) => e.exit_code(),
            _ => crate::TETHER_FAILED,
        }
    }
}

fn os(what: &'static str) -> impl FnOnce(std::io::Error) -> ShimError {
    move |source| ShimError::Os { what, source }
}

/// Runs one instance to its end and returns how the server ended.
///
/// Call it from the main thread of a process that has started no other thread (`tether
/// wrap`'s): it forks, and refuses with an error when the process has several threads.
pub fn wrap_main(cfg: ShimConfig) -> Result<ServerExit, ShimError> {
    crate::fork::ensure_single_threaded("run a shim").map_err(os("checking the shim's threads"))?;
    match setup::start(cfg)? {
        setup::Started::Shim(instance) => Ok(instance.run()),
        setup::Started::Keeper(keeper, signals) => Ok(keeper.run(signals)),
    }
}
