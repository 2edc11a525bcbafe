//! Setting an instance up, in the order the guarantee needs: first who the client is (so its
//! death during set-up is still seen) and the signals (so none is lost), then the layers, then
//! the watchdog (before the ledger is opened, see [`super::watchdog`]), then the intent in the
//! ledger, and only then the server, forked (born in the instance cgroup) to wait at a gate
//! until its identity is recorded.
//!
//! What is made along the way is held by a [`Partial`]: if set-up fails half-way it undoes
//! everything on drop (the ledger row is closed with the reason, the cgroup removed, the
//! watchdog dismissed, an SSH server's remote side marked as never started), so no failure
//! path can forget a piece.

use std::path::PathBuf;
use std::time::Instant;

use super::keeper::{self, Keeper, Link, Side};
use super::ledger_writer::LedgerWriter;
use super::running::{Instance, Stage};
use super::signals::{self, Signals};
use super::spawn::{self, ServerSpec};
use super::ssh_client::SshClient;
use super::teardown::{Teardown, Trigger};
use super::tree::Tree;
use super::watch::{self, Watch};
use super::watchdog::{Charge, RemoteCharge, RowCharge, Watchdog};
use super::{os, ShimConfig, ShimError};
use crate::cgroup::pids::PidsLimit;
use crate::cgroup::InstanceCgroup;
use crate::layers::Layer;
use crate::ledger::Intent;
use crate::process::cookie::Cookie;
use crate::process::identity::ProcessIdentity;
use crate::process::{pidfd, procfs};

/// The layers actually in force for one instance.
#[derive(Debug, Default)]
struct Layers {
    /// Which layers are on.
    active: Vec<Layer>,
    /// Layers that were wanted but are missing here, with the reason.
    missing: Vec<(Layer, String)>,
}

/// What set-up has made so far; dropped before [`Partial::done`], it undoes all of it.
struct Partial {
    /// The ledger row (intent written); closed with `failure` on drop.
    ledger: Option<LedgerWriter>,
    /// The instance cgroup, removed on drop.
    cgroup: Option<InstanceCgroup>,
    /// The watchdog, dismissed on drop.
    watchdog: Option<Watchdog>,
    /// An SSH server's client side, marked as never started on drop.
    ssh: Option<SshClient>,
    /// Why set-up did not finish, for the ledger.
    failure: String,
}

impl Partial {
    /// Hands everything over to the running instance; nothing is undone.
    fn done(
        mut self,
    ) -> (
        LedgerWriter,
        Option<InstanceCgroup>,
        Option<Watchdog>,
        Option<SshClient>,
    ) {
        let ledger = self.ledger.take().unwrap_or_else(|| LedgerWriter::unrecorded(""));
        (ledger, self.cgroup.take(), self.watchdog.take(), self.ssh.take())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // The cgroup first: a row is closed only once its cgroup is gone (else the sweep,
        // which keeps rows open while their cgroup exists, has it to go by).
        let cgroup_left = self.cgroup.take().is_some_and(|cg| cg.remove().is_err());
        if let Some(mut ledger) = self.ledger.take() {
            if let Some(ssh) = self.ssh.as_mut() {
                ssh.never_started(&mut ledger);
            }
            if !cgroup_left {
                ledger.ended(&self.failure);
            }
        }
        if let Some(w) = self.watchdog.take() {
            w.dismiss();
        }
    }
}

/// What this process turned out to be.
pub(super) enum Started {
    /// The shim, its server started.
    Shim(Box<Instance>),
    /// The keeper above the shim (see [`super::keeper`]), with the signals to forward.
    Keeper(Keeper, Signals),
}

