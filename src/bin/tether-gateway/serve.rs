//! Serving: from the command line to a running gateway, and its end.
//!
//! In order, so that nothing runs on a half-made decision: the signal handlers (a SIGTERM or
//! SIGHUP during start-up is acted on once serving, never fatal by default); the configuration is read and
//! validated whole (`--config`, else `$XDG_CONFIG_HOME/tether/config.toml`, else the embedded
//! default that serves the fixture server); the ledger's sweep ends whatever a dead
//! predecessor left, and says what it ended, before anything is spawned; the gateway registers
//! itself as the owner of its instances; then it serves (HTTP, or one client on stdio) on a
//! single-threaded runtime until SIGTERM, SIGINT or the stdio client's EOF, and shuts down.
//!
//! Exit status: 0 after a shutdown, 125 when it cannot start (a configuration error, the
//! address in use, no fixture for the embedded default). As PID 1, the init the gateway forked
//! first (`tether_supervisor::init`) exits with the same status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use mcp_tether::serve_args::ServeArgs;
use tether_gateway::admin;
use tether_gateway::config::{self, Config};
use tether_gateway::gateway::Gateway;
use tether_gateway::upstream::http::leftovers;
use tether_gateway::upstream::StartOptions;
use tether_gateway::{Door, Signals};
use tether_supervisor::launch::LedgerChoice;
use tether_supervisor::ledger::{location, InstanceRow, Ledger, OwnerRow};
use tether_supervisor::sweep::{self, ActionKind, Report, SweepError};
use tether_supervisor::{ids, TETHER_FAILED};

/// Runs `tether serve`.
pub fn run(args: &ServeArgs, state_dir: Option<&Path>) -> ExitCode {
    match serve(args, state_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(TETHER_FAILED)
        }
    }
}

