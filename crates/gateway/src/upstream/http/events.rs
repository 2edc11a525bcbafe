//! Server-sent events from an HTTP upstream, parsed as they arrive: each event's `data` is one
//! JSON-RPC message, and its `event` name says what it is (`message` by default; the legacy SSE
//! transport's `endpoint` event carries where to POST). `id`, `retry` and comments are skipped;
//! an event larger than the gateway's `max_message_size` is dropped whole, reported, and
//! parsing goes on at the next event.

/// An incremental parser: bytes in, whole events out.
pub struct Events {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The current event's data so far.
    data: Vec<u8>,
    /// Whether the current event has any `data` field.
    has_data: bool,
    /// The current event's name, if it has an `event` field.
    name: Option<String>,
    /// Whether the current event outgrew the limit (dropped at its end).
    too_long: bool,
    /// While dropping an event: whether the current line has anything (so it is not the blank
    /// line that ends the event).
    skipped_line: bool,
    /// The largest event accepted.
    max: usize,
}

/// What one chunk of the stream finished.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// An event's data: one message (or, for a named event, what the name says).
    Data {
        /// The `event` field (`None`: a `message`).
        name: Option<String>,
        /// The data.
        data: Vec<u8>,
    },
    /// An event larger than the limit, dropped.
    TooLong,
}

impl Events {
    /// A parser that accepts events of up to `max` bytes.
    pub fn new(max: usize) -> Events {
        Events {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            name: None,
            too_long: false,
            skipped_line: false,
            max,
        }
    }

    /// Feeds the next bytes; returns the events they finished.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            let segment = &rest[..at];
            if self.too_long {
                self.skipped_line |= !(segment.is_empty() || segment == b"\r");
            } else {
                self.line.extend_from_slice(segment);
            }
            rest = &rest[at + 1..];
            self.end_line(&mut out);
        }
        if self.too_long {
            self.skipped_line |= !rest.is_empty();
        } else {
            self.line.extend_from_slice(rest);
            if self.line.len() + self.data.len() > self.max {
                self.overflow();
            }
        }
        out
    }

    /// Whether the stream stopped in the middle of an event.
    pub fn mid_event(&self) -> bool {
        self.has_data || !self.line.is_empty() || self.too_long
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        if self.too_long {
            if std::mem::take(&mut self.skipped_line) {
                return;
            }
            // The blank line that ends the dropped event.
            out.push(Event::TooLong);
            self.too_long = false;
            self.has_data = false;
            self.name = None;
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            // A blank line ends the event.
            // An event with empty data (a priming event, for resumption) is no message.
            if self.has_data && !self.data.is_empty() {
                out.push(Event::Data {
                    name: self.name.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.data.clear();
            self.has_data = false;
            self.name = None;
            return;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(0) => return, // a comment
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (&line[..], &[][..]),
        };
        if field == b"event" {
            let name = String::from_utf8_lossy(value).into_owned();
            self.name = (name != "message").then_some(name);
            return;
        }
        if field != b"data" {
            return;
        }
        if self.has_data {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(value);
        self.has_data = true;
        if self.data.len() > self.max {
            self.overflow();
            // This line is over: the next blank one ends the dropped event.
            self.skipped_line = false;
        }
        self.line = line;
        self.line.clear();
    }

    fn overflow(&mut self) {
        self.too_long = true;
        self.skipped_line = true;
        self.line = Vec::new();
        self.data = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(d: &[u8]) -> Event {
        Event::Data {
            name: None,
            data: d.to_vec(),
        }
    }

    #[test]
    fn named_events_keep_their_name() {
        let mut p = Events::new(1024);
        assert_eq!(
            p.feed(b"event: endpoint\ndata: /messages?sessionId=1\n\nevent: message\ndata: {}\n\n"),
            vec![
                Event::Data {
                    name: Some("endpoint".into()),
                    data: b"/messages?sessionId=1".to_vec()
                },
                data(b"{}")
            ]
        );
    }

    #[test]
    fn events_are_found_across_chunks_and_line_endings() {
        let mut p = Events::new(1024);
        assert_eq!(p.feed(b"event: message\r\nid: 1\r\ndata: {\"a\""), vec![]);
        assert!(p.mid_event());
        assert_eq!(p.feed(b":1}\r\n\r\n: keepalive\n\n"), vec![data(b"{\"a\":1}")]);
        assert!(!p.mid_event());
        assert_eq!(p.feed(b"data: [1,\ndata:2]\n\n"), vec![data(b"[1,\n2]")]);
        // An event without data (a priming event) is no message.
        assert_eq!(p.feed(b"id: 7\nretry: 100\n\n"), vec![]);
        assert_eq!(p.feed(b"id: 8\ndata: \n\n"), vec![]);
    }

    #[test]
    fn an_event_over_the_limit_is_dropped_and_parsing_goes_on() {
        let mut p = Events::new(8);
        let mut got = p.feed(b"data: 0123456789");
        got.extend(p.feed(b"0123456789\n\ndata: ok\n\n"));
        assert_eq!(got, vec![Event::TooLong, data(b"ok")]);
        // Over the limit by whole data lines.
        let got = p.feed(
            b"data: 01234
data: 56789

data: x

",
        );
        assert_eq!(got, vec![Event::TooLong, data(b"x")]);
    }
}
