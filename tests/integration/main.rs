//! Integration tests: the real `tether` binary against real processes and real MCP servers.
//! Every test that starts processes proves at its end that none survive.

// The tests start the very processes they observe; the rule that only the supervisor spawns is
// for the library.
#![allow(clippy::disallowed_methods)]

mod argv_watch;
mod cgroup_escape;
mod chaos;
mod container;
mod doctor_advice;
mod doctor_dead_shim;
mod doctor_host;
mod gateway;
mod harness;
mod ledger;
mod ledger_damaged;
mod max_procs;
mod nested_wrap;
mod packaging;
mod pid1;
mod ps;
mod real_client;
mod reap;
mod reap_stale_cgroups;
mod shim_killed;
mod ssh_adopted;
mod ssh_crash;
mod ssh_env;
mod ssh_errors;
mod ssh_expiry;
mod ssh_group_reuse;
mod ssh_remote;
mod ssh_starting;
mod ssh_tether;
mod ssh_wrap;
mod ssh_wrapper;
mod sshd;
mod state_path_file;
mod transparency;
mod triggers;
mod unusable;
mod usage;
