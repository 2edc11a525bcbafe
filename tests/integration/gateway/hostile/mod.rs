//! The hostile input catalogue (`docs/hostile-input.md`): what clients, servers, configuration
//! files and a damaged ledger can throw at the gateway, each with the exact text the user sees,
//! proof that the gateway serves on, and a survivor count of zero. Inputs already covered
//! elsewhere (`bad_input`, `security`, `teardown`) are listed in the catalogue, not repeated.

mod config;
mod from_clients;
mod from_servers;
mod ledger;
mod memory;
mod mount;
