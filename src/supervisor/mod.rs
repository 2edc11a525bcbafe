//! The supervisor: the only part of Tether that starts processes, and the one that makes sure
//! they end.
//!
//! Containment is built from small layers (see [`layers`]), each covering a gap of the others:
//! process groups, a subreaper, one cgroup per instance, pidfds, parent-death signals and an
//! environment cookie. The [`shim`] composes them around one server; the [`watchdog`] covers
//! the shim's own SIGKILL. For servers started over SSH, [`ssh`] holds the remote half: shell
//! scripts that do the same job on a host where nothing of Tether is installed.

pub mod cgroup;
pub mod cookie;
pub mod exit;
pub mod failpoint;
pub mod identity;
pub mod launch;
pub mod layers;
pub mod ledger;
pub mod pidfd;
pub mod procfs;
pub mod shim;
pub mod signals;
pub mod ssh;
pub mod sweep;
pub mod watchdog;
