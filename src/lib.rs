//! Tether: a leak-proof MCP gateway and process supervisor.
//!
//! The library holds everything; `src/main.rs` is a thin command-line edge over it.

#[macro_use]
pub mod diag;
pub mod cli;
pub mod demo;
pub mod doctor;
pub mod ids;
pub mod ps;
pub mod reap;
pub mod supervisor;
pub mod wrap;
