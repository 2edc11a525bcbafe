//! `tether doctor`: tells the truth about what this host lets Tether guarantee.
//!
//! Every containment layer degrades on its own when the host lacks it (see
//! [`crate::supervisor::layers`]), which keeps servers running but can quietly weaken a
//! guarantee. The doctor makes that visible before it matters: each capability is proven by a
//! read or a system call, reported as ok, degraded or missing with what was seen and how to fix
//! it, and turned into a verdict per guarantee. This module is the host half; checks of a
//! configuration belong beside it.

pub mod cgroup;
pub mod check;
pub mod command;
pub mod guarantees;
pub mod host;
pub mod kernel;
pub mod layout;
pub mod pidfd;
pub mod pids;
pub mod prctl;
pub mod probe_dir;
pub mod proc;
pub mod render;

pub use check::{Check, CheckId, Status};
pub use guarantees::{Guarantee, GuaranteeId, Verdict};
pub use host::{probe_host, CgroupFacts, HostReport};
pub use render::render_text;

/// Serializes unit tests that flip process-wide attributes (subreaper, parent-death signal)
/// and read them back.
#[cfg(test)]
pub(crate) static PROCESS_STATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
