//! The shim: one small, single-threaded process per instance that owns the server's whole
//! process tree and ends it when its owner goes away, however it goes.
//!
//! It sets up the containment layers, forks a watchdog (for its own SIGKILL), starts the server
//! with the client's stdio, and then sleeps in one `poll` over its signalfd, the client's pipe
//! ends, its parent's pidfd and the lifeline. Any trigger starts the teardown state machine;
//! the shim exits once nothing of the tree is alive, with the server's exit status. It never
//! starts an async runtime or a thread: `fork`, `PR_SET_PDEATHSIG` and signal masks all assume
//! one thread.

mod record;
mod remote;
mod server;
mod teardown;
mod tree;
mod watch;

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::supervisor::cgroup::InstanceCgroup;
use crate::supervisor::cookie::Cookie;
use crate::supervisor::failpoint;
use crate::supervisor::identity::ProcessIdentity;
use crate::supervisor::layers::{Disabled, Layer};
use crate::supervisor::ledger::Intent;
use crate::supervisor::signals::Signals;
use crate::supervisor::ssh::SshServer;
use crate::supervisor::watchdog::{Charge, RemoteCharge, Watchdog};
use crate::supervisor::{pidfd, procfs};

pub use server::SpawnError;
pub use teardown::Trigger;
pub use tree::ServerExit;

use record::Record;
use remote::RemoteSide;
use teardown::{Action, Teardown};
use tree::Tree;
use watch::{Event, Watch};

/// How often the tree is re-checked and re-killed after SIGKILL went out.
const KILLING_TICK: Duration = Duration::from_millis(10);
/// How long after SIGKILL the shim keeps trying before it reports survivors and gives up
/// (processes in uninterruptible sleep cannot die until the kernel lets them).
const KILLING_PATIENCE: Duration = Duration::from_secs(10);

/// How long, beyond the grace, a closed stdin waits for an SSH server to start.
const EOF_DEFER_CAP: Duration = Duration::from_secs(15);

/// Everything a shim needs to run one instance.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// The server's program and arguments.
    pub argv: Vec<OsString>,
    /// Time between the polite signal and SIGKILL.
    pub grace: Duration,
    /// `pids.max` for the instance, if any.
    pub max_procs: Option<u32>,
    /// Layers switched off on purpose.
    pub disabled: Disabled,
    /// An fd whose EOF means "end it now", replacing the watch on stdin and stdout.
    pub lifeline: Option<RawFd>,
    /// The instance's id.
    pub instance: String,
    /// The owner's id.
    pub owner: String,
    /// The shim is its own owner (a `tether wrap` started by a client, not by a gateway).
    pub standalone: bool,
    /// The scope the instance lives in, for the ledger.
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
    /// The lifeline fd is not an open fd.
    #[error("--lifeline-fd {0}: not an open file descriptor")]
    BadLifeline(RawFd),
    /// The SSH server's command line cannot be built.
    #[error("{0}")]
    Remote(#[from] crate::supervisor::ssh::remote::RemoteError),
}

impl ShimError {
    /// The status `tether wrap` exits with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ShimError::Spawn(e) => e.exit_code(),
            _ => 125,
        }
    }
}

fn os(what: &'static str) -> impl FnOnce(std::io::Error) -> ShimError {
    move |source| ShimError::Os { what, source }
}

/// The layers actually in force for one instance, for logs and (later) the ledger.
#[derive(Debug, Default)]
pub struct Layers {
    /// Which layers are on.
    pub active: Vec<Layer>,
    /// Layers that were wanted but are missing here, with the reason.
    pub missing: Vec<(Layer, String)>,
}

