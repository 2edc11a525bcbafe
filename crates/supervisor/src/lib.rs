//! Tether's process supervision: the only code that starts processes, and the code that makes
//! sure they end. No async runtime is in this crate's dependency tree, by design: the shim must
//! stay a single-threaded process that can `fork` safely (see `docs/architecture.md`).
//!
//! - [`launch`]: the typed spawn primitive a supervising program (the gateway, `tether demo`)
//!   uses to start one instance under a shim, tied to it by a lifeline pipe.
//! - [`shim`]: the per-instance process that owns a server's whole tree and ends it, with the
//!   watchdog that covers the shim's own SIGKILL. [`shim::wrap_main`] is its one entry point.
//! - Containment layers ([`layers`]): process groups, a subreaper, one [`cgroup`] per instance,
//!   pidfds, parent-death signals and the environment cookie, each covering a gap of the others.
//! - [`process`]: knowing processes: `/proc`, pidfds, recorded identities, cookies.
//! - [`ledger`]: the crash-safe record of every instance, written before its server exists;
//!   [`sweep`] ends what dead Tether processes left, by that record.
//! - [`ssh`]: servers on SSH hosts, with the remote half as POSIX-sh scripts.
//! - [`host`]: what this host supports, proven by probes (behind `tether doctor`);
//!   [`inventory`]: what is alive now, joined from the ledger and `/proc` (behind `tether ps`).
//! - [`init`]: a minimal init in front of a program that finds itself PID 1 (a container's
//!   entrypoint), so that every orphan of the namespace is reaped and its signals still count.
//! - `testing` (tests only, the `testing` feature): what the host must provide for a test
//!   (`TETHER_TEST_REQUIRE`), shared by the unit tests and the integration suite.
//!
//! Everything Linux-specific (cgroups, pidfds, the subreaper, `prctl`, signalfd) lives in this
//! crate: the gateway above it only uses [`launch`], [`ledger`] and [`sweep`].

pub mod cgroup;
pub mod failpoint;
mod fork;
pub mod host;
pub mod ids;
pub mod init;
pub mod inventory;
pub mod launch;
pub mod layers;
pub mod ledger;
pub mod process;
pub mod shim;
pub mod ssh;
pub mod sweep;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// The exit status of Tether's own failures (bad flags or configuration, an OS error), kept
/// clear of 126 (not executable) and 127 (not found) like `env`, `timeout` and `chroot` do.
pub const TETHER_FAILED: u8 = 125;
