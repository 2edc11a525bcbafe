//! `tether serve`, driven over real HTTP (and stdio) against real servers: every lifetime, every
//! teardown path, reloads, restarts and bad input, each ending with a survivor count of zero.

mod admin;
mod aggregate;
mod bad_input;
mod caps;
mod dashboard;
mod hostile;
mod http;
mod kubernetes;
mod lifetimes;
mod logs;
mod many_sessions;
mod metrics;
mod modern;
mod naming;
mod pid1;
mod protocol;
mod races;
mod real_clients;
mod reload;
mod replicas;
mod restart;
mod routing;
mod security;
mod ssh;
mod start_up;
pub(crate) mod support;
mod teardown;
mod three_servers;
mod upstream_http;
mod upstream_modern;
