//! Size-limited line reading (`lines::read_line`): arbitrary bytes, a limit and a read size
//! taken from the input. Never a panic, and the lines read are those of a simple model: each
//! line whole when it fits (blank ones skipped), counted and cut to a prefix when it does not;
//! no line lost or invented, whatever the reads' sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_gateway::lines::{read_line, Line, PREFIX};
use tokio::io::BufReader;

#[derive(Debug)]
enum Want<'a> {
    Whole(&'a [u8]),
    TooLong(&'a [u8]),
}

/// The lines `read_line` should return, by the documented rules.
fn model(input: &[u8], max: usize) -> Vec<Want<'_>> {
    let mut out = Vec::new();
    let mut segments: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let last = segments.pop().unwrap_or_default();
    for s in segments {
        if s.len() > max {
            out.push(Want::TooLong(s));
            continue;
        }
        let s = s.strip_suffix(b"\r").unwrap_or(s);
        if !s.iter().all(u8::is_ascii_whitespace) {
            out.push(Want::Whole(s));
        }
    }
    // The end of the input ends an unfinished line as it is.
    if last.len() > max {
        out.push(Want::TooLong(last));
    } else if !last.is_empty() {
        out.push(Want::Whole(last));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [max, chunk, input @ ..] = data else {
        return;
    };
    let max = usize::from(*max) * 4;
    let chunk = usize::from(*chunk).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    rt.block_on(async {
        let mut reader = BufReader::with_capacity(chunk, input);
        let mut expected = model(input, max).into_iter();
        loop {
            let mut line = Vec::new();
            let got = read_line(&mut reader, &mut line, max)
                .await
                .expect("reading a slice cannot fail");
            match (got, expected.next()) {
                (Line::Eof, None) => break,
                (Line::Whole, Some(Want::Whole(want))) => assert_eq!(line, want),
                (Line::TooLong(n), Some(Want::TooLong(want))) => {
                    assert_eq!(n, want.len());
                    assert!(line.len() <= PREFIX.max(max));
                    assert!(want.starts_with(&line));
                }
                (got, want) => panic!(
                    "read {:?} ({:?}), the model says {want:?}",
                    match got {
                        Line::Whole => "a whole line".to_string(),
                        Line::TooLong(n) => format!("a line too long, {n} bytes"),
                        Line::Eof => "the end".to_string(),
                    },
                    String::from_utf8_lossy(&line)
                ),
            }
        }
    });
});
