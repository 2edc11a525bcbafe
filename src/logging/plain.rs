//! The shim's logger: a `tracing` subscriber with nothing in it but a level and a line writer.
//!
//! `tether wrap` runs once per server, for the server's whole life, and its memory is counted
//! per instance. `tracing-subscriber`'s registry and formatter cost it about 230 KiB of its own
//! (anonymous) memory, measured by `cargo bench --bench wrap`; this subscriber costs none. It
//! keeps no spans (the shim has none) and writes each event as one line, ignoring write errors.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Events at `max` or more severe, as lines on stderr.
pub struct Plain {
    /// The most verbose level written.
    pub max: LevelFilter,
}

impl Subscriber for Plain {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = String::with_capacity(128);
        // The pid is read per event: the watchdog is a fork of the shim and logs as itself.
        let _ = write!(
            line,
            "tether[{}]: {}: ",
            std::process::id(),
            super::tag(event.metadata().level())
        );
        let mut fields = Fields {
            line: &mut line,
            first: true,
        };
        event.record(&mut fields);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Writes the message, then `name=value` for every other field.
struct Fields<'a> {
    line: &'a mut String,
    first: bool,
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.first {
            self.line.push(' ');
        }
        self.first = false;
        if field.name() == "message" {
            let _ = write!(self.line, "{value:?}");
        } else {
            let _ = write!(self.line, "{}={value:?}", field.name());
        }
    }
}
