//! What comes back over SSH: the wrapper's identity line (`RemoteIdentity::parse`, and the
//! stderr filter that takes it out of the stream), the kill script's report and the
//! preflight's answer. Never a panic; an identity that parses is written back as the same line;
//! the filter passes every byte but the identity line's, whatever the reads' sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_supervisor::ssh::identity_line::{is_identity_line, TAG};
use tether_supervisor::ssh::replies::{KillReport, Preflight};
use tether_supervisor::ssh::stderr_filter::{Found, IdentityFilter};
use tether_supervisor::ssh::RemoteIdentity;

fuzz_target!(|data: &[u8]| {
    let [status, chunk, input @ ..] = data else {
        return;
    };
    let status = (*status != 0xff).then(|| i32::from(*status) - 2);
    let text = String::from_utf8_lossy(input);
    for line in text.lines() {
        let _ = is_identity_line(line);
        if let Ok(id) = RemoteIdentity::parse(line) {
            assert_eq!(RemoteIdentity::parse(&id.to_string()), Ok(id.clone()));
        }
    }
    let _ = KillReport::parse(&text, status);
    let _ = Preflight::parse(&text, status);

    let mut filter = IdentityFilter::default();
    let mut out = Vec::new();
    let mut identity = None;
    for piece in input.chunks(usize::from(*chunk).max(1)) {
        if let Some(Found::Identity(id)) = filter.feed(piece, &mut out) {
            assert!(identity.is_none(), "two identities");
            identity = Some(id);
        }
    }
    filter.finish(&mut out);
    let _ = filter.tail();
    // The model: the first whole line that parses as an identity is taken out, nothing else.
    let mut at = 0;
    let mut first = None;
    for line in input.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        if line.ends_with(b"\n") && is_identity_line(&text) {
            if let Ok(id) = RemoteIdentity::parse(text.trim_end_matches(['\n', '\r'])) {
                first = Some((at, at + line.len(), id));
                break;
            }
        }
        at += line.len();
    }
    match (identity, first) {
        (None, None) => assert_eq!(out, input, "bytes lost or changed"),
        (Some(id), Some((start, end, want))) => {
            assert_eq!(id, want);
            assert!(input[start..].starts_with(TAG.as_bytes()));
            assert_eq!(out[..start], input[..start]);
            assert_eq!(out[start..], input[end..]);
        }
        (got, want) => panic!("the filter found {got:?}, the model {want:?}"),
    }
});