/// Sets the instance up and starts its server (splitting off a keeper first where no cgroup
/// holds the tree).
pub(super) fn start(mut cfg: ShimConfig) -> Result<Started, ShimError> {
    // First, before anything can take time: who the client is, so that its death during set-up
    // is still seen; and SIGCHLD back to default, so our children are ours to reap.
    let mut parent = watch::watch_parent(cfg.disabled.allows(Layer::Pidfd));
    signals::reset_sigchld().map_err(|e| os("resetting SIGCHLD")(e.into()))?;
    let signals = Signals::block().map_err(|e| os("blocking signals")(e.into()))?;
    // An SSH server: the local server is the ssh client, its stderr comes through the shim.
    // Built before anything is created that an error would leave behind.
    let (argv, ssh, ssh_stderr) = match &cfg.ssh {
        Some(server) => {
            let argv = server.local_argv(&cfg.instance, cfg.grace)?;
            let (client, stderr) =
                SshClient::new(server, &cfg.instance, cfg.grace).map_err(os("creating the ssh stderr pipe"))?;
            (argv, Some(client), Some(stderr))
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
    let cgroup = allow(Layer::Cgroup)
        .then(|| match InstanceCgroup::create(&cfg.instance, cfg.max_procs) {
            Ok((cg, warning)) => {
                if let Some(w) = warning {
                    tracing::warn!("{w}");
                }
                layers.active.push(Layer::Cgroup);
                Some(cg)
            }
            Err(e) => {
                layers.missing.push((Layer::Cgroup, e.to_string()));
                None
            }
        })
        .flatten();
    if let (None, Some(max)) = (&cgroup, cfg.max_procs) {
        tracing::warn!("--max-procs {max} is not enforced: the cgroup layer is not in force");
    }
    // Without a cgroup, a keeper above the shim ends what a SIGKILL of the shim would leave.
    let mut link = None;
    if cgroup.is_none() && allow(Layer::Keeper) {
        if !layers.active.contains(&Layer::Subreaper) {
            layers
                .missing
                .push((Layer::Keeper, "it needs the subreaper layer".into()));
        } else {
            match keeper::split(&mut parent) {
                Ok(Side::Keeper(keeper)) => return Ok(Started::Keeper(keeper, signals)),
                Ok(Side::Shim(l)) => {
                    layers.active.push(Layer::Keeper);
                    link = Some(l);
                }
                Err(e) => layers.missing.push((Layer::Keeper, format!("forking it: {e}"))),
            }
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
    log_layers(&cfg, &layers, cgroup.as_ref());

    // The watchdog before the ledger is opened: its copy of this process then holds no SQLite
    // state, so it may open a connection of its own to close the row after a handover.
    let charge = Charge {
        cgroups: cgroup_dirs(cgroup.as_ref()),
        cookie: cookie.clone(),
        remote: ssh.as_ref().and_then(|client| {
            Some(RemoteCharge {
                exe: std::env::current_exe().ok()?,
                state_dir: cfg.state_dir.clone(),
                instance: cfg.instance.clone(),
                remote: client.remote().clone(),
            })
        }),
        ledger: cfg.state_dir.as_ref().map(|dir| RowCharge {
            state_dir: dir.clone(),
            instance: cfg.instance.clone(),
            owner: cfg.standalone.then(|| cfg.owner.clone()),
        }),
    };
    let mut partial = Partial {
        ledger: None,
        cgroup,
        watchdog: None,
        ssh,
        failure: String::new(),
    };
    match Watchdog::start(charge) {
        Ok(w) => {
            if let Some(link) = link.as_mut() {
                link.tell_watchdog(w.pid());
            }
            partial.watchdog = Some(w);
        }
        Err(e) => {
            partial.failure = format!("forking the watchdog failed: {e}");
            return Err(os("forking the watchdog")(e));
        }
    }
    partial.ledger = Some(begin_ledger(
        &cfg,
        &layers,
        partial.cgroup.as_ref(),
        partial.ssh.as_ref(),
    ));
    crate::failpoint::hit("after-intent");

    let spec = ServerSpec {
        argv: &argv,
        group: allow(Layer::Group),
        pdeathsig: allow(Layer::Pdeathsig),
        join_fds: partial
            .cgroup
            .as_ref()
            .map(InstanceCgroup::join_fds)
            .unwrap_or_default(),
        born_in: partial.cgroup.as_ref().map(|cg| (cg.dir_fd(), cg.other_join_fds())),
        cookie: cookie.as_ref(),
        stderr: ssh_stderr.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
    };
    let spawned = spawn::spawn(spec).and_then(|gate| {
        crate::failpoint::hit("before-identity");
        let pgid = allow(Layer::Group).then_some(gate.pid());
        if let Some(ledger) = partial.ledger.as_mut() {
            ledger.spawned(gate.pid(), pgid, cookie.is_some());
        }
        gate.open()
    });
    // The ssh client holds its own copy now: EOF on the read end comes when it (and whatever
    // it started) is gone.
    drop(ssh_stderr);
    let leader = match spawned {
        Ok(pid) => pid,
        Err(e) => {
            partial.failure = format!("spawn failed: {e}");
            return Err(e.into());
        }
    };
    tracing::debug!("instance {}: server pid {leader}", cfg.instance);
    if cfg.lifeline.is_some() {
        if let Err(e) = watch::let_go_of_server_stdio() {
            tracing::warn!(
                "instance {}: still holding the server's stdin and stdout: {e}",
                cfg.instance
            );
        }
    }

    let (ledger, cgroup, watchdog, ssh) = partial.done();
    let tree = Tree::new(
        leader,
        allow(Layer::Group),
        use_pidfd,
        layers.active.contains(&Layer::Subreaper),
        cgroup,
        cookie,
        watchdog.as_ref().map(Watchdog::pid),
    );
    let watch = match link {
        Some(Link { hangup, .. }) => Watch::new(cfg.lifeline.take(), None).under_keeper(hangup),
        None => Watch::new(cfg.lifeline.take(), parent),
    };
    let parent_gone = watch.parent_already_gone();
    let mut instance = Instance {
        id: cfg.instance,
        leader,
        tree,
        ledger,
        watchdog,
        ssh,
        watch,
        signals,
        teardown: Teardown::new(cfg.grace),
        stage: Stage::Serving,
        server_end: None,
        grace: cfg.grace,
    };
    if parent_gone {
        instance.trigger(Trigger::ParentExited, Instant::now());
    }
    Ok(Started::Shim(Box::new(instance)))
}

/// The instance's cgroup directories, for the watchdog: v2 first, then a v1 pids one.
fn cgroup_dirs(cgroup: Option<&InstanceCgroup>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cgroup.iter().map(|c| c.dir().to_path_buf()).collect();
    dirs.extend(cgroup.and_then(InstanceCgroup::pids_limit).and_then(v1_pids_dir));
    dirs
}

/// Opens the ledger and writes the intent; an instance that cannot be recorded runs anyway.
fn begin_ledger(
    cfg: &ShimConfig,
    layers: &Layers,
    cgroup: Option<&InstanceCgroup>,
    ssh: Option<&SshClient>,
) -> LedgerWriter {
    let (holder, boot_id) = match (ProcessIdentity::of_self(), procfs::boot_id()) {
        (Some(h), Ok(b)) => (h, b),
        _ => {
            tracing::warn!("cannot read this process's identity or the boot id; running unrecorded");
            return LedgerWriter::unrecorded(&cfg.instance);
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
        cgroup_v1: cgroup.and_then(InstanceCgroup::pids_limit).and_then(v1_pids_dir),
        layers: layers.active.iter().map(|l| l.name().to_string()).collect(),
        remote: ssh.map(|c| c.remote().to_json()),
    };
    LedgerWriter::begin(cfg.state_dir.as_deref(), &intent, cfg.standalone, cgroup.is_none())
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

fn v1_pids_dir(limit: &PidsLimit) -> Option<PathBuf> {
    match limit {
        PidsLimit::V1 { dir, .. } => Some(dir.clone()),
        PidsLimit::V2 { .. } => None,
    }
}

fn log_layers(cfg: &ShimConfig, layers: &Layers, cgroup: Option<&InstanceCgroup>) {
    let active: Vec<&str> = layers.active.iter().map(|l| l.name()).collect();
    let where_ = cgroup.map_or_else(String::new, |c| match c.pids_limit() {
        Some(p) => format!(" (cgroup {}, {})", c.dir().display(), p.describe()),
        None => format!(" (cgroup {})", c.dir().display()),
    });
    tracing::info!("instance {}: containment {}{where_}", cfg.instance, active.join(","));
    for (layer, why) in &layers.missing {
        tracing::info!("instance {}: layer {layer} unavailable: {why}", cfg.instance);
    }
}