/// Runs one instance to its end and returns how the server ended.
pub fn run(cfg: &ShimConfig) -> Result<ServerExit, ShimError> {
    // First, before anything can take time: who the client is, so that its death during set-up
    // is still seen; and SIGCHLD back to default, so our children are ours to reap.
    let parent = watch::watch_parent(cfg.disabled.allows(Layer::Pidfd));
    crate::supervisor::signals::reset_sigchld().map_err(|e| ShimError::Os {
        what: "resetting SIGCHLD",
        source: e.into(),
    })?;
    let mut signals = Signals::block().map_err(|e| ShimError::Os {
        what: "blocking signals",
        source: e.into(),
    })?;
    if let Some(fd) = cfg.lifeline {
        set_cloexec(fd).map_err(|_| ShimError::BadLifeline(fd))?;
    }
    // An SSH server: the local server is the ssh client, its stderr comes through the shim.
    // Built before anything is created that an error would leave behind.
    let (argv, mut remote, remote_stderr) = match &cfg.ssh {
        Some(ssh) => {
            let argv = ssh.local_argv(&cfg.instance, cfg.grace)?;
            let (side, stderr) =
                RemoteSide::new(ssh, &cfg.instance, cfg.grace).map_err(os("creating the ssh stderr pipe"))?;
            (argv, Some(side), Some(stderr))
        }
        None => (cfg.argv.clone(), None, None),
    };
    let allow = |l: Layer| cfg.disabled.allows(l);
    let mut layers = Layers::default();

    if allow(Layer::Subreaper) {
        match nix::sys::prctl::set_child_subreaper(true) {
            Ok(()) => layers.active.push(Layer::Subreaper),
            Err(e) => layers.missing.push((Layer::Subreaper, format!("prctl: {e}"))),
        }
    }
    let cgroup = if allow(Layer::Cgroup) {
        match InstanceCgroup::create(&cfg.instance, cfg.max_procs) {
            Ok((cg, warning)) => {
                if let Some(w) = warning {
                    crate::warn!("{w}");
                }
                layers.active.push(Layer::Cgroup);
                Some(cg)
            }
            Err(e) => {
                layers.missing.push((Layer::Cgroup, e.to_string()));
                None
            }
        }
    } else {
        None
    };
    if cgroup.is_none() {
        if let Some(max) = cfg.max_procs {
            crate::warn!("--max-procs {max} is not enforced: the cgroup layer is not in force");
        }
    }
    let use_pidfd = allow(Layer::Pidfd) && pidfd::supported();
    if use_pidfd {
        layers.active.push(Layer::Pidfd);
    } else if allow(Layer::Pidfd) {
        layers
            .missing
            .push((Layer::Pidfd, "pidfd_open is not supported by this kernel".into()));
    }
    let cookie = allow(Layer::Cookie).then(|| Cookie {
        instance: cfg.instance.clone(),
        owner: cfg.owner.clone(),
    });
    for l in [Layer::Group, Layer::Pdeathsig, Layer::Cookie] {
        if allow(l) {
            layers.active.push(l);
        }
    }
    log_layers(cfg, &layers, cgroup.as_ref());

    let mut cgroup_dirs: Vec<_> = cgroup.iter().map(|c| c.dir().to_path_buf()).collect();
    cgroup_dirs.extend(cgroup.as_ref().and_then(|c| c.pids_limit()).and_then(v1_pids_dir));
    let mut record = begin_record(cfg, &layers, cgroup.as_ref(), remote.as_ref());
    failpoint::hit("after-intent");
    let watchdog = match Watchdog::start(Charge {
        cgroups: cgroup_dirs,
        cookie: cookie.clone(),
        remote: remote.as_ref().and_then(|r| {
            Some(RemoteCharge {
                exe: std::env::current_exe().ok()?,
                state_dir: cfg.state_dir.clone(),
                instance: cfg.instance.clone(),
                record: r.record().clone(),
            })
        }),
    }) {
        Ok(w) => w,
        Err(e) => {
            if let Some(r) = remote.as_mut() {
                r.never_started(&mut record);
            }
            record.ended(&format!("forking the watchdog failed: {e}"));
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            return Err(os("forking the watchdog")(e));
        }
    };

    let spec = server::ServerSpec {
        argv: &argv,
        group: allow(Layer::Group),
        pdeathsig: allow(Layer::Pdeathsig),
        join_fds: cgroup.as_ref().map(InstanceCgroup::join_fds).unwrap_or_default(),
        cookie: cookie.as_ref(),
        stderr: remote_stderr.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
    };
    let spawned = server::spawn(spec).and_then(|gate| {
        failpoint::hit("before-identity");
        let pgid = allow(Layer::Group).then_some(gate.pid());
        record.spawned(gate.pid(), pgid, cookie.is_some());
        gate.open()
    });
    // The ssh client holds its own copy now: EOF on the read end comes when it (and whatever
    // it started) is gone.
    drop(remote_stderr);
    let leader = match spawned {
        Ok(pid) => pid,
        Err(e) => {
            if let Some(r) = remote.as_mut() {
                r.never_started(&mut record);
            }
            record.ended(&format!("spawn failed: {e}"));
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            watchdog.dismiss();
            return Err(e.into());
        }
    };
    crate::debug!("instance {}: server pid {leader}", cfg.instance);

    let mut tree = Tree::new(
        leader,
        allow(Layer::Group),
        use_pidfd,
        cgroup,
        cookie,
        Some(watchdog.pid()),
    );
    let mut watch = Watch::new(cfg.lifeline, parent);
    let mut teardown = Teardown::new(cfg.grace);
    if watch.parent_already_gone() {
        teardown.trigger(Trigger::ParentExited, Instant::now());
    }
    let mut watchdog = Some(watchdog);
    let mut server_exit_seen = false;
    // An SSH server may not have started when the client closes stdin: what the client sent is
    // still on its way, with the EOF. The graceful wait starts once the server runs.
    // Until when, at most: a login stuck in rc files, or an identity that never comes, must not
    // keep a closed session alive.
    let mut eof_deferred: Option<Instant> = None;
    // The server's exit followed a signal of ours (so an SSH failure is not its own).
    let mut exit_by_us = false;
    // The tree is gone; only the remote kill is still running.
    let mut only_remote_left = false;

    loop {
        let now = Instant::now();
        if let Some(r) = remote.as_mut() {
            r.pump(&mut record);
        }
        if eof_deferred.is_some_and(|until| now >= until)
            || (eof_deferred.is_some() && remote.as_ref().is_none_or(RemoteSide::started))
        {
            eof_deferred = None;
            if !teardown.started() {
                crate::info!("instance {}: client closed stdin; ending the tree", cfg.instance);
            }
            teardown.trigger(Trigger::StdinClosed, now);
        }
        let resending = matches!(teardown.phase, teardown::Phase::Killing { .. });
        let action = if only_remote_left {
            Action::Wait
        } else {
            teardown.poll(now)
        };
        if let Action::Send(sig) = action {
            if !(resending && sig == nix::sys::signal::Signal::SIGKILL) {
                crate::debug!("instance {}: sending {sig} to the tree", cfg.instance);
            }
            if let Some(r) = remote.as_mut() {
                // Over a second connection, by identity: the local signal only ends the ssh
                // client, and the remote side may not notice its connection dropped.
                r.start_kill();
                tree.set_helper(r.helper_pid());
            }
            tree.signal(sig);
        }
        if let Some(dead) = tree.reap() {
            crate::warn!(
                "the watchdog (pid {dead}) died; a SIGKILL of this shim would now leave the sweep to clean up"
            );
            watchdog = None;
        }
        if let (Some(exit), false) = (tree.server_exit(), server_exit_seen) {
            // Also during a teardown started otherwise (stdin closed, then the server exited as
            // asked): whatever it left behind dies now, not at the end of the grace.
            server_exit_seen = true;
            exit_by_us = teardown.signalled();
            if let Some(r) = remote.as_mut() {
                r.server_exited(exit, exit_by_us, &mut record);
            }
            teardown.trigger(Trigger::ServerExited, now);
            continue;
        }
        if teardown.started() {
            let remaining = tree.remaining(true);
            if remaining.is_empty() {
                if !remote.as_ref().is_some_and(RemoteSide::busy) {
                    break;
                }
                // Nothing local is left: wait for the remote kill's answer (its pidfd, or its
                // deadline), without re-killing an empty tree.
                only_remote_left = true;
            } else if let teardown::Phase::Killing { since, .. } = teardown.phase {
                if now.duration_since(since) > KILLING_PATIENCE {
                    crate::error!(
                        "instance {}: processes {:?} survive SIGKILL after {:?}; leaving them to the watchdog and the sweep",
                        cfg.instance,
                        tree.survivors(),
                        KILLING_PATIENCE
                    );
                    if let Some(w) = watchdog.take() {
                        w.hand_over();
                    }
                    let (exit, _cgroup) = tree.finish(false);
                    if let Some(r) = remote.take() {
                        r.finish(exit, exit_by_us, &mut record);
                    }
                    return Ok(exit);
                }
            }
        }
        if !teardown.started() {
            record.scan(leader, watchdog.as_ref().map(Watchdog::pid), now);
        }
        let now = Instant::now();
        let scan_in = record
            .due()
            .filter(|_| !teardown.started())
            .map(|d| d.saturating_duration_since(now));
        let remote_in = remote
            .as_ref()
            .and_then(RemoteSide::deadline)
            .map(|d| d.saturating_duration_since(now));
        let local = if only_remote_left {
            None
        } else {
            teardown.next_deadline(now, KILLING_TICK)
        };
        let deferral = eof_deferred.map(|d| d.saturating_duration_since(now));
        let timeout = [local, scan_in, remote_in, deferral].into_iter().flatten().min();
        let extra = remote.as_ref().map(RemoteSide::poll_fds).unwrap_or_default();
        let events = match watch.wait(&mut signals, timeout, &extra) {
            Ok(events) => events,
            Err(e) => {
                // Never return with the tree unwatched: end it now.
                crate::error!("instance {}: {e}; killing the tree", cfg.instance);
                teardown.trigger(Trigger::Failure, Instant::now());
                std::thread::sleep(KILLING_TICK);
                Vec::new()
            }
        };
        for event in events {
            let trigger = match event {
                Event::Signal(crate::supervisor::signals::Arrived::Child) | Event::Ready => continue,
                Event::Signal(crate::supervisor::signals::Arrived::Stop(s)) => Trigger::Signal(s),
                Event::StdinClosed => Trigger::StdinClosed,
                Event::StdoutClosed => Trigger::StdoutClosed,
                Event::ParentExited => Trigger::ParentExited,
                Event::LifelineClosed => Trigger::LifelineClosed,
            };
            if trigger == Trigger::StdinClosed && remote.as_ref().is_some_and(|r| !r.started()) {
                crate::debug!(
                    "instance {}: stdin closed before the remote server started",
                    cfg.instance
                );
                eof_deferred.get_or_insert(Instant::now() + cfg.grace + EOF_DEFER_CAP);
                continue;
            }
            if !teardown.started() {
                crate::info!("instance {}: {}; ending the tree", cfg.instance, trigger.describe());
            }
            teardown.trigger(trigger, Instant::now());
        }
    }

    crate::debug!(
        "instance {}: tree ended ({})",
        cfg.instance,
        teardown.cause().map(Trigger::describe).unwrap_or_default()
    );
    let (exit, cgroup) = tree.finish(true);
    if let Some(r) = remote {
        r.finish(exit, exit_by_us, &mut record);
    }
    let cause = teardown.cause().map(Trigger::describe).unwrap_or_default();
    record.ended(&format!("{cause}; server {}", exit.describe()));
    if let Some(cg) = cgroup {
        let dir = cg.dir().to_path_buf();
        if let Err(e) = cg.remove() {
            crate::warn!("removing cgroup {}: {e}", dir.display());
        }
    }
    if let Some(w) = watchdog {
        w.dismiss();
    }
    Ok(exit)
}

