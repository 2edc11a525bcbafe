//! Tether's MCP gateway (`tether serve`): many clients, many configured servers, and every
//! process of every scope ended when the scope ends.
//!
//! Portable by construction: it starts and ends processes only through
//! `tether_supervisor::launch` (a shim per instance, tied to the gateway by a lifeline), so the
//! Linux-specific containment stays below it.

pub mod config;
