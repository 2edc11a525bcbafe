//! One module per subcommand: its arguments, turned into a validated configuration, and its run;
//! and what several of them print: a ledger that cannot be used ([`ledger_trouble`]), commands
//! quoted for a shell ([`shell`]).

pub mod admin;
mod admin_client;
pub mod dashboard;
pub mod demo;
pub mod doctor;
mod ledger_trouble;
pub mod ps;
mod ps_live;
pub mod reap;
pub mod serve;
pub mod settle_remote;
mod shell;
pub mod wrap;
