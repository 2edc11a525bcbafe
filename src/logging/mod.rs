//! Tether's own diagnostics on stderr, through `tracing`.
//!
//! A shim shares stderr with the server it wraps, and MCP clients show that stream to users, so
//! Tether stays quiet unless something is wrong: warnings and errors by default, more with
//! `TETHER_LOG=info|debug|trace`. Every line starts with `tether[pid]:` so it can be told
//! apart from the server's own output. Writing never fails loudly: a client that closed our
//! stderr must not stop a shim from ending its tree.
//!
//! The gateway logs through `tracing-subscriber` (fields, and later other formats); every other
//! subcommand, the shim above all, through the [`plain`] subscriber, which costs it no memory.

mod plain;

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

/// The environment variable that sets how much Tether says.
pub const LOG_VAR: &str = "TETHER_LOG";

/// How much to say when `TETHER_LOG` does not say.
pub enum Default {
    /// Warnings and errors (a shim, the tools).
    Warn,
    /// Lifecycle events too (the gateway).
    Info,
}

/// Installs the subscriber for this process, at the level `TETHER_LOG` asks for.
pub fn init(default: Default) {
    let value = std::env::var(LOG_VAR).ok();
    let fallback = match default {
        Default::Warn => LevelFilter::WARN,
        Default::Info => LevelFilter::INFO,
    };
    let (level, unknown) = match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => (fallback, None),
        Some("error") => (LevelFilter::ERROR, None),
        Some("warn" | "warning") => (LevelFilter::WARN, None),
        Some("info") => (LevelFilter::INFO, None),
        Some("debug") => (LevelFilter::DEBUG, None),
        Some("trace") => (LevelFilter::TRACE, None),
        Some(other) => (fallback, Some(other.to_string())),
    };
    let installed = match default {
        Default::Warn => tracing::subscriber::set_global_default(plain::Plain { max: level }).is_ok(),
        Default::Info => install_fmt(level),
    };
    if let (true, Some(other)) = (installed, unknown) {
        tracing::warn!("{LOG_VAR}={other:?} is not one of error, warn, info, debug, trace; using the default");
    }
}

/// The gateway's subscriber: `tracing-subscriber`'s formatter with [`Lines`].
fn install_fmt(level: LevelFilter) -> bool {
    let lines = tracing_subscriber::fmt::layer()
        .event_format(Lines)
        .with_writer(std::io::stderr)
        // Its own report of a failed write is an eprintln!, which panics on a closed pipe.
        .log_internal_errors(false)
        .with_filter(level);
    tracing_subscriber::registry().with(lines).try_init().is_ok()
}

/// The word for a level, at the start of each line.
fn tag(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG | Level::TRACE => "debug",
    }
}

/// `tether[PID]: LEVEL: message field=value…`, one line per event.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(
            writer,
            "tether[{}]: {}: ",
            std::process::id(),
            tag(event.metadata().level())
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
