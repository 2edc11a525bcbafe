//! What this host lets Tether guarantee, proven rather than assumed (behind `tether doctor`).
//!
//! Every containment layer degrades on its own when the host lacks it (see [`crate::layers`]),
//! which keeps servers running but can quietly weaken a guarantee. The probes make that visible
//! before it matters: each capability is proven by a read or a system call, reported as ok,
//! degraded or missing with what was seen and how to fix it ([`check`]), and turned into a
//! verdict per guarantee ([`guarantees`]). [`probe_host`] runs them all.

pub mod check;
pub mod guarantees;
pub mod probe;
pub mod probes;
pub mod render;

pub use check::{Check, CheckId, Status};
pub use guarantees::{Guarantee, GuaranteeId, Verdict};
pub use probe::{probe_host, CgroupFacts, HostReport};
pub use render::render_text;

/// Serializes unit tests that flip process-wide attributes (subreaper, parent-death signal)
/// and read them back.
#[cfg(test)]
pub(crate) static PROCESS_STATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
