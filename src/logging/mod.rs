//! Tether's own diagnostics on stderr, through `tracing`.
//!
//! A shim shares stderr with the server it wraps, and MCP clients show that stream to users, so
//! Tether stays quiet unless something is wrong: warnings and errors by default, more with
//! `TETHER_LOG=info|debug|trace`. Every line starts with `tether[pid]:` so it can be told
//! apart from the server's own output. Writing never fails loudly: a client that closed our
//! stderr must not stop a shim from ending its tree.
//!
//! `tether`, the shim above all, logs through the [`plain`] subscriber, which costs it no
//! memory; the gateway program through `tracing-subscriber` (fields, and later other formats),
//! set up in its own `logging` with the level and line prefix defined here.

mod plain;

use tracing::level_filters::LevelFilter;
use tracing::Level;

/// The environment variable that sets how much Tether says.
pub const LOG_VAR: &str = "TETHER_LOG";

/// Installs the shim's and the tools' subscriber ([`plain`]): warnings and errors unless
/// `TETHER_LOG` asks for more.
pub fn init_plain() {
    let (level, unknown) = level(LevelFilter::WARN);
    let installed = tracing::subscriber::set_global_default(plain::Plain { max: level }).is_ok();
    warn_unknown(installed, unknown);
}

/// The level `TETHER_LOG` asks for, else `fallback`; and the value, when it is not a level.
pub fn level(fallback: LevelFilter) -> (LevelFilter, Option<String>) {
    let value = std::env::var(LOG_VAR).ok();
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => (fallback, None),
        Some("error") => (LevelFilter::ERROR, None),
        Some("warn" | "warning") => (LevelFilter::WARN, None),
        Some("info") => (LevelFilter::INFO, None),
        Some("debug") => (LevelFilter::DEBUG, None),
        Some("trace") => (LevelFilter::TRACE, None),
        Some(other) => (fallback, Some(other.to_string())),
    }
}

/// Says, through the subscriber just installed, that `TETHER_LOG` held no level.
pub fn warn_unknown(installed: bool, unknown: Option<String>) {
    if let (true, Some(other)) = (installed, unknown) {
        tracing::warn!("{LOG_VAR}={other:?} is not one of error, warn, info, debug, trace; using the default");
    }
}

/// The word for a level, at the start of each line.
pub fn tag(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG | Level::TRACE => "debug",
    }
}
