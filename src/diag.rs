//! Tether's own diagnostics on stderr.
//!
//! A shim shares stderr with the server it wraps, and MCP clients show that stream to users, so
//! Tether stays quiet unless something is wrong: warnings and errors by default, more with
//! `TETHER_LOG=info|debug`. Every line starts with `tether[pid]:` so it can be told apart from
//! the server's own output.

use std::sync::atomic::{AtomicU8, Ordering};

/// How much to say, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// Reads `TETHER_LOG` once at start-up; an unknown value keeps the default and says so.
pub fn init_from_env() {
    let Ok(value) = std::env::var("TETHER_LOG") else { return };
    let level = match value.to_ascii_lowercase().as_str() {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "info" => Level::Info,
        "debug" | "trace" => Level::Debug,
        other => {
            emit(
                Level::Warn,
                format_args!("TETHER_LOG={other:?} is not one of error, warn, info, debug; using warn"),
            );
            return;
        }
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// True when messages at `level` are printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Prints one diagnostic line if `level` is enabled. Use the macros instead.
pub fn emit(level: Level, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let tag = match level {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        };
        // Never eprintln!: it panics when stderr's reader is gone, and a shim must keep going
        // (and end its tree) whatever happened to the client's stderr.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "tether[{}]: {tag}: {args}", std::process::id());
    }
}

/// Logs at error level.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Error, format_args!($($t)*)) } }
/// Logs at warning level.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Warn, format_args!($($t)*)) } }
/// Logs at info level.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Info, format_args!($($t)*)) } }
/// Logs at debug level.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Debug, format_args!($($t)*)) } }
