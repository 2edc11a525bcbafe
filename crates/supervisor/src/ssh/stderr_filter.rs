//! The ssh client's stderr on its way to the client's: the wrapper's identity line is taken out
//! (and handed to the caller), everything else passes unchanged, and the last bytes are kept to
//! explain a failure (ssh's own messages arrive on the same stream).
//!
//! Only lines before the identity are looked at: the login shell's noise may precede it, the
//! server's output follows it. A line that grows past [`MAX_LINE`] without a newline is not the
//! identity; it is passed on as it comes.

use super::identity_line::{self, IdentityError, RemoteIdentity};

/// Longer lines are passed on without being held back.
pub const MAX_LINE: usize = 4096;
/// How much of the stream is kept for diagnosis.
const TAIL: usize = 4096;

/// The filter's state.
#[derive(Debug, Default)]
pub struct IdentityFilter {
    /// The current, incomplete line before the identity.
    line: Vec<u8>,
    /// Inside an over-long line: pass on until its newline.
    passing: bool,
    /// The identity was seen: pass everything.
    seen: bool,
    /// The last bytes passed on.
    tail: Vec<u8>,
}

/// What a chunk held besides bytes to pass on.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The wrapper's identity line.
    Identity(RemoteIdentity),
    /// A line tagged as the identity that does not parse (passed on, too).
    Malformed(IdentityError),
}

impl IdentityFilter {
    /// Whether the identity line went by.
    pub fn seen(&self) -> bool {
        self.seen
    }

    /// Takes `chunk`; appends what to pass on to `out` and returns what it found.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Option<Found> {
        let start = out.len();
        let mut found = None;
        let mut rest = chunk;
        while !rest.is_empty() && !self.seen {
            let newline = rest.iter().position(|&b| b == b'\n');
            let (part, more) = match newline {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            rest = more;
            if self.passing {
                out.extend_from_slice(part);
                self.passing = newline.is_none();
                continue;
            }
            self.line.extend_from_slice(part);
            if newline.is_none() {
                if self.line.len() > MAX_LINE {
                    out.append(&mut self.line);
                    self.passing = true;
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let text = String::from_utf8_lossy(&line);
            if identity_line::is_identity_line(&text) {
                match RemoteIdentity::parse(text.trim_end_matches(['\n', '\r'])) {
                    Ok(id) => {
                        self.seen = true;
                        found = Some(Found::Identity(id));
                        continue;
                    }
                    Err(e) => found = Some(Found::Malformed(e)),
                }
            }
            out.extend_from_slice(&line);
        }
        out.extend_from_slice(rest);
        self.keep_tail(&out[start..]);
        found
    }

    /// At end of stream: passes on an unfinished line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.line);
        self.keep_tail(&line);
        out.extend_from_slice(&line);
    }

    /// The last bytes passed on, as text.
    pub fn tail(&self) -> String {
        String::from_utf8_lossy(&self.tail).into_owned()
    }

    fn keep_tail(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > TAIL {
            self.tail.drain(..self.tail.len() - TAIL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "TETHER-REMOTE-ID v1 pid=12 pgid=12 start=345 boot=876b4403-f033-4b3c-ab1d-beb977b72fdb\n";

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Found>, IdentityFilter) {
        let mut f = IdentityFilter::default();
        let mut out = Vec::new();
        let mut found = Vec::new();
        for c in chunks {
            found.extend(f.feed(c, &mut out));
        }
        f.finish(&mut out);
        (out, found, f)
    }

    #[test]
    fn the_identity_is_taken_out_wherever_the_chunks_split() {
        let stream = format!("rc noise\n{ID}server says hi\n");
        for split in 0..stream.len() {
            let (a, b) = stream.as_bytes().split_at(split);
            let (out, found, f) = run(&[a, b]);
            assert_eq!(out, b"rc noise\nserver says hi\n", "split at {split}");
            assert!(
                matches!(&found[..], [Found::Identity(id)] if id.pid == 12),
                "split at {split}"
            );
            assert!(f.seen());
        }
    }

    #[test]
    fn after_the_identity_nothing_is_filtered() {
        let (out, found, _) = run(&[ID.as_bytes(), ID.as_bytes()]);
        assert_eq!(out, ID.as_bytes());
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn long_lines_and_failures_pass_through() {
        let long = vec![b'x'; MAX_LINE * 3];
        let refused = b"\nssh: connect to host h port 22: Connection refused\n";
        let (out, found, f) = run(&[&long, refused]);
        assert_eq!(out.len(), long.len() + refused.len());
        assert!(found.is_empty());
        assert!(f.tail().ends_with("Connection refused\n"));
        let (out, found, _) = run(&[b"TETHER-REMOTE-ID v9 pid=1\nlast words"]);
        assert_eq!(out, b"TETHER-REMOTE-ID v9 pid=1\nlast words");
        assert!(matches!(&found[..], [Found::Malformed(_)]));
    }
}
