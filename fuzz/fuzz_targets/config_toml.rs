//! Tether's TOML configuration (`config::parse` of a `.toml` file): arbitrary text. Never a
//! panic, and an error for text that is not TOML at all names the line and column.
#![no_main]

#[path = "../common/config.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check("fuzz.toml", data, |text| toml::from_str::<toml::Table>(text).is_ok());
});