fn serve(args: &ServeArgs, state_dir: Option<&Path>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let signals = {
        let _in_runtime = runtime.enter();
        Signals::install().context("installing signal handlers")?
    };
    let tether = std::env::current_exe()
        .context("locating the tether-gateway executable")?
        .with_file_name("tether");
    if !tether.is_file() {
        bail!(
            "the gateway runs every server under {} (`tether wrap`), which is not there: install tether and tether-gateway together",
            tether.display()
        );
    }
    let mut config = load(args, &tether)?;
    if let Some(addr) = args.listen {
        config = config.with_listen(addr)?;
    }
    let admin_token = match &args.admin_token_file {
        Some(file) => Some(admin::web::read_token(file).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let owner = ids::random_id().context("generating the gateway's owner id")?;
    let (ledger, left_open) = match start_ledger(state_dir, &owner) {
        Some((dir, ledger, left_open)) => (Some((dir, ledger)), left_open),
        None => (None, Vec::new()),
    };
    let opts = StartOptions {
        tether,
        owner_id: owner.clone(),
        ledger: ledger
            .as_ref()
            .map_or(LedgerChoice::Off, |(dir, _)| LedgerChoice::At(dir.clone())),
        max_message: config.gateway.max_message_size,
    };
    let result = runtime.block_on(async {
        // The admin API, beside the ledger (nothing to administer is recorded without one);
        // bound before the front door says it serves, so that whoever reads that line can
        // administer at once.
        let socket = ledger
            .as_ref()
            .and_then(|(dir, _)| match admin::bind(dir) {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!("no admin API (tether sessions, kill, reload): {e}");
                    None
                }
            });
        let door = if args.stdio {
            Door::Stdio
        } else {
            let addr = config.gateway.listen;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            // The address bound, which differs from the one asked for with port 0.
            let addr = listener.local_addr().context("reading the listening address")?;
            let servers: Vec<&String> = config.enabled().map(|s| &s.name).collect();
            tracing::info!(
                "serving {} server(s) ({}) at http://{addr}/mcp/{{server}}, from {}",
                servers.len(),
                servers.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                config.source
            );
            Door::Http(listener)
        };
        // The admin API and dashboard over HTTP, after the front door (whose line comes first).
        let web = match args.admin_listen {
            Some(addr) => {
                let listener = admin::web::bind(addr, admin_token).await?;
                let url = format!("http://{}/", listener.access().addr());
                tracing::info!("admin API and dashboard at {url} (`tether dashboard` prints the login URL)");
                Some(listener)
            }
            None => None,
        };
        if let (false, Some((dir, _))) = (left_open.is_empty(), &ledger) {
            // The sessions with HTTP servers a dead gateway left open, ended beside serving.
            let (config, dir) = (config.clone(), dir.clone());
            tokio::spawn(async move { leftovers::close(left_open, &config, &dir).await });
        }
        if socket.is_none() && web.is_some() {
            tracing::warn!("`tether dashboard` cannot ask for the dashboard's login URL: give the admin token with --admin-token-file");
        }
        let gw = Gateway::new(config, opts);
        anyhow::Ok(tether_gateway::run(gw, door, admin::Listeners { socket, web }, signals).await)
    });
    if let Some((dir, mut l)) = ledger {
        // The admin socket goes with the gateway (the next one would replace it anyway).
        let socket = admin::socket_path(&dir);
        if std::os::unix::net::UnixStream::connect(&socket).is_err() {
            let _ = std::fs::remove_file(socket);
        }
        if let Err(e) = l.end_owner(&owner) {
            tracing::warn!("recording the gateway's end: {e}");
        }
    }
    drop(runtime);
    result.map(|why| tracing::info!("stopped ({why})"))
}

/// The configuration `tether serve` runs.
fn load(args: &ServeArgs, tether: &Path) -> anyhow::Result<Config> {
    if let Some(path) = &args.config {
        return Ok(config::load(path)?);
    }
    if let Some(path) = config::default_path() {
        return Ok(config::load(&path)?);
    }
    let fixture = tether.with_file_name("tether-fixture");
    if !fixture.is_file() {
        bail!(
            "no configuration: no --config, no {}, and the embedded default needs {} (build it with `cargo build --release`)",
            config::default_location().map_or("~/.config/tether/config.toml".into(), |p| p.display().to_string()),
            fixture.display()
        );
    }
    Ok(config::embedded(fixture))
}

/// How long the gateway waits at start-up for the ledger's write lock before it runs without
/// the ledger: writes hold it for well under a millisecond, so a lock held this long is a hung
/// process, and waiting the ledger's own busy timeout on every write would stall the start-up
/// and each instance's start by that much.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the ledger, sweeps what dead Tether processes left (saying what it ended), and
/// registers the gateway as an owner; returns it with the sessions with HTTP servers that dead
/// gateways left open (for the gateway to end). Without a usable ledger (one it cannot open,
/// or whose write lock another process holds) the gateway runs on, unrecorded, and says so.
fn start_ledger(state_dir: Option<&Path>, owner: &str) -> Option<(PathBuf, Ledger, Vec<InstanceRow>)> {
    let opened = location::state_dir(state_dir)
        .map_err(anyhow::Error::msg)
        .and_then(|dir| Ok((dir.clone(), Ledger::open(&dir)?)));
    let (dir, mut ledger) = match opened {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("{e:#}; running unrecorded: a crash of this gateway would leave the sweep nothing to go by");
            return None;
        }
    };
    if let Err(e) = ledger.check_write_lock(LOCK_WAIT) {
        tracing::warn!(
            "{e} (held for over {}s: `fuser {}` names the process holding it); running unrecorded: a crash of this gateway would leave the sweep nothing to go by",
            LOCK_WAIT.as_secs(),
            ledger.path().display()
        );
        return None;
    }
    let swept = match sweep::sweep_locked(&mut ledger, &dir, false) {
        Ok(report) => Ok(report),
        // What was done before the ledger failed is still said.
        Err(SweepError::AfterActing { report, cause }) => {
            log_sweep(&report);
            Err(cause.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let left_open = match swept {
        Ok(report) => {
            log_sweep(&report);
            report.upstream_sessions
        }
        Err(e) => {
            tracing::warn!("start-up sweep failed: {e}");
            Vec::new()
        }
    };
    match OwnerRow::for_this_process(owner, "gateway").map(|row| ledger.register_owner(&row)) {
        Some(Ok(())) => {}
        Some(Err(e)) => tracing::warn!("registering the gateway in the ledger: {e}"),
        None => tracing::warn!("cannot read this process's identity: the gateway is not registered as an owner"),
    }
    Some((dir, ledger, left_open))
}

/// Says what the start-up sweep ended, in the log and the metrics.
fn log_sweep(report: &Report) {
    tether_gateway::metrics::swept(report);
    let ended: Vec<_> = report
        .actions
        .iter()
        .filter(|a| a.kind != ActionKind::SkippedUnknown)
        .collect();
    if !report.upstream_sessions.is_empty() {
        tracing::warn!(
            "start-up sweep: {} session(s) with servers over HTTP left open by a dead gateway: ending them",
            report.upstream_sessions.len()
        );
    }
    if ended.is_empty() {
        if report.upstream_sessions.is_empty() {
            tracing::info!("start-up sweep: nothing left by a dead Tether");
        }
        return;
    }
    tracing::warn!(
        "start-up sweep: {} orphaned instance(s), {} process(es) killed",
        report.orphaned_instances,
        report.killed
    );
    for a in ended {
        tracing::warn!("start-up sweep: {a}");
    }
}
