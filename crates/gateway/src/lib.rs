//! Tether's MCP gateway (`tether serve`): many clients, many configured servers, and every
//! process of every scope ended when the scope ends.
//!
//! Portable by construction: it starts and ends processes only through
//! `tether_supervisor::launch` (a shim per instance, tied to the gateway by a lifeline), so the
//! Linux-specific containment stays below it.
//!
//! - [`config`]: the configuration, in Tether's TOML or the clients' own JSON files.
//! - [`front`]: the streamable-HTTP and stdio front doors.
//! - [`handshake`], [`route`]: a client's `initialize`, and where each of its messages goes;
//!   [`aggregate`]: every server behind one endpoint.
//! - [`session`], [`sessions`]: client sessions.
//! - [`pool`]: instances by lifetime (`shared`, `session`, `request`), caps, idle and reload.
//! - [`upstream`]: one instance: its shim, its pipes, its MCP session.
//! - [`gateway`]: the whole, with the reaper, reload and shutdown.
//! - [`jsonrpc`], [`protocol`]: messages as routed bytes; protocol revisions.

pub mod admin;
pub mod aggregate;
pub mod cause;
pub mod config;
pub mod dropped;
pub mod front;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod gateway;
pub mod handshake;
pub mod jsonrpc;
pub mod lines;
pub mod metrics;
pub mod modern;
pub mod pool;
pub mod protocol;
pub mod route;
pub mod session;
pub mod sessions;
pub mod teardowns;
pub mod upstream;

mod run;

pub use run::{run, Door, Signals};
