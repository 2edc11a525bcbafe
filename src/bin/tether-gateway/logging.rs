//! The gateway's log: `tracing-subscriber`'s formatter, with the level `TETHER_LOG` sets
//! (lifecycle events by default: sessions, instances), either as lines with the same
//! `tether[PID]: LEVEL:` prefix as the shim's, or (`--log-format json`) as one JSON object per
//! event, for log collectors: every field an event carries (session, instance, server,
//! lifetime, pid, reason…) is a key of its own.

use std::fmt;

use mcp_tether::logging::{level, tag, warn_unknown};
use mcp_tether::serve_args::LogFormat;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

/// Installs the gateway's subscriber.
pub fn init(format: LogFormat) {
    let (level, unknown) = level(LevelFilter::INFO);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // Its own report of a failed write is an eprintln!, which panics on a closed pipe.
    let layer = layer.log_internal_errors(false);
    let installed = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.event_format(Lines).with_filter(level))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.event_format(Json).with_filter(level))
            .try_init(),
    }
    .is_ok();
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

/// One JSON object per event: `time` (RFC 3339, UTC, milliseconds), `level`, `pid`, `message`,
/// then the event's fields.
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut object = Map::new();
        object.insert(
            "time".into(),
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
                .to_string()
                .into(),
        );
        object.insert("level".into(), tag(event.metadata().level()).into());
        object.insert("pid".into(), std::process::id().into());
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        // The event's own fields after the common ones; a field named like one of these (an
        // instance's `pid`) keeps its own key with a prefix rather than hide the gateway's.
        for (k, v) in fields.0 {
            let key = if object.contains_key(&k) {
                format!("event_{k}")
            } else {
                k
            };
            object.insert(key, v);
        }
        writeln!(writer, "{}", Value::Object(object))
    }
}

/// An event's fields as JSON values (numbers and booleans as themselves, the rest as text).
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}