/// Opens the ledger and writes the intent; an instance that cannot be recorded runs anyway.
fn begin_record(
    cfg: &ShimConfig,
    layers: &Layers,
    cgroup: Option<&InstanceCgroup>,
    remote: Option<&RemoteSide>,
) -> Record {
    let (holder, boot_id) = match (ProcessIdentity::of_self(), procfs::boot_id()) {
        (Some(h), Ok(b)) => (h, b),
        _ => {
            crate::warn!("cannot read this process's identity or the boot id; running unrecorded");
            return Record::unrecorded(&cfg.instance);
        }
    };
    let intent = Intent {
        id: cfg.instance.clone(),
        owner_id: cfg.owner.clone(),
        scope: cfg.scope.clone(),
        server: cfg.server.clone(),
        command: display_command(cfg),
        boot_id,
        holder,
        cgroup: cgroup.map(|c| c.dir().to_path_buf()),
        cgroup_v1: cgroup.and_then(|c| c.pids_limit()).and_then(v1_pids_dir),
        layers: layers.active.iter().map(|l| l.name().to_string()).collect(),
        remote: remote.map(|r| r.record().to_json()),
    };
    Record::begin(cfg.state_dir.as_deref(), &intent, cfg.standalone, cgroup.is_none())
}

/// The command for people: an SSH server's shows as `ssh DESTINATION CMD…`, not as the ssh
/// client's command line with the wrapper script in it.
fn display_command(cfg: &ShimConfig) -> Vec<String> {
    let words = cfg.argv.iter().map(|a| a.to_string_lossy().into_owned());
    match &cfg.ssh {
        Some(ssh) => ["ssh".to_string(), ssh.target.destination()]
            .into_iter()
            .chain(words)
            .collect(),
        None => words.collect(),
    }
}

