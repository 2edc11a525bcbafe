//! The gateway's log: `tracing-subscriber`'s formatter (fields now, other formats later), with
//! the level `TETHER_LOG` sets (lifecycle events by default: sessions, instances) and the same
//! `tether[PID]: LEVEL:` line prefix as the shim's.

use std::fmt;

use mcp_tether::logging::{level, tag, warn_unknown};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

/// Installs the gateway's subscriber.
pub fn init() {
    let (level, unknown) = level(LevelFilter::INFO);
    let lines = tracing_subscriber::fmt::layer()
        .event_format(Lines)
        .with_writer(std::io::stderr)
        // Its own report of a failed write is an eprintln!, which panics on a closed pipe.
        .log_internal_errors(false)
        .with_filter(level);
    let installed = tracing_subscriber::registry().with(lines).try_init().is_ok();
    warn_unknown(installed, unknown);
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
