//! `tether serve`, driven over real HTTP (and stdio) against real servers: every lifetime, every
//! teardown path, reloads, restarts and bad input, each ending with a survivor count of zero.

mod http;
mod lifetimes;
mod support;
mod teardown;
