//! One module per subcommand: its arguments, turned into a validated configuration, and its run.

pub mod demo;
pub mod doctor;
pub mod ps;
pub mod reap;
pub mod settle_remote;
pub mod wrap;