fn v1_pids_dir(limit: &crate::supervisor::cgroup::pids::PidsLimit) -> Option<std::path::PathBuf> {
    match limit {
        crate::supervisor::cgroup::pids::PidsLimit::V1 { dir, .. } => Some(dir.clone()),
        crate::supervisor::cgroup::pids::PidsLimit::V2 { .. } => None,
    }
}

fn describe_cgroup(c: &InstanceCgroup) -> String {
    match c.pids_limit() {
        Some(p) => format!(" (cgroup {}, {})", c.dir().display(), p.describe()),
        None => format!(" (cgroup {})", c.dir().display()),
    }
}

fn log_layers(cfg: &ShimConfig, layers: &Layers, cgroup: Option<&InstanceCgroup>) {
    let active: Vec<&str> = layers.active.iter().map(|l| l.name()).collect();
    crate::info!(
        "instance {}: containment {}{}",
        cfg.instance,
        active.join(","),
        cgroup.map(describe_cgroup).unwrap_or_default()
    );
    for (layer, why) in &layers.missing {
        crate::info!("instance {}: layer {layer} unavailable: {why}", cfg.instance);
    }
}

fn set_cloexec(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    #[allow(unsafe_code)]
    // SAFETY: `fd` was handed to us by our parent for our own use; we only change its flags.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = FdFlag::from_bits_truncate(fcntl(borrowed, FcntlArg::F_GETFD)?);
    fcntl(borrowed, FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC)).map(drop)
}
