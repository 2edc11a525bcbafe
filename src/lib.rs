//! What the package's two programs share. `tether` is the shim (`tether wrap`, one per server,
//! resident for the server's whole life) and the tools (`ps`, `reap`, `doctor`); `tether-gateway`
//! is the gateway, which `tether serve` becomes (exec). They are two programs so that every shim
//! maps a binary without the gateway's runtime, HTTP stack and formatter in it: with them, each
//! shim's resident memory grew by 0.7 MiB (`cargo bench --bench wrap`).
//!
//! Shared: the `TETHER_LOG` logging set-up ([`logging`]), `tether serve`'s arguments (parsed by
//! `tether` for its help and usage errors, and again by `tether-gateway`, which runs them:
//! [`serve_args`]), and the exit status of a usage error ([`usage`]).

pub mod logging;
pub mod serve_args;
pub mod usage;
